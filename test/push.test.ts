import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { platformModules } from '../src/adapters/platforms/registry.ts';
import type { RunningSandbox } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { createSyncServices } from '../src/adapters/scheduler/sync-services.ts';
import { authorizeConnection, changeConnectionSettings, initiateConnection } from '../src/commands/connections.ts';
import { pushInstruction } from '../src/commands/push.ts';
import type { SyncServices } from '../src/commands/sync-services.ts';
import { DomainRuleViolation } from '../src/domain/decider.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import type { Platform } from '../src/domain/platforms/records.ts';
import type { PushInstructionData } from '../src/domain/push/events.ts';
import { pushesProjector } from '../src/projections/pushes.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { ledgerCli } from './support/processes.ts';

const OWNER = 'push-owner';
const KEY = randomBytes(32);
let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
let services: SyncServices;
const sandboxes = new Map<Platform, RunningSandbox>();
const accountOf = (platform: Platform) => `${platform.replace('_', '-')}-push`;
const connectionOf = (platform: Platform) => `push-${platform.replace('_', '-')}`;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });
  engine = new ProjectionEngine(database.db, store, [pushesProjector]);
  await engine.ensure(pushesProjector);
  const credentials = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key: KEY }]));
  const endpoints: Record<string, { baseUrl: string }> = {};
  for (const module of platformModules) {
    const sandbox = await module.startSandbox({ seed: 'push', autoApprove: true });
    sandboxes.set(module.platform, sandbox);
    sandbox.world.addAccount({ ownerId: OWNER, id: accountOf(module.platform), holdings: 5, transactions: 5 });
    endpoints[module.platform] = { baseUrl: sandbox.url };
  }
  services = createSyncServices({ database, store, engine, credentials }, endpoints);
  for (const module of platformModules) {
    const connectionId = connectionOf(module.platform);
    await initiateConnection(services, { connectionId, ownerId: OWNER, platform: module.platform, platformAccountId: accountOf(module.platform), settings: { direction: 'write_back' } });
    await authorizeConnection(services, { connectionId, credentials: await module.connectWithoutUser(services.adapterFor(module.platform), sandboxes.get(module.platform)!, OWNER) });
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([...sandboxes.values()].map((sandbox) => sandbox.close()));
  await database?.drop();
});

const tradeFor = (platform: Platform): Extract<PushInstructionData, { kind: 'trade' }> => ({
  kind: 'trade',
  platformAccountId: accountOf(platform),
  side: 'BUY',
  security: { ticker: sandboxes.get(platform)!.world.security({ securityIndex: 0 }).ticker },
  quantity: '12',
  orderType: 'MARKET',
});

async function pushRow(pushId: string) {
  await engine.catchUpTo(pushesProjector);
  return (await sql<Record<string, unknown>>`SELECT status, platform_reference, code, retryable, kind FROM pushes WHERE push_id = ${pushId}`.execute(database.db)).rows[0];
}

describe('write-back', () => {
  it.each(platformModules.map((m) => m.platform))('%s: a trade is pushed once, acknowledged with the platform reference, and recorded in the log', async (platform) => {
    const sandbox = sandboxes.get(platform)!;
    const before = sandbox.world.pushes().length;
    const pushId = `trade-${platform}`;
    const input = { pushId, connectionId: connectionOf(platform), instruction: tradeFor(platform), requestedBy: 'alice' };
    const outcome = await pushInstruction(services, input);
    expect(outcome.status).toBe('acknowledged');
    expect(sandbox.world.pushes().length).toBe(before + 1);
    expect(sandbox.world.pushes().at(-1)!.reference).toBe(outcome.platformReference);
    // Asked again: the recorded outcome, nothing sent and nothing appended.
    const head = (await store.readStream(`push-${pushId}`)).length;
    expect(await pushInstruction(services, input)).toEqual(outcome);
    expect(sandbox.world.pushes().length).toBe(before + 1);
    expect(await store.readStream(`push-${pushId}`)).toHaveLength(head);
    expect((await store.readStream(`push-${pushId}`)).map((e) => e.type)).toEqual(['PushRequested', 'PushAcknowledged']);
    expect(await pushRow(pushId)).toMatchObject({ status: 'acknowledged', platform_reference: outcome.platformReference, kind: 'trade' });
  });

  it('records the platform refusing an instruction, with its code', async () => {
    const platform: Platform = 'addepar';
    const outcome = await pushInstruction(services, {
      pushId: 'bad-isin',
      connectionId: connectionOf(platform),
      instruction: { ...tradeFor(platform), security: { isin: 'US0378331006' } },
      requestedBy: 'alice',
    });
    expect(outcome).toMatchObject({ status: 'rejected', code: 'INVALID_IDENTIFIER' });
    expect(await pushRow('bad-isin')).toMatchObject({ status: 'rejected', code: 'INVALID_IDENTIFIER', retryable: false });
  });

  it('refuses to push through a read-only connection and sends nothing', async () => {
    const platform: Platform = 'orion';
    await changeConnectionSettings(services, { connectionId: connectionOf(platform), changes: { direction: 'read_only' } });
    const before = sandboxes.get(platform)!.world.pushes().length;
    const attempt = pushInstruction(services, { pushId: 'read-only', connectionId: connectionOf(platform), instruction: tradeFor(platform), requestedBy: 'alice' });
    await expect(attempt).rejects.toBeInstanceOf(DomainRuleViolation);
    await expect(attempt).rejects.toMatchObject({ code: 'PUSH_NOT_ALLOWED' });
    expect(sandboxes.get(platform)!.world.pushes().length).toBe(before);
    expect(await store.readStream('push-read-only')).toEqual([]);
  });

  it('`ledger push` sends an instruction file and prints the outcome; a bad file is one line naming the field', async () => {
    const platform: Platform = 'addepar';
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ledger-push-'));
    const env = {
      DATABASE_URL: database.connectionString,
      LEDGER_CREDENTIAL_KEYS: `k1:${KEY.toString('base64')}`,
      PLATFORM_SANDBOXES: 'off',
      LEDGER_PLATFORM_URLS: [...sandboxes].map(([name, sandbox]) => `${name}=${sandbox.url}`).join(','),
    };
    try {
      const good = path.join(dir, 'trade.json');
      await writeFile(good, JSON.stringify(tradeFor(platform)));
      const sent = await ledgerCli(['push', connectionOf(platform), good, '--id', 'cli-trade'], env);
      expect(sent.stderr).toBe('');
      expect(sent.stdout).toMatch(/^push cli-trade acknowledged: \S+\n$/);
      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, JSON.stringify({ ...tradeFor(platform), quantity: 12 }));
      const refused = await ledgerCli(['push', connectionOf(platform), bad], env);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toContain('bad.json.quantity');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
