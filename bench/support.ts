import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What the benchmarks share: medians, number formats, Markdown tables and other processes' CPU. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

/** A Markdown table: the first column left-aligned, the figures right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? ':--' : '--:'))), ...rows.map(line)].join('\n');
}

/** Linux reports process CPU in clock ticks of 1/100 s (USER_HZ). */
const TICKS_PER_SECOND = 100;

/** User and system CPU of another process so far, in ms; 0 once it has gone. */
export function processCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after the command name (which may hold spaces) start at state, field 3; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

export interface ChildHandle {
  readonly child: ChildProcess;
  /** The first line the child writes on stdout (its answer); rejects if it exits first. */
  readonly firstLine: Promise<string>;
  readonly exited: Promise<number | null>;
}

export function startChild(script: string, args: readonly string[]): ChildHandle {
  // Node flags given to the bench (--cpu-prof, say) go to the children too.
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const firstLine = Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    exited.then((code) => {
      throw new Error(`${script} exited (${code}) before it answered`);
    }),
  ]);
  return { child, firstLine, exited };
}

export interface SandboxProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** A platform's sandbox in a process of its own (bench/sandbox-process.ts), holding one account. */
export async function startSandboxProcess(args: {
  platform: string;
  seed: string;
  ownerId: string;
  accountId: string;
  holdings: number;
  transactions: number;
  rateLimitScale: number;
}): Promise<SandboxProcess> {
  const handle = startChild(fileURLToPath(new URL('./sandbox-process.ts', import.meta.url)), [JSON.stringify(args)]);
  const { url } = JSON.parse(await handle.firstLine) as { url: string };
  return {
    url,
    child: handle.child,
    stop: async () => {
      // The sandbox closes and exits when its stdin ends.
      handle.child.stdin!.end();
      await handle.exited;
    },
  };
}
