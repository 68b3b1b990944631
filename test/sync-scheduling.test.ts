import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { orion } from '../src/adapters/platforms/orion/index.ts';
import type { RunningSandbox } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { SyncQueue } from '../src/adapters/scheduler/sync-queue.ts';
import { createSyncServices } from '../src/adapters/scheduler/sync-services.ts';
import { authorizeConnection, initiateConnection } from '../src/commands/connections.ts';
import type { SyncServices } from '../src/commands/sync-services.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { sourceRecordsProjector } from '../src/projections/source-records.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { eventually } from './support/eventually.ts';

const key = randomBytes(32);
let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
let services: SyncServices;
let queue: SyncQueue;
let sandbox: RunningSandbox;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 30 });
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, [sourceRecordsProjector]);
  const credentials = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key }]));
  sandbox = await orion.startSandbox({ seed: 'sync-scheduling', autoApprove: true, rateLimitScale: 0.0001 });
  services = createSyncServices({ database, store, engine, credentials }, { orion: { baseUrl: sandbox.url, rateLimit: { requests: 1_000_000, perMs: 60_000 } } });
  queue = new SyncQueue(database.pool, services);
});
afterAll(async () => {
  await sandbox?.close();
  await database?.drop();
});

async function connectOrion(connectionId: string, ownerId: string, accountId: string): Promise<void> {
  await initiateConnection(services, { connectionId, ownerId, platform: 'orion', platformAccountId: accountId });
  await authorizeConnection(services, { connectionId, credentials: await orion.connectWithoutUser(services.adapterFor('orion'), sandbox, ownerId) });
}

async function queueRow(connectionId: string) {
  const result = await sql<{ running: boolean; last_status: string | null; last_operation_id: string | null; runs: number }>`
    SELECT running, last_status, last_operation_id, runs FROM sync_queue WHERE connection_id = ${connectionId}`.execute(database.db);
  return result.rows[0];
}

describe('scheduled syncs on the durable queue', () => {
  it('a worker killed with SIGKILL mid-sync: the next worker resumes the operation and nothing is appended twice', async () => {
    const HOLDINGS = 20_000;
    sandbox.world.addAccount({ ownerId: 'kill-owner', id: 'kill-acct', holdings: HOLDINGS, transactions: 5 });
    await connectOrion('kill-conn', 'kill-owner', 'kill-acct');
    await queue.schedule('kill-conn', ['holdings']);

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sync-worker-process.ts', JSON.stringify({ databaseUrl: database.connectionString, key: key.toString('base64'), endpoints: { orion: { baseUrl: sandbox.url } } })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const stream = 'source-kill-conn.holdings';
    await eventually(async () => (await store.readStream(stream, { direction: 'backwards', maxCount: 1 }))[0]?.streamVersion! >= 2000, 60_000);
    child.kill('SIGKILL');
    await exited;
    const atKill = (await store.readStream(stream, { direction: 'backwards', maxCount: 1 }))[0]!.streamVersion;
    expect(atKill).toBeLessThan(HOLDINGS);
    expect((await queueRow('kill-conn'))!.running).toBe(true);

    const worker = queue.startWorker({ concurrency: 1, pollMs: 100, heartbeatMs: 200, staleAfterMs: 3000 });
    try {
      await eventually(async () => (await queueRow('kill-conn'))?.last_status === 'completed', 90_000);
    } finally {
      await worker.stop();
    }
    const row = (await queueRow('kill-conn'))!;
    const events = await store.readStream(stream);
    expect(events).toHaveLength(HOLDINGS);
    expect(new Set(events.map((e) => (e.data as { recordId: string }).recordId)).size).toBe(HOLDINGS);
    const operation = await store.readStream(`sync-${row.last_operation_id}`);
    expect(operation.filter((e) => e.type === 'SyncStarted')).toHaveLength(1);
    expect(operation.filter((e) => e.type === 'SyncCompleted').map((e) => e.data)).toEqual([
      { operationId: row.last_operation_id, outcome: 'completed', counts: { processed: HOLDINGS, inserted: HOLDINGS, updated: 0, skipped: 0, failed: 0 } },
    ]);
    // Claimed twice: by the worker that died and by the one that finished its operation.
    expect(row.runs).toBe(2);

    const snapshot = async () => (await sql`SELECT * FROM source_records WHERE connection_id = 'kill-conn' ORDER BY record_id`.execute(database.db)).rows;
    await engine.catchUpTo(sourceRecordsProjector);
    const live = await snapshot();
    await engine.rebuild(sourceRecordsProjector);
    expect(await snapshot()).toEqual(live);
  });

  it('1,000 connections on schedules: every sync runs and completes, never more than the global bound at once, none twice', async () => {
    const CONNECTIONS = 1000;
    const GLOBAL = 10;
    for (let i = 0; i < CONNECTIONS; i++) sandbox.world.addAccount({ ownerId: `owner-${i}`, id: `acct-${i}`, holdings: 3, transactions: 0 });
    for (let start = 0; start < CONNECTIONS; start += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => start + j).map((i) => connectOrion(`many-${i}`, `owner-${i}`, `acct-${i}`)));
    }
    for (let i = 0; i < CONNECTIONS; i++) await queue.schedule(`many-${i}`, ['holdings']);

    let peak = 0;
    const finishedTwice: string[] = [];
    const finished = new Set<string>();
    const onFinished = (job: { connectionId: string }) => {
      if (finished.has(job.connectionId)) finishedTwice.push(job.connectionId);
      finished.add(job.connectionId);
    };
    const workers = [1, 2].map(() => queue.startWorker({ concurrency: 8, globalConcurrency: GLOBAL, pollMs: 50, onFinished }));
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const result = await sql<{ n: number }>`SELECT count(*)::int AS n FROM sync_queue WHERE running`.execute(database.db);
        peak = Math.max(peak, result.rows[0]!.n);
        await delay(10);
      }
    })();
    try {
      await eventually(async () => finished.size >= CONNECTIONS + 1 || [...finished].filter((id) => id.startsWith('many-')).length === CONNECTIONS, 240_000);
    } finally {
      sampling = false;
      await sampler;
      await Promise.all(workers.map((worker) => worker.stop()));
    }
    expect(finishedTwice).toEqual([]);
    expect(peak).toBeLessThanOrEqual(GLOBAL);
    expect(peak).toBeGreaterThan(1);
    const rows = await sql<{ status: string | null; n: number }>`
      SELECT last_status AS status, count(*)::int AS n FROM sync_queue WHERE connection_id LIKE 'many-%' GROUP BY 1`.execute(database.db);
    expect(rows.rows).toEqual([{ status: 'completed', n: CONNECTIONS }]);
    const records = await sql<{ n: number }>`SELECT count(*)::int AS n FROM source_records WHERE connection_id LIKE 'many-%'`.execute(database.db);
    await engine.catchUpTo(sourceRecordsProjector);
    expect((await sql<{ n: number }>`SELECT count(*)::int AS n FROM source_records WHERE connection_id LIKE 'many-%'`.execute(database.db)).rows[0]!.n).toBe(3 * CONNECTIONS);
    expect(records.rows[0]!.n).toBeLessThanOrEqual(3 * CONNECTIONS);
  }, 400_000);
});
