/**
 * Platform fetch throughput: for each platform, one account of 50,000 holdings and 200,000
 * transactions fetched and mapped over HTTP from the platform's sandbox through its adapter.
 *
 *   npm run bench:fetch
 *   BENCH_SCALE=0.1 npm run bench:fetch        # a quick smoke run; figures not comparable
 *   BENCH_PLATFORMS=orion,addepar npm run bench:fetch
 *
 * The sandbox runs in a child process (bench/sandbox-process.ts), so the figures for the fetching
 * process (this one) are its own and the two processes work on the two cores in parallel. Each
 * platform's account is fetched RUNS times (holdings, then the whole transaction history) through
 * a fresh connection on the same credentials; every figure is reported per run and as the median.
 * Records per fetcher CPU second is the adapter's own cost, which other load on the machine moves
 * far less than wall time. Progress goes to stderr, the tables to stdout. Node flags given to this process (--cpu-prof,
 * say) are passed to the sandbox process too.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { platformModules } from '../src/adapters/platforms/registry.ts';
import type { PlatformModule } from '../src/adapters/platforms/platform-module.ts';
import { CredentialsChangedError, type CredentialHolder, type Credentials, type Fetched } from '../src/ports/platform-adapter.ts';
import { median, processCpuMs, startSandboxProcess, table, thousands, type SandboxProcess } from './support.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? '1');
if (!(SCALE > 0 && SCALE <= 1)) throw new Error('BENCH_SCALE must be in (0, 1]');
const RUNS = 3;
const ONLY = process.env.BENCH_PLATFORMS?.split(',').map((name) => name.trim());
const HOLDINGS = Math.round(50_000 * SCALE);
const TRANSACTIONS = Math.round(200_000 * SCALE);
const TARGET_RECORDS_PER_SECOND = 50_000;
/** Shrinks every platform's rate-limit windows (sandbox and adapter alike) far enough that no limit is met. */
const RATE_LIMIT_SCALE = 0.0001;
const SEED = 'bench-fetch';
const OWNER_ID = 'bench-owner';
const ACCOUNT_ID = 'BENCH-1';
const RSS_SAMPLE_EVERY = 2_000;

interface RunResult {
  readonly records: number;
  readonly errors: number;
  readonly cursors: number;
  readonly wallMs: number;
  readonly recordsPerSecond: number;
  readonly fetcherCpuMs: number;
  readonly sandboxCpuMs: number;
  readonly rssBeforeMb: number;
  readonly peakRssMb: number;
}

/** Compare-and-swap in memory: enough for one process that is the connection's only writer. */
class MemoryCredentialHolder implements CredentialHolder {
  private version = 1;
  constructor(private credentials: Credentials) {}

  async current(): Promise<Credentials> {
    return this.credentials;
  }

  async replace(previous: Credentials, next: Credentials): Promise<number> {
    if (this.credentials !== previous) throw new CredentialsChangedError();
    this.credentials = next;
    return ++this.version;
  }
}

const megabytes = (bytes: number) => bytes / 1_048_576;

async function run(module: PlatformModule, sandbox: SandboxProcess, holder: CredentialHolder): Promise<RunResult> {
  const adapter = module.createAdapter({ baseUrl: sandbox.url, rateLimitScale: RATE_LIMIT_SCALE });
  global.gc?.();
  const rssBefore = process.memoryUsage.rss();
  let peakRss = rssBefore;
  let records = 0;
  let errors = 0;
  let cursors = 0;
  let items = 0;
  const count = (item: Fetched<unknown>) => {
    if (item.kind === 'record') records++;
    else if (item.kind === 'error') errors++;
    else cursors++;
    if (++items % RSS_SAMPLE_EVERY === 0) peakRss = Math.max(peakRss, process.memoryUsage.rss());
  };
  const sandboxCpuBefore = processCpuMs(sandbox.child.pid!);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const connection = adapter.open(holder);
  for await (const item of connection.holdings(ACCOUNT_ID)) count(item);
  for await (const item of connection.transactions(ACCOUNT_ID)) count(item);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return {
    records,
    errors,
    cursors,
    wallMs,
    recordsPerSecond: records / (wallMs / 1000),
    fetcherCpuMs: (cpu.user + cpu.system) / 1000,
    sandboxCpuMs: processCpuMs(sandbox.child.pid!) - sandboxCpuBefore,
    rssBeforeMb: megabytes(rssBefore),
    peakRssMb: megabytes(peakRss),
  };
}

const fixed = (value: number, digits: number) => value.toFixed(digits);

async function main(): Promise<void> {
  process.stderr.write(`bench:fetch: ${HOLDINGS.toLocaleString('en-US')} holdings + ${TRANSACTIONS.toLocaleString('en-US')} transactions per platform, ${RUNS} runs, ${cpus().length} cores, Node ${process.version}\n`);
  const results = new Map<string, RunResult[]>();
  for (const module of platformModules) {
    if (ONLY !== undefined && !ONLY.includes(module.platform)) continue;
    const sandbox = await startSandboxProcess({ platform: module.platform, seed: SEED, ownerId: OWNER_ID, accountId: ACCOUNT_ID, holdings: HOLDINGS, transactions: TRANSACTIONS, rateLimitScale: RATE_LIMIT_SCALE });
    try {
      const bootstrap = module.createAdapter({ baseUrl: sandbox.url, rateLimitScale: RATE_LIMIT_SCALE });
      const holder = new MemoryCredentialHolder(await module.connectWithoutUser(bootstrap, sandbox, OWNER_ID));
      const runs: RunResult[] = [];
      for (let i = 1; i <= RUNS; i++) {
        const result = await run(module, sandbox, holder);
        runs.push(result);
        process.stderr.write(
          `${module.platform} run ${i}: ${thousands(result.records)} records, ${result.errors} errors, ${result.cursors} cursors in ${fixed(result.wallMs / 1000, 2)} s = ${thousands(result.recordsPerSecond)} records/s; peak RSS ${fixed(result.peakRssMb, 0)} MB\n`,
        );
      }
      results.set(module.platform, runs);
    } finally {
      await sandbox.stop();
    }
  }

  const expected = HOLDINGS + TRANSACTIONS;
  const perRun: string[][] = [];
  for (const [platform, runs] of results) {
    runs.forEach((r, i) =>
      perRun.push([
        `${platform} #${i + 1}`,
        thousands(r.records),
        String(r.errors),
        String(r.cursors),
        fixed(r.wallMs / 1000, 2),
        thousands(r.recordsPerSecond),
        fixed(r.fetcherCpuMs / 1000, 2),
        thousands(r.records / (r.fetcherCpuMs / 1000)),
        fixed(r.sandboxCpuMs / 1000, 2),
        fixed(r.rssBeforeMb, 0),
        fixed(r.peakRssMb, 0),
      ]),
    );
  }
  process.stdout.write(`\nPer run (${thousands(HOLDINGS)} holdings + ${thousands(TRANSACTIONS)} transactions each)\n\n`);
  process.stdout.write(`${table(['platform, run', 'records', 'sync errors', 'cursors', 'wall s', 'records/s', 'fetcher CPU s', 'records per fetcher CPU s', 'sandbox CPU s', 'RSS before MB', 'peak RSS MB'], perRun)}\n`);

  const medians: string[][] = [];
  let incomplete = false;
  for (const [platform, runs] of results) {
    const rate = median(runs.map((r) => r.recordsPerSecond));
    const complete = runs.every((r) => r.records === expected && r.errors === 0 && r.cursors === 1);
    const met = rate >= TARGET_RECORDS_PER_SECOND && complete;
    incomplete ||= !complete;
    medians.push([
      platform,
      thousands(rate),
      fixed(median(runs.map((r) => r.wallMs)) / 1000, 2),
      fixed(median(runs.map((r) => r.peakRssMb)), 0),
      fixed(median(runs.map((r) => r.fetcherCpuMs)) / 1000, 2),
      thousands(median(runs.map((r) => r.records / (r.fetcherCpuMs / 1000)))),
      fixed(median(runs.map((r) => r.sandboxCpuMs)) / 1000, 2),
      complete ? 'yes' : '**no**',
      met ? 'met' : '**missed**',
    ]);
  }
  process.stdout.write(`\nMedians of ${RUNS} runs; target ≥ ${thousands(TARGET_RECORDS_PER_SECOND)} records/s per adapter (holdings and transactions together)\n\n`);
  process.stdout.write(`${table(['platform', 'records/s', 'wall s', 'peak RSS MB', 'fetcher CPU s', 'records per fetcher CPU s', 'sandbox CPU s', `all ${thousands(expected)} records, 0 errors, 1 cursor`, 'target'], medians)}\n`);
  if (SCALE < 1) process.stdout.write(`\nBENCH_SCALE=${SCALE}: a smoke run; its figures are not comparable with full runs.\n`);
  // A fetch that lost records or mapped any with errors is a failure whatever its speed.
  if (incomplete) process.exitCode = 1;
}

await main();
