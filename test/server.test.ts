import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { SANDBOX_WEBHOOK_SECRET } from '../src/adapters/platforms/black-diamond/index.ts';
import { signWebhook, WEBHOOK_SIGNATURE_HEADER } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { APPLY_LOCK } from '../src/adapters/postgres/projection-engine.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { eventually } from './support/eventually.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { startService, waitForHttp, type ServiceProcess } from './support/processes.ts';

const created = (id: string) => ({ type: 'PortfolioCreated', data: { portfolioId: id, ownerId: 'user-1', name: `Portfolio ${id}`, baseCurrency: 'EUR' } });

async function stop(service: ServiceProcess): Promise<number | null> {
  service.child.kill('SIGTERM');
  return service.exited;
}

describe('service on DATABASE_URL', () => {
  let database: TestDatabase;
  let service: ServiceProcess;
  beforeAll(async () => {
    database = await createTestDatabase();
    service = await startService({ DATABASE_URL: database.connectionString, PROJECTION_POLL_MS: '200', READY_MAX_LAG_EVENTS: '10' });
    await waitForHttp(`${service.baseUrl}/healthz`);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVICE) console.log(service.output());
    if (service.child.exitCode === null) await stop(service);
    await database?.drop();
  });

  it('answers healthz and readyz, projects appended events, and turns not-ready when projections lag', async () => {
    const health = await fetch(`${service.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });
    for (let i = 0; i < 5; i++) await store.append(`portfolio-${i}`, [created(String(i))]);
    await eventually(async () => {
      const ready = await fetch(`${service.baseUrl}/readyz`);
      const body = (await ready.json()) as { status: string; checks: { projections: { detail: { eventsBehind: number }[] } } };
      return ready.status === 200 && body.status === 'ready' && body.checks.projections.detail.every((d) => d.eventsBehind === 0);
    });
    const audit = await database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE event_type = 'PortfolioCreated' AND stream_id <> 'portfolio-demo-portfolio'");
    expect(audit.rows[0]!.n).toBe(5);

    // Hold the audit projector's apply lock so that it falls behind by more than the threshold.
    const blocker = await database.pool.connect();
    try {
      await blocker.query('SELECT pg_advisory_lock($1, hashtext($2))', [APPLY_LOCK, 'audit_log']);
      for (let i = 5; i < 20; i++) await store.append(`portfolio-${i}`, [created(String(i))]);
      await eventually(async () => (await fetch(`${service.baseUrl}/readyz`)).status === 503);
      const body = (await (await fetch(`${service.baseUrl}/readyz`)).json()) as { checks: { projections: { ok: boolean; detail: { projector: string; eventsBehind: number }[] } } };
      expect(body.checks.projections.ok).toBe(false);
      // At least the 15 appended here; the demo's syncs may be appending too.
      expect(body.checks.projections.detail.find((d) => d.projector === 'audit_log')?.eventsBehind).toBeGreaterThanOrEqual(15);
    } finally {
      await blocker.query('SELECT pg_advisory_unlock($1, hashtext($2))', [APPLY_LOCK, 'audit_log']);
      blocker.release();
    }
    await eventually(async () => (await fetch(`${service.baseUrl}/readyz`)).status === 200);
  });

  it('runs the three platform sandboxes and connects the demo user to each, keeping only a credential reference in the log', async () => {
    const connected = service.output().split('\n').filter((line) => line.includes('"msg":"platform sandbox connected"'));
    expect(connected.map((line) => (JSON.parse(line) as { platform: string }).platform).sort()).toEqual(['addepar', 'black_diamond', 'orion']);
    const sandboxUrl = (JSON.parse(connected[0]!) as { sandbox: string }).sandbox;
    expect((await fetch(`${sandboxUrl}/_control/pushes`)).status).toBe(200);
    const events = await database.pool.query<{ stream_id: string; event_type: string; data: Record<string, unknown> }>(
      "SELECT stream_id, event_type, data FROM events WHERE stream_id LIKE 'connection-demo-%' ORDER BY global_position",
    );
    expect(events.rows.map((e) => `${e.stream_id} ${e.event_type}`)).toEqual([
      'connection-demo-orion ConnectionInitiated',
      'connection-demo-orion ConnectionAuthorized',
      'connection-demo-addepar ConnectionInitiated',
      'connection-demo-addepar ConnectionAuthorized',
      'connection-demo-black-diamond ConnectionInitiated',
      'connection-demo-black-diamond ConnectionAuthorized',
    ]);
    expect(Object.keys(events.rows[1]!.data).sort()).toEqual(['accessTokenExpiresAt', 'connectionId', 'credentialVersion', 'grantedAt']);
    const stored = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM connection_credentials');
    expect(stored.rows[0]!.n).toBe(3);
  });

  it('runs the demo: the three connections sync on their schedules into one consolidated portfolio', async () => {
    await eventually(async () => {
      const done = await database.pool.query<{ n: number }>(
        "SELECT count(DISTINCT connection_id)::int AS n FROM sync_operations WHERE 'holdings' = ANY(data_types) AND status IN ('completed', 'partial')",
      );
      return done.rows[0]!.n === 3;
    }, 60_000);
    await eventually(async () => {
      const holdings = await database.pool.query<{ sources: number }>(
        "SELECT count(DISTINCT connection_id)::int AS sources FROM holding_sources WHERE portfolio_id = 'demo-portfolio'",
      );
      return holdings.rows[0]!.sources === 3;
    }, 60_000);
    // The sandboxes overlap in securities and disagree on them; more than 95% of those conflicts settle without a person.
    await eventually(async () => {
      const conflicts = await database.pool.query<{ total: number; automatic: number }>(
        "SELECT count(*)::int AS total, (count(*) FILTER (WHERE status = 'resolved' AND automatic))::int AS automatic FROM portfolio_conflicts WHERE portfolio_id = 'demo-portfolio'",
      );
      const { total, automatic } = conflicts.rows[0]!;
      return total >= 10 && automatic / total > 0.95;
    }, 60_000);
  });

  it('takes a signed webhook for new transactions, ignores its repetition, refuses a forged one and triggers the sync', async () => {
    const connected = service.output().split('\n').filter((line) => line.includes('"msg":"platform sandbox connected"')).map((line) => JSON.parse(line) as { platform: string; sandbox: string; accountId: string });
    const blackDiamond = connected.find((c) => c.platform === 'black_diamond')!;
    const inserted = await fetch(`${blackDiamond.sandbox}/_control/accounts/${blackDiamond.accountId}/transactions`, { method: 'POST' });
    expect(inserted.status).toBe(201);
    await eventually(async () => {
      const deliveries = await database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook_deliveries WHERE platform = 'black_diamond'");
      return deliveries.rows[0]!.n === 1;
    });
    await eventually(async () => {
      const webhookSyncs = await database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM sync_operations WHERE trigger = 'webhook' AND connection_id = 'demo-black-diamond'");
      return webhookSyncs.rows[0]!.n >= 1;
    }, 60_000);
    const repeated = { id: 'delivery-1', type: 'transactions.created', dataType: 'transactions', accountId: blackDiamond.accountId, recordIds: ['t-1'] };
    const send = (body: string) =>
      fetch(`${service.baseUrl}/webhooks/black_diamond`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [WEBHOOK_SIGNATURE_HEADER]: signWebhook(body, SANDBOX_WEBHOOK_SECRET, Math.floor(Date.now() / 1000)) },
        body,
      });
    const first = await send(JSON.stringify(repeated));
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ status: 'accepted', deliveryId: 'delivery-1', triggered: 1 });
    const again = await send(JSON.stringify(repeated));
    expect(await again.json()).toEqual({ status: 'duplicate', deliveryId: 'delivery-1' });
    const forged = await fetch(`${service.baseUrl}/webhooks/black_diamond`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sandbox-signature': 't=1,v1=00' },
      body: JSON.stringify({ id: 'x', type: 'transactions.created', dataType: 'transactions', accountId: blackDiamond.accountId, recordIds: ['t'] }),
    });
    expect(forged.status).toBe(401);
    expect(((await fetch(`${service.baseUrl}/webhooks/nowhere`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status)).toBe(404);
  });

  it('shuts down cleanly on SIGTERM', async () => {
    expect(await stop(service)).toBe(0);
    expect(service.output()).toContain('"msg":"stopped"');
  });
});

describe('service on the embedded PostgreSQL', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'ledger-embedded-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  // Three starts of the service, each with its sandboxes and demo, on a server created here: minutes on a loaded machine.
  it('starts, refuses a second start on the same data, keeps data across a restart and leaves no server behind', async () => {
    const env = { DATABASE_URL: '', LEDGER_DATA_DIR: dataDir, EMBEDDED_PG_PORT: '0' };
    const first = await startService(env);
    try {
      expect((await waitForHttp(`${first.baseUrl}/readyz`)).status).toBe(200);

      const second = await startService(env);
      expect(await second.exited).toBe(1);
      expect(second.output()).toContain(`another ledger (pid ${first.child.pid}) is already running on the embedded database in ${dataDir}`);

      const url = await embeddedUrl(dataDir);
      const pool = new pg.Pool({ connectionString: url });
      try {
        await new PostgresEventStore(pool, { catalogue: ledgerCatalogue }).append('portfolio-kept', [created('kept')]);
      } finally {
        await pool.end();
      }
    } finally {
      expect(await stop(first)).toBe(0);
    }
    expect(await serversUsing(dataDir)).toEqual([]);

    const restarted = await startService(env);
    try {
      expect((await waitForHttp(`${restarted.baseUrl}/readyz`)).status).toBe(200);
      const client = new pg.Client({ connectionString: await embeddedUrl(dataDir) });
      await client.connect();
      const kept = await client.query('SELECT event_type FROM events WHERE stream_id = $1', ['portfolio-kept']);
      await client.end();
      expect(kept.rows).toEqual([{ event_type: 'PortfolioCreated' }]);
    } finally {
      expect(await stop(restarted)).toBe(0);
    }
    expect(await serversUsing(dataDir)).toEqual([]);
  }, 180_000);
});

async function embeddedUrl(dataDir: string): Promise<string> {
  const { port } = JSON.parse(await readFile(path.join(dataDir, 'postgres.json'), 'utf8')) as { port: number };
  const { password } = JSON.parse(await readFile(path.join(dataDir, 'credentials.json'), 'utf8')) as { password: string };
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/ledger`;
}

/** Pids of processes whose command line names the data folder (an orphaned postgres would). */
async function serversUsing(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dataDir) && cmdline.includes('postgres')) pids.push(Number(entry));
  }
  return pids;
}
