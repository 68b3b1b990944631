import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { addepar } from '../src/adapters/platforms/addepar/index.ts';
import type { RunningSandbox } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { authorizeConnection, initiateConnection } from '../src/commands/connections.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { ledgerCli } from './support/processes.ts';

const OWNER = 'cli-owner';
const ACCOUNT = 'cli-acct';
let database: TestDatabase;
let sandbox: RunningSandbox;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  database = await createTestDatabase();
  const key = randomBytes(32);
  sandbox = await addepar.startSandbox({ seed: 'sync-cli', autoApprove: true });
  sandbox.world.addAccount({ ownerId: OWNER, id: ACCOUNT, holdings: 1200, transactions: 3000 });
  const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });
  const services = { store, credentials: new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key }])) };
  await initiateConnection(services, { connectionId: 'cli-conn', ownerId: OWNER, platform: 'addepar', platformAccountId: ACCOUNT });
  const credentials = await addepar.connectWithoutUser(addepar.createAdapter({ baseUrl: sandbox.url }), sandbox, OWNER);
  await authorizeConnection(services, { connectionId: 'cli-conn', credentials });
  env = {
    DATABASE_URL: database.connectionString,
    LEDGER_CREDENTIAL_KEYS: `k1:${key.toString('base64')}`,
    LEDGER_PLATFORM_URLS: `addepar=${sandbox.url}`,
  };
});
afterAll(async () => {
  await sandbox?.close();
  await database?.drop();
});

describe('ledger sync', () => {
  it('syncs a connection, prints pulled, appended and projected, and the counts', async () => {
    const result = await ledgerCli(['sync', 'cli-conn', '--types', 'holdings', 'transactions'], env);
    expect(result.stderr).toMatch(/holdings: pulled 1,200, appended 1,200, projected 1,200\n/);
    expect(result.stderr).toMatch(/transactions: pulled 3,000, appended 3,001, projected 3,000\n/);
    expect(result.stdout).toMatch(/completed: processed 4200 \(inserted 4200, updated 0, skipped 0, failed 0\)/);
    expect(result.code).toBe(0);
    const rows = await sql<{ n: number }>`SELECT count(*)::int AS n FROM source_records WHERE connection_id = 'cli-conn'`.execute(database.db);
    expect(rows.rows[0]!.n).toBe(4200);

    const again = await ledgerCli(['sync', 'cli-conn', '--types', 'holdings,transactions'], env);
    expect(again.stdout).toMatch(/completed: processed 1200 \(inserted 0, updated 0, skipped 1200, failed 0\)/);
  });

  it('names a bad data type and an unknown connection', async () => {
    const badType = await ledgerCli(['sync', 'cli-conn', '--types', 'gold'], env);
    expect(badType.code).not.toBe(0);
    expect(badType.stderr).toMatch(/--types/);
    const unknown = await ledgerCli(['sync', 'nobody'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('connection nobody does not exist');
  });
});
