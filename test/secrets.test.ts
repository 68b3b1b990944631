import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { platformModules } from '../src/adapters/platforms/registry.ts';
import type { RunningSandbox } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { createLogger } from '../src/adapters/telemetry/logger.ts';
import { sourceStreamId } from '../src/domain/ingestion/events.ts';
import { contentHash, observationEventId, toWire } from '../src/domain/ingestion/source-records.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import type { Credentials } from '../src/ports/platform-adapter.ts';
import { auditLogProjector } from '../src/projections/audit-log.ts';
import { streamCatalogueProjector } from '../src/projections/stream-catalogue.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

/**
 * After connecting all three platforms, fetching through refreshes and retries, storing the
 * credentials and appending what was fetched, no token or secret is found in plain text in the
 * logs, the event log or any table.
 */
const OWNER = 'secrets-owner';

let database: TestDatabase;
const sandboxes: RunningSandbox[] = [];
const logLines: string[] = [];
const secrets = new Set<string>();

function collect(credentials: Credentials): void {
  for (const value of [credentials.accessToken, credentials.refreshToken, credentials.apiKey, credentials.apiSecret]) if (value) secrets.add(value);
}

beforeAll(async () => {
  database = await createTestDatabase();
  const logger = createLogger('trace', { write: (line: string) => void logLines.push(line) });
  const credentialStore = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key: randomBytes(32) }]));
  const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });

  for (const module of platformModules) {
    const sandbox = await module.startSandbox({ seed: `secrets-${module.platform}`, autoApprove: true });
    sandboxes.push(sandbox);
    const account = sandbox.world.addAccount({ ownerId: OWNER, holdings: 30, transactions: 30 });
    const adapter = module.createAdapter({ baseUrl: sandbox.url, logger, retry: { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 50 } });
    const connectionId = `conn-${module.platform}`;
    const granted = await module.connectWithoutUser(adapter, sandbox, OWNER);
    collect(granted);
    await credentialStore.save(connectionId, granted);
    logger.info({ connectionId, platform: module.platform, credentials: granted }, 'connection authorized');
    await store.append(`connection-${connectionId}`, [
      { type: 'ConnectionInitiated', data: { connectionId, ownerId: OWNER, platform: module.platform, settings: { displayName: module.platform, autoSync: true, direction: 'read_only', conflictStrategy: 'TIMESTAMP', dataFilters: {} } } },
      {
        type: 'ConnectionAuthorized',
        data: { connectionId, credentialVersion: 1, accessTokenExpiresAt: new Date(granted.accessTokenExpiresAt).toISOString(), grantedAt: new Date(granted.grantedAt).toISOString() },
      },
    ]);

    // A refresh and a retry in the middle of the fetch, so renewed tokens and retry logs exist too.
    sandbox.faults.enqueue('server_error');
    sandbox.faults.enqueue('expire_token');
    const connection = adapter.open(credentialStore.holder(connectionId));
    const observed = [];
    for await (const item of connection.holdings(account.id)) {
      if (item.kind !== 'record') continue;
      const record = toWire(item.record);
      const hash = contentHash(record);
      observed.push({
        id: observationEventId(connectionId, 'holdings', item.record.platformRecordId, 1, hash),
        type: 'SourceRecordObserved',
        data: { connectionId, platform: module.platform, dataType: 'holdings', recordId: item.record.platformRecordId, operationId: 'op-1', revision: 1, record, contentHash: hash },
      });
    }
    expect(observed.length).toBe(30);
    for await (const item of connection.transactions(account.id)) expect(item.kind).not.toBe('error');
    await store.append(sourceStreamId(connectionId, 'holdings'), observed);
    const renewed = await credentialStore.load(connectionId);
    expect(renewed.accessToken).not.toBe(granted.accessToken);
    collect(renewed);
  }
  const engine = new ProjectionEngine(database.db, store, [auditLogProjector, streamCatalogueProjector], { batchSize: 500 });
  for (const projector of [auditLogProjector, streamCatalogueProjector]) {
    await engine.ensure(projector);
    await engine.catchUpTo(projector);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(sandboxes.map((s) => s.close()));
  await database?.drop();
});

describe('secrets at rest and in logs', () => {
  it('collected the secrets to look for', () => {
    // Three platforms, each with an access and a refresh token granted and renewed, Orion's key and secret besides.
    expect(secrets.size).toBeGreaterThanOrEqual(12);
  });

  it('logs carry none of them', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const text = logLines.join('');
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('no table holds any of them in plain text, the credential table included', async () => {
    const tables = await sql<{ name: string }>`SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`.execute(database.db);
    expect(tables.rows.map((t) => t.name)).toEqual(expect.arrayContaining(['public.events', 'public.connection_credentials', 'public.audit_log']));
    for (const { name } of tables.rows) {
      const dump = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.raw(name)} t`.execute(database.db);
      const text = dump.rows.map((r) => r.row).join('\n');
      for (const secret of secrets) expect(text, `${name} must not hold a secret`).not.toContain(secret);
    }
    const events = await sql<{ n: number }>`SELECT count(*)::int AS n FROM events WHERE event_type = 'SourceRecordObserved'`.execute(database.db);
    expect(events.rows[0]!.n).toBe(90);
  });
});
