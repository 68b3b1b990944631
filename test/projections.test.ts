import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal, LogNotifier } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine, REBUILD_LOCK } from '../src/adapters/postgres/projection-engine.ts';
import { ProjectionWorker } from '../src/adapters/postgres/projection-worker.ts';
import { auditLogProjector } from '../src/projections/audit-log.ts';
import { streamCatalogueProjector } from '../src/projections/stream-catalogue.ts';
import { eventually } from './support/eventually.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { inc, testCatalogue } from './support/events.ts';

const silent = pino({ level: 'silent' });
let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 20 });
  store = new PostgresEventStore(database.pool, { catalogue: testCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, [auditLogProjector, streamCatalogueProjector], { batchSize: 200 });
});
afterAll(async () => database?.drop());

beforeEach(async () => {
  // Every test starts from an empty log and no projector tables.
  await sql`TRUNCATE events, streams, projection_checkpoints RESTART IDENTITY`.execute(database.db);
  await sql`DROP TABLE IF EXISTS audit_log, stream_catalogue`.execute(database.db);
});

async function appendMany(streams: number, perStream: number, actor = 'tester'): Promise<void> {
  for (let s = 0; s < streams; s++) {
    const events = Array.from({ length: perStream }, (_, i) => ({ ...inc(i), metadata: { actor, source: 'test', correlationId: `c-${s}` } }));
    await store.append(`counter-${s}`, events);
  }
}

async function auditRows(): Promise<unknown[]> {
  const result = await sql`SELECT * FROM audit_log ORDER BY global_position`.execute(database.db);
  return result.rows;
}

async function countOf(table: string): Promise<number> {
  const result = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table)}`.execute(database.db);
  return result.rows[0]!.n;
}

describe('projection engine', () => {
  it('applies every event once and reports lag before and after', async () => {
    await appendMany(5, 40);
    await engine.ensure(auditLogProjector);
    await engine.ensure(streamCatalogueProjector);

    const before = await engine.status();
    expect(before.map((s) => s.eventsBehind)).toEqual([200, 200]);
    expect(before[0]!.headPosition).toBe(200);
    expect(before[0]!.oldestUnprocessedAgeSeconds).toBeGreaterThanOrEqual(0);

    await engine.catchUpTo(auditLogProjector);
    await engine.catchUpTo(streamCatalogueProjector);
    const after = await engine.status();
    expect(after.map((s) => s.eventsBehind)).toEqual([0, 0]);
    expect(after.map((s) => s.oldestUnprocessedAgeSeconds)).toEqual([0, 0]);

    expect(await countOf('audit_log')).toBe(200);
    const row = await sql<{ stream_id: string; event_type: string; actor: string; source: string; correlation_id: string }>`
      SELECT stream_id, event_type, actor, source, correlation_id FROM audit_log WHERE stream_id = 'counter-3' AND stream_version = 7`.execute(database.db);
    expect(row.rows).toEqual([{ stream_id: 'counter-3', event_type: 'CounterIncremented', actor: 'tester', source: 'test', correlation_id: 'c-3' }]);
    const catalogue = await sql<{ stream_id: string; category: string; version: number }>`
      SELECT stream_id, category, version FROM stream_catalogue ORDER BY stream_id`.execute(database.db);
    expect(catalogue.rows).toHaveLength(5);
    expect(catalogue.rows.every((r) => r.category === 'counter' && r.version === 40)).toBe(true);
  });

  it('leaves a read model equal to a rebuild after a worker is SIGKILLed mid-batch', async () => {
    await appendMany(10, 100);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/slow-projection-worker.ts', database.connectionString], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let midBatches = 0;
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        midBatches += chunk.toString().split('mid-batch').length - 1;
        // Two batches committed, the third half-written inside its transaction: kill it now.
        if (midBatches >= 3) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => reject(new Error('worker exited before it could be killed')));
    });
    await new Promise((resolve) => child.once('close', resolve));

    const [killed] = (await engine.status()).filter((s) => s.projector === 'audit_log');
    const committed = killed!.checkpoint.position;
    expect(committed % 100).toBe(0);
    expect(committed).toBeGreaterThanOrEqual(200);
    expect(committed).toBeLessThan(1000);
    // The half-written batch left nothing behind: rows and checkpoint moved together.
    expect(await countOf('audit_log')).toBe(committed);

    await engine.catchUpTo(auditLogProjector);
    const resumed = await auditRows();
    expect(resumed).toHaveLength(1000);
    await engine.rebuild(auditLogProjector);
    expect(await auditRows()).toEqual(resumed);
  });

  it('never shows readers an empty or partial read model during a rebuild', async () => {
    await appendMany(20, 150);
    await engine.ensure(auditLogProjector);
    await engine.catchUpTo(auditLogProjector);
    const before = await auditRows();

    let reads = 0;
    const seen = new Set<number>();
    let rebuilding = true;
    const reader = (async () => {
      while (rebuilding) {
        seen.add(await countOf('audit_log'));
        reads++;
      }
    })();
    const progress: number[] = [];
    await engine.rebuild(auditLogProjector, ({ applied }) => progress.push(applied));
    rebuilding = false;
    await reader;

    expect(reads).toBeGreaterThan(5);
    expect([...seen]).toEqual([3000]);
    expect(progress.at(-1)).toBe(3000);
    expect(await auditRows()).toEqual(before);
    const [status] = await engine.status();
    expect(status!.rebuiltAt).not.toBeNull();
    expect(status!.eventsBehind).toBe(0);
  });

  it('rebuilds while events keep arriving and the live worker keeps applying', async () => {
    await appendMany(10, 100);
    const notifier = new LogNotifier(database.connectionString, silent);
    await notifier.start();
    const worker = new ProjectionWorker(engine, database.connectionString, notifier, silent, { pollIntervalMs: 100 });
    worker.start();
    try {
      const writer = (async () => {
        for (let i = 0; i < 40; i++) await store.append(`late-${i % 4}`, [inc(i)]);
      })();
      await engine.ensure(auditLogProjector);
      await engine.rebuild(auditLogProjector);
      await writer;
      await eventually(async () => (await engine.status()).every((s) => s.eventsBehind === 0));
      const rows = (await auditRows()) as { global_position: number }[];
      expect(rows).toHaveLength(1040);
      expect(new Set(rows.map((r) => r.global_position)).size).toBe(1040);
    } finally {
      await worker.stop();
      await notifier.close();
    }
  });

  it('lets one of two workers lead each projector and hands over when the leader stops', async () => {
    const notifier = new LogNotifier(database.connectionString, silent);
    await notifier.start();
    const first = new ProjectionWorker(engine, database.connectionString, notifier, silent, { pollIntervalMs: 100, standbyRetryMs: 100 });
    const second = new ProjectionWorker(engine, database.connectionString, notifier, silent, { pollIntervalMs: 100, standbyRetryMs: 100 });
    first.start();
    await eventually(async () => first.state().every((s) => s.leader));
    second.start();
    try {
      await appendMany(4, 50);
      await eventually(async () => (await engine.status()).every((s) => s.eventsBehind === 0));
      expect(second.state().some((s) => s.leader)).toBe(false);

      await first.stop();
      await eventually(async () => second.state().every((s) => s.leader));
      await appendMany(2, 25, 'after-handover');
      await eventually(async () => (await engine.status()).every((s) => s.eventsBehind === 0));
      expect(await countOf('audit_log')).toBe(250);
      const handedOver = await sql<{ n: number }>`SELECT count(*)::int AS n FROM audit_log WHERE actor = 'after-handover'`.execute(database.db);
      expect(handedOver.rows[0]!.n).toBe(50);
    } finally {
      await first.stop();
      await second.stop();
      await notifier.close();
    }
  });

  it('runs one rebuild of a projector at a time and clears what a crashed rebuild left behind', async () => {
    await appendMany(2, 10);
    await engine.ensure(auditLogProjector);
    await sql`CREATE SCHEMA rebuild_audit_log_01kabcdefghjkmnpqrstvwxyz0`.execute(database.db);
    await sql`CREATE TABLE rebuild_audit_log_01kabcdefghjkmnpqrstvwxyz0.audit_log (global_position bigint)`.execute(database.db);
    await sql`CREATE SCHEMA rebuild_audit_log_v2_01kabcdefghjkmnpqrstvwxyz0`.execute(database.db);

    const holder = await database.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [REBUILD_LOCK, 'audit_log']);
      await expect(engine.rebuild(auditLogProjector)).rejects.toThrow('a rebuild of audit_log is already running');
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1, hashtext($2))', [REBUILD_LOCK, 'audit_log']);
      holder.release();
    }

    expect(await engine.rebuild(auditLogProjector)).toBe(20);
    const schemas = await sql<{ nspname: string }>`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild%' ORDER BY nspname`.execute(database.db);
    // Only the schema of another projector whose name merely starts alike is left.
    expect(schemas.rows.map((r) => r.nspname)).toEqual(['rebuild_audit_log_v2_01kabcdefghjkmnpqrstvwxyz0']);
    await sql`DROP SCHEMA rebuild_audit_log_v2_01kabcdefghjkmnpqrstvwxyz0`.execute(database.db);
  });

  it('asks for a rebuild when a projector version changes', async () => {
    await appendMany(1, 5);
    expect(await engine.ensure(auditLogProjector)).toBe('ready');
    const next = { ...auditLogProjector, version: auditLogProjector.version + 1 };
    expect(await engine.ensure(next)).toBe('rebuild');
    await engine.rebuild(next);
    expect(await engine.ensure(next)).toBe('ready');
    expect(await countOf('audit_log')).toBe(5);
  });
});
