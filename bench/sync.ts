/**
 * Sync end to end: one account of 50,000 holdings and 200,000 transactions pulled over HTTP from
 * its platform's sandbox through runSync, appended to the log as source events and projected into
 * every read model (composition.ts's projectors, run by a ProjectionWorker as the service runs them).
 *
 *   npm run bench:sync
 *   BENCH_PLATFORMS=addepar npm run bench:sync      # orion by default; a comma list runs several
 *   BENCH_SCALE=0.1 npm run bench:sync              # a quick smoke run; figures not comparable
 *   BENCH_RUNS=1 npm run bench:sync                 # one run instead of 3 (for profiling)
 *   DATABASE_URL=postgres://… npm run bench:sync    # default: postgres://postgres@127.0.0.1:5432/postgres
 *
 * The sandbox runs in a child process of its own (bench/sandbox-process.ts), and so does each run
 * of the ledger (this script with `--run`), so that a run's peak RSS is its own. A run creates its
 * own database, links the connection to a portfolio, then syncs holdings and transactions as the
 * scheduler does (one operation per data type; transactions are requested as soon as the holdings
 * operation has finished pulling, while the projectors are still at work). Figures per run:
 * records/min from the first request until every projector holds everything; the time until the
 * consolidated holdings of the portfolio are current (the consolidation projector has applied the
 * holdings operation's SyncCompleted); peak RSS of the ledger process; then an unchanged re-sync of
 * both data types (time until every projector is current again, events appended, of which source
 * data events must be 0). RUNS runs, medians reported. Progress goes to stderr, tables to stdout.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { ulid } from 'ulid';
import { z } from 'zod';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { platformModule, platformModules } from '../src/adapters/platforms/registry.ts';
import { SANDBOX_USD_PER_UNIT, type RunningSandbox } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { connect } from '../src/adapters/postgres/database.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal, LogNotifier } from '../src/adapters/postgres/log-notifier.ts';
import { migrateToLatest } from '../src/adapters/postgres/migrator.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { ProjectionWorker } from '../src/adapters/postgres/projection-worker.ts';
import { createSyncServices } from '../src/adapters/scheduler/sync-services.ts';
import { projectors } from '../src/composition.ts';
import { authorizeConnection, initiateConnection } from '../src/commands/connections.ts';
import { recordFxRates } from '../src/commands/fx-rates.ts';
import { createPortfolio, linkConnection } from '../src/commands/portfolios.ts';
import { requestSync } from '../src/commands/sync-requests.ts';
import { runSync, type SyncOutcome } from '../src/commands/sync-run.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { PlatformSchema, type DataType, type Platform } from '../src/domain/platforms/records.ts';
import { syncOperationStreamId } from '../src/domain/sync/sync-operation.ts';
import { cursorReached, type LogCursor } from '../src/ports/event-store.ts';
import { median, processCpuMs, startChild, startSandboxProcess, table, thousands } from './support.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? '1');
if (!(SCALE > 0 && SCALE <= 1)) throw new Error('BENCH_SCALE must be in (0, 1]');
const RUNS = Number(process.env.BENCH_RUNS ?? '3');
if (!(Number.isInteger(RUNS) && RUNS >= 1)) throw new Error('BENCH_RUNS must be a positive integer');
const PLATFORMS = (process.env.BENCH_PLATFORMS ?? 'orion').split(',').map((name) => PlatformSchema.parse(name.trim()));
const HOLDINGS = Math.round(50_000 * SCALE);
const TRANSACTIONS = Math.round(200_000 * SCALE);
const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TARGETS = { recordsPerMinute: 600_000, currentMs: 15_000, resyncMs: 5_000, peakRssMb: 300 };
/** Shrinks the sandbox's and the adapter's rate-limit windows far enough that no limit is met. */
const RATE_LIMIT_SCALE = 0.0001;
const SEED = 'bench-sync';
const OWNER_ID = 'bench-owner';
const ACCOUNT_ID = 'BENCH-1';
const PORTFOLIO_ID = 'bench-portfolio';
const CONNECTION_ID = 'bench-connection';
const POLL_MS = 10;

const RunArgumentsSchema = z.object({ platform: PlatformSchema, sandboxUrl: z.string().url(), sandboxPid: z.number().int().positive() });
type RunArguments = z.infer<typeof RunArgumentsSchema>;

interface RunResult {
  readonly records: number;
  readonly failed: number;
  readonly sourceRows: number;
  readonly portfolioHoldings: number;
  readonly holdingsSyncMs: number;
  readonly currentMs: number;
  readonly transactionsSyncMs: number;
  readonly endToEndMs: number;
  readonly recordsPerMinute: number;
  readonly peakRssMb: number;
  readonly ledgerCpuMs: number;
  readonly sandboxCpuMs: number;
  readonly serverCpuMs: number;
  readonly resyncMs: number;
  readonly resyncEvents: number;
  readonly resyncDataEvents: number;
  readonly resyncPulled: number;
  /** When each projector held everything, from the first request (ms). */
  readonly projectorsCurrentMs: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** CPU of the PostgreSQL backends serving a database (found by name in their process titles) so far. */
function serverCpuMs(database: string): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (title.startsWith('postgres: ') && title.includes(` ${database} `)) cpu.set(Number(entry), processCpuMs(Number(entry)));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return cpu;
}

function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);

// ---------------------------------------------------------------------------------------------
// One run, in a ledger process of its own


async function singleRun(args: RunArguments): Promise<RunResult> {
  const name = `bench_sync_${ulid().toLowerCase()}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const database = connect(databaseUrl);
  const logger = pino({ level: 'warn' });
  const notifier = new LogNotifier(databaseUrl, logger);
  let worker: ProjectionWorker | null = null;
  const dropDatabase = async () => {
    await worker?.stop();
    await notifier.close().catch(() => {});
    await database.close().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
  const interrupted = () => void dropDatabase().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await migrateToLatest(database.db);
    await notifier.start();
    const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, notifier, appendSignal: new AppendSignal(database.pool) });
    const engine = new ProjectionEngine(database.db, store, projectors);
    const credentials = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'bench', key: randomBytes(32) }]));
    const ledger = { database, store, engine, credentials };
    const services = createSyncServices(ledger, { [args.platform]: { baseUrl: args.sandboxUrl, rateLimitScale: RATE_LIMIT_SCALE } });
    worker = new ProjectionWorker(engine, databaseUrl, notifier, logger);
    worker.start();

    const checkpoints = async () => {
      const result = await sql<{ projector: string; transaction_id: string; position: number }>`
        SELECT projector, transaction_id::text, position FROM projection_checkpoints`.execute(database.db);
      return new Map(result.rows.map((r) => [r.projector, { transactionId: r.transaction_id, position: r.position }]));
    };
    /** Resolves when every given projector has reached the target; `at` notes when each did. */
    const until = async (target: LogCursor, which: readonly string[], at = new Map<string, number>()) => {
      for (;;) {
        const held = await checkpoints();
        const now = performance.now();
        for (const projector of which) if (!at.has(projector) && cursorReached(held.get(projector) ?? null, target)) at.set(projector, now);
        if (at.size === which.length) return now;
        await delay(POLL_MS);
      }
    };
    const everyProjector = projectors.map((p) => p.name);
    const allCurrent = async (at?: Map<string, number>) => until((await store.head())!, everyProjector, at);
    const completedAt = async (operationId: string): Promise<LogCursor> => {
      const [last] = await store.readStream(syncOperationStreamId(operationId), { direction: 'backwards', maxCount: 1 });
      return { transactionId: last!.transactionId, position: last!.globalPosition };
    };
    const sync = async (dataType: DataType): Promise<SyncOutcome> => {
      const { operationId } = await requestSync(services, { connectionId: CONNECTION_ID, dataTypes: [dataType], trigger: 'manual', requestedBy: 'bench' });
      const outcome = await runSync(services, operationId);
      if (outcome.status !== 'completed') throw new Error(`the ${dataType} sync ended ${outcome.status}: ${JSON.stringify(outcome.error ?? outcome.counts)}`);
      return outcome;
    };

    // The portfolio, the FX rates the sandboxes price in, and the connection linked to the portfolio.
    await createPortfolio(store, { portfolioId: PORTFOLIO_ID, ownerId: OWNER_ID, name: 'Bench', baseCurrency: 'USD' });
    await recordFxRates(store, {
      rates: Object.entries(SANDBOX_USD_PER_UNIT).filter(([currency]) => currency !== 'USD').map(([currency, rate]) => ({ currency, quote: 'USD', asOf: '2000-01-01', rate })),
      source: 'sandbox rates',
    });
    await initiateConnection(ledger, { connectionId: CONNECTION_ID, ownerId: OWNER_ID, platform: args.platform, platformAccountId: ACCOUNT_ID });
    const sandbox = { url: args.sandboxUrl } as RunningSandbox;
    await authorizeConnection(ledger, { connectionId: CONNECTION_ID, credentials: await platformModule(args.platform).connectWithoutUser(services.adapterFor(args.platform), sandbox, OWNER_ID) });
    await linkConnection(store, { portfolioId: PORTFOLIO_ID, connectionId: CONNECTION_ID });
    await allCurrent();

    const cpuBefore = process.cpuUsage();
    const sandboxBefore = processCpuMs(args.sandboxPid);
    const serverBefore = serverCpuMs(name);
    const started = performance.now();
    const holdings = await sync('holdings');
    const holdingsSynced = performance.now();
    // The consolidated view is current once consolidation has applied the holdings operation's end.
    const current = until(await completedAt(holdings.operationId), ['consolidation']);
    const transactions = await sync('transactions');
    const transactionsSynced = performance.now();
    const consolidated = await current;
    const projectorsAt = new Map<string, number>();
    const done = await allCurrent(projectorsAt);
    const serverAfter = serverCpuMs(name);
    const cpu = process.cpuUsage(cpuBefore);
    const sandboxCpuMs = processCpuMs(args.sandboxPid) - sandboxBefore;
    const records = holdings.counts.processed + transactions.counts.processed;

    const counted = await sql<{ source_rows: number; portfolio_holdings: number }>`
      SELECT (SELECT count(*) FROM source_records WHERE connection_id = ${CONNECTION_ID})::int AS source_rows,
             (SELECT holdings_count FROM portfolios WHERE portfolio_id = ${PORTFOLIO_ID}) AS portfolio_holdings`.execute(database.db);

    // An unchanged re-sync: holdings are a snapshot (pulled and compared again), transactions resume from the cursor.
    const head = (await store.head())!;
    const resyncStarted = performance.now();
    const again = [await sync('holdings'), await sync('transactions')];
    const resynced = await allCurrent();
    const appended = await sql<{ events: number; data_events: number }>`
      SELECT count(*)::int AS events, (count(*) FILTER (WHERE event_type LIKE 'Source%'))::int AS data_events FROM events
       WHERE (transaction_id, global_position) > (${head.transactionId}::xid8, ${head.position}::bigint)`.execute(database.db);

    return {
      records,
      failed: holdings.counts.failed + transactions.counts.failed,
      sourceRows: counted.rows[0]!.source_rows,
      portfolioHoldings: counted.rows[0]!.portfolio_holdings,
      holdingsSyncMs: holdingsSynced - started,
      currentMs: consolidated - started,
      transactionsSyncMs: transactionsSynced - holdingsSynced,
      endToEndMs: done - started,
      recordsPerMinute: records / ((done - started) / 60_000),
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      ledgerCpuMs: (cpu.user + cpu.system) / 1000,
      sandboxCpuMs,
      serverCpuMs: cpuSince(serverBefore, serverAfter),
      resyncMs: resynced - resyncStarted,
      resyncEvents: appended.rows[0]!.events,
      resyncDataEvents: appended.rows[0]!.data_events,
      resyncPulled: again.reduce((sum, outcome) => sum + outcome.counts.processed, 0),
      projectorsCurrentMs: Object.fromEntries([...projectorsAt].map(([projector, at]) => [projector, Math.round(at - started)])),
    };
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await dropDatabase();
  }
}

// ---------------------------------------------------------------------------------------------
// The bench: a sandbox process per platform, a ledger process per run

async function benchPlatform(platform: Platform): Promise<RunResult[]> {
  const sandbox = await startSandboxProcess({ platform, seed: SEED, ownerId: OWNER_ID, accountId: ACCOUNT_ID, holdings: HOLDINGS, transactions: TRANSACTIONS, rateLimitScale: RATE_LIMIT_SCALE });
  try {
    const { url } = sandbox;
    const runs: RunResult[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const run = startChild(fileURLToPath(import.meta.url), ['--run', JSON.stringify({ platform, sandboxUrl: url, sandboxPid: sandbox.child.pid })]);
      const result = JSON.parse(await run.firstLine) as RunResult;
      if ((await run.exited) !== 0) throw new Error(`run ${i} of ${platform} failed`);
      runs.push(result);
      process.stderr.write(
        `${platform} run ${i}: ${thousands(result.records)} records in ${seconds(result.endToEndMs)} s = ${thousands(result.recordsPerMinute)} records/min; ` +
          `holdings current after ${seconds(result.currentMs)} s; peak RSS ${result.peakRssMb.toFixed(0)} MB; ` +
          `re-sync ${seconds(result.resyncMs)} s, ${result.resyncEvents} events (${result.resyncDataEvents} data); ` +
          `projectors current after (s): ${Object.entries(result.projectorsCurrentMs).map(([projector, ms]) => `${projector} ${seconds(ms)}`).join(', ')}\n`,
      );
    }
    return runs;
  } finally {
    await sandbox.stop();
  }
}

async function main(): Promise<void> {
  process.stderr.write(
    `bench:sync: ${thousands(HOLDINGS)} holdings + ${thousands(TRANSACTIONS)} transactions, ${PLATFORMS.join(', ')}, ${RUNS} runs, ${cpus().length} cores, Node ${process.version}\n`,
  );
  const results = new Map<Platform, RunResult[]>();
  for (const platform of PLATFORMS) {
    if (!platformModules.some((module) => module.platform === platform)) throw new Error(`unknown platform ${platform}`);
    results.set(platform, await benchPlatform(platform));
  }
  const expected = HOLDINGS + TRANSACTIONS;
  const perRun: string[][] = [];
  for (const [platform, runs] of results) {
    runs.forEach((r, i) =>
      perRun.push([
        `${platform} #${i + 1}`,
        thousands(r.records),
        seconds(r.holdingsSyncMs),
        seconds(r.currentMs),
        seconds(r.transactionsSyncMs),
        seconds(r.endToEndMs),
        thousands(r.recordsPerMinute),
        r.peakRssMb.toFixed(0),
        seconds(r.ledgerCpuMs),
        seconds(r.sandboxCpuMs),
        seconds(r.serverCpuMs),
        seconds(r.resyncMs),
        `${r.resyncEvents} (${r.resyncDataEvents})`,
      ]),
    );
  }
  process.stdout.write(`\nPer run (${thousands(HOLDINGS)} holdings + ${thousands(TRANSACTIONS)} transactions)\n\n`);
  process.stdout.write(
    `${table(['platform, run', 'records', 'holdings sync s', 'holdings current s', 'transactions sync s', 'end to end s', 'records/min', 'peak RSS MB', 'ledger CPU s', 'sandbox CPU s', 'server CPU s', 're-sync s', 're-sync events (data)'], perRun)}\n`,
  );

  let failed = false;
  const medians: string[][] = [];
  for (const [platform, runs] of results) {
    const complete = runs.every((r) => r.records === expected && r.failed === 0 && r.sourceRows === expected && r.portfolioHoldings > 0 && r.resyncDataEvents === 0);
    const rate = median(runs.map((r) => r.recordsPerMinute));
    const current = median(runs.map((r) => r.currentMs));
    const resync = median(runs.map((r) => r.resyncMs));
    const rss = median(runs.map((r) => r.peakRssMb));
    const verdict = (met: boolean) => (met ? 'met' : '**missed**');
    failed ||= !complete;
    medians.push([
      platform,
      `${thousands(rate)} (${verdict(rate >= TARGETS.recordsPerMinute)})`,
      `${seconds(current)} (${verdict(current < TARGETS.currentMs)})`,
      `${seconds(resync)} (${verdict(resync < TARGETS.resyncMs)})`,
      `${rss.toFixed(0)} (${verdict(rss < TARGETS.peakRssMb)})`,
      seconds(median(runs.map((r) => r.endToEndMs))),
      complete ? 'yes' : '**no**',
    ]);
  }
  process.stdout.write(
    `\nMedians of ${RUNS} runs; targets: ≥ ${thousands(TARGETS.recordsPerMinute)} records/min, holdings current < ${TARGETS.currentMs / 1000} s, unchanged re-sync < ${TARGETS.resyncMs / 1000} s, peak RSS < ${TARGETS.peakRssMb} MB\n\n`,
  );
  process.stdout.write(
    `${table(['platform', 'records/min', 'holdings current s', 'unchanged re-sync s', 'peak RSS MB', 'end to end s', `all ${thousands(expected)} records stored, 0 failed, re-sync 0 data events`], medians)}\n`,
  );
  if (SCALE < 1) process.stdout.write(`\nBENCH_SCALE=${SCALE}: a smoke run; its figures are not comparable with full runs.\n`);
  // A sync that lost records or appended data on an unchanged re-sync is a failure whatever its speed.
  if (failed) process.exitCode = 1;
}

if (process.argv[2] === '--run') {
  const result = await singleRun(RunArgumentsSchema.parse(JSON.parse(process.argv[3] ?? '{}')));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // The worker's and notifier's connections are closed; anything left (keep-alive sockets) must not hold the run open.
  process.exit(0);
} else {
  await main();
}
