import { randomBytes } from 'node:crypto';
import { Decimal } from 'decimal.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { platformModules } from '../src/adapters/platforms/registry.ts';
import type { RunningSandbox, SandboxHolding } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { createSyncServices, type PlatformEndpoints } from '../src/adapters/scheduler/sync-services.ts';
import { authorizeConnection, initiateConnection } from '../src/commands/connections.ts';
import { requestSync } from '../src/commands/sync-requests.ts';
import { runSync } from '../src/commands/sync-run.ts';
import type { SyncServices } from '../src/commands/sync-services.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import type { DataType, Platform } from '../src/domain/platforms/records.ts';
import { sourceRecordsProjector } from '../src/projections/source-records.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

const OWNER = 'sync-owner';
const HOLDINGS = 300;
const TRANSACTIONS = 1200;

let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
let services: SyncServices;
const sandboxes = new Map<Platform, RunningSandbox>();
const accountOf = (platform: Platform) => `${platform.replace('_', '-')}-acct`;
const connectionOf = (platform: Platform) => `conn-${platform.replace('_', '-')}`;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 12 });
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, [sourceRecordsProjector]);
  const credentials = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key: randomBytes(32) }]));
  const endpoints: PlatformEndpoints = {};
  for (const module of platformModules) {
    const sandbox = await module.startSandbox({ seed: `sync-${module.platform}`, autoApprove: true });
    sandboxes.set(module.platform, sandbox);
    sandbox.world.addAccount({ ownerId: OWNER, id: accountOf(module.platform), holdings: HOLDINGS, transactions: TRANSACTIONS });
    endpoints[module.platform] = { baseUrl: sandbox.url };
  }
  const ledger = { database, store, engine, credentials };
  services = createSyncServices(ledger, endpoints);
  for (const module of platformModules) {
    const connectionId = connectionOf(module.platform);
    await initiateConnection(ledger, { connectionId, ownerId: OWNER, platform: module.platform, platformAccountId: accountOf(module.platform) });
    const sandbox = sandboxes.get(module.platform)!;
    const adapter = services.adapterFor(module.platform);
    await authorizeConnection(ledger, { connectionId, credentials: await module.connectWithoutUser(adapter, sandbox, OWNER) });
  }
});

afterAll(async () => {
  await Promise.all([...sandboxes.values()].map((sandbox) => sandbox.close()));
  await database?.drop();
});

async function sync(platform: Platform, dataTypes: DataType[], force = false) {
  const { operationId } = await requestSync(services, { connectionId: connectionOf(platform), dataTypes, force, trigger: 'manual', requestedBy: 'tester' });
  return runSync(services, operationId);
}

interface SourceRow {
  record_id: string;
  revision: number;
  removed: boolean;
  record: Record<string, unknown>;
}

async function sourceRows(platform: Platform, dataType: DataType): Promise<Map<string, SourceRow>> {
  await services.sourceState.caughtUp(`source-${connectionOf(platform)}.${dataType}`);
  const result = await sql<SourceRow>`
    SELECT record_id, revision, removed, record FROM source_records WHERE connection_id = ${connectionOf(platform)} AND data_type = ${dataType}`.execute(database.db);
  return new Map(result.rows.map((row) => [row.record_id, row]));
}

/** The source events a stream holds after a given version: type and record id. */
async function eventsAfter(platform: Platform, dataType: DataType, version: number): Promise<{ type: string; recordId: string; data: Record<string, unknown> }[]> {
  const events = await store.readStream(`source-${connectionOf(platform)}.${dataType}`, { fromVersion: version + 1 });
  return events.map((event) => ({ type: event.type, recordId: (event.data as { recordId?: string }).recordId ?? '', data: event.data as Record<string, unknown> }));
}

async function streamVersion(platform: Platform, dataType: DataType): Promise<number> {
  const [last] = await store.readStream(`source-${connectionOf(platform)}.${dataType}`, { direction: 'backwards', maxCount: 1 });
  return last?.streamVersion ?? 0;
}

function holdingsTruth(sandbox: RunningSandbox, accountId: string): Map<string, SandboxHolding> {
  return new Map([...sandbox.world.holdings(accountId)].map((holding) => [holding.id, holding]));
}

const same = (stored: unknown, truth: string | undefined) => truth !== undefined && new Decimal(String(stored)).eq(truth);

describe('sync against the three sandboxes', () => {
  it.each(platformModules.map((m) => m.platform))('%s: the first sync puts exactly the truth into source_records', async (platform) => {
    const sandbox = sandboxes.get(platform)!;
    const accountId = accountOf(platform);
    const outcome = await sync(platform, ['holdings', 'transactions']);
    expect(outcome.status).toBe('completed');
    expect(outcome.counts).toEqual({ processed: HOLDINGS + TRANSACTIONS, inserted: HOLDINGS + TRANSACTIONS, updated: 0, skipped: 0, failed: 0 });

    const holdings = await sourceRows(platform, 'holdings');
    const truth = holdingsTruth(sandbox, accountId);
    expect([...holdings.keys()].sort()).toEqual([...truth.keys()].sort());
    for (const [id, holding] of truth) {
      const record = holdings.get(id)!.record;
      // Black Diamond gives no price, only market value and units: the price is compared in its own tests.
      expect(same(record.quantity, holding.quantity) && same(record.marketValue, holding.marketValue) && same(record.costBasis, holding.costBasis), id).toBe(true);
      expect(holdings.get(id)!.revision).toBe(1);
    }
    const transactions = await sourceRows(platform, 'transactions');
    const truthTransactions = [...sandbox.world.transactions(accountId)];
    expect(transactions.size).toBe(truthTransactions.length);
    for (const transaction of truthTransactions) {
      const record = transactions.get(transaction.id)?.record;
      expect(record && same(record.amount, transaction.amount) && record.status === transaction.status, transaction.id).toBe(true);
    }
  });

  it.each(platformModules.map((m) => m.platform))('%s: an unchanged re-sync appends no data events and counts everything skipped', async (platform) => {
    const before = { holdings: await streamVersion(platform, 'holdings'), transactions: await streamVersion(platform, 'transactions') };
    const outcome = await sync(platform, ['holdings', 'transactions']);
    expect(outcome.status).toBe('completed');
    expect(outcome.counts.inserted + outcome.counts.updated + outcome.counts.failed).toBe(0);
    expect(outcome.counts.skipped).toBe(outcome.counts.processed);
    // Holdings are pulled whole and skipped; transactions are pulled from the last cursor, so none come back.
    expect(outcome.counts.processed).toBe(HOLDINGS);
    expect(await eventsAfter(platform, 'holdings', before.holdings)).toEqual([]);
    expect(await eventsAfter(platform, 'transactions', before.transactions)).toEqual([]);
  });

  it.each(platformModules.map((m) => m.platform))('%s: changed data on the platform appends exactly the changes', async (platform) => {
    const sandbox = sandboxes.get(platform)!;
    const accountId = accountOf(platform);
    const world = sandbox.world;
    const beforeHoldings = holdingsTruth(sandbox, accountId);
    const [first, second, third] = [...beforeHoldings.values()];
    world.movePrice(first!.security.ticker, '7.5');
    world.sell(accountId, { ticker: second!.security.ticker, quantity: second!.quantity, price: second!.price });
    world.buy(accountId, { ticker: third!.security.ticker, quantity: '10', price: third!.price });
    const inserted = world.insertHolding(accountId);
    const cancelled = [...world.transactions(accountId, { limit: 5 })].find((t) => t.status !== 'CANCELLED')!;
    world.cancelTransaction(accountId, cancelled.id);

    const afterHoldings = holdingsTruth(sandbox, accountId);
    const changed = [...afterHoldings].filter(([id, h]) => {
      const b = beforeHoldings.get(id);
      return b && (b.quantity !== h.quantity || b.price !== h.price || b.marketValue !== h.marketValue || b.costBasis !== h.costBasis);
    });
    const removed = [...beforeHoldings.keys()].filter((id) => !afterHoldings.has(id));
    const added = [...afterHoldings.keys()].filter((id) => !beforeHoldings.has(id));
    expect(added).toContain(inserted.id);
    const newTransactions = [...world.transactions(accountId)].filter((t) => t.seq > TRANSACTIONS).map((t) => t.id);

    const before = { holdings: await streamVersion(platform, 'holdings'), transactions: await streamVersion(platform, 'transactions') };
    const outcome = await sync(platform, ['holdings', 'transactions']);
    expect(outcome.status).toBe('completed');

    const holdingEvents = await eventsAfter(platform, 'holdings', before.holdings);
    expect(holdingEvents.filter((e) => e.type === 'SourceRecordChanged').map((e) => e.recordId).sort()).toEqual(changed.map(([id]) => id).sort());
    expect(holdingEvents.filter((e) => e.type === 'SourceRecordRemoved').map((e) => e.recordId).sort()).toEqual(removed.sort());
    expect(holdingEvents.filter((e) => e.type === 'SourceRecordObserved').map((e) => e.recordId).sort()).toEqual(added.sort());
    const transactionEvents = (await eventsAfter(platform, 'transactions', before.transactions)).filter((e) => e.type !== 'SourceCursorAdvanced');
    expect(transactionEvents.filter((e) => e.type === 'SourceRecordObserved').map((e) => e.recordId).sort()).toEqual(newTransactions.sort());
    const transactionChanges = transactionEvents.filter((e) => e.type === 'SourceRecordChanged');
    expect(transactionChanges.map((e) => e.recordId)).toEqual([cancelled.id]);
    expect(transactionChanges[0]!.data.changes).toEqual({ status: 'CANCELLED' });
    expect(outcome.counts.updated).toBe(changed.length + 1);
    expect(outcome.counts.inserted).toBe(added.length + newTransactions.length);

    // The read model folds the changes in: it equals the platform again, removals marked.
    const holdings = await sourceRows(platform, 'holdings');
    for (const [id, holding] of afterHoldings) expect(same(holdings.get(id)?.record.quantity, holding.quantity) && same(holdings.get(id)?.record.marketValue, holding.marketValue), id).toBe(true);
    for (const id of removed) expect(holdings.get(id)).toMatchObject({ removed: true, revision: 2 });
    expect((await sourceRows(platform, 'transactions')).get(cancelled.id)).toMatchObject({ revision: 2, record: expect.objectContaining({ status: 'CANCELLED' }) });
  });

  it.each(platformModules.map((m) => m.platform))('%s: a malformed record fails alone and the sync completes as partial with correct counts', async (platform) => {
    const sandbox = sandboxes.get(platform)!;
    const before = await streamVersion(platform, 'holdings');
    sandbox.faults.enqueue('malformed_record', {});
    const outcome = await sync(platform, ['holdings']);
    expect(outcome.status).toBe('partial');
    const total = sandbox.world.holdingsCount(accountOf(platform));
    expect(outcome.counts).toEqual({ processed: total, inserted: 0, updated: 0, skipped: total - 1, failed: 1 });
    const operation = await store.readStream(`sync-${outcome.operationId}`);
    const errors = operation.filter((e) => e.type === 'SyncErrorsRecorded').flatMap((e) => (e.data as { errors: { code: string; recordId: string }[] }).errors);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('RECORD_INVALID');
    // The record that failed this time is still held, not removed.
    expect(await eventsAfter(platform, 'holdings', before)).toEqual([]);
    expect((await sourceRows(platform, 'holdings')).get(errors[0]!.recordId)?.removed).toBe(false);
  });

  it.each(
    platformModules.flatMap((m) => [
      [m.platform, 'a currency the ledger does not support', { currency: 'ZZZ' }, 'CURRENCY_NOT_SUPPORTED'],
      [m.platform, 'identifiers that cannot be resolved', { cusip: '037833109', isin: 'US0378331004' }, 'IDENTIFIER_INVALID'],
    ] as const),
  )('%s: a record with %s fails alone with its code and the sync completes as partial', async (platform, _what, flaw, code) => {
    const sandbox = sandboxes.get(platform)!;
    const accountId = accountOf(platform);
    await sync(platform, ['holdings']);
    const before = await streamVersion(platform, 'holdings');
    const [victim] = sandbox.world.holdings(accountId);
    sandbox.world.flawHolding(accountId, victim!.id, flaw);
    const outcome = await sync(platform, ['holdings']);
    expect(outcome.status).toBe('partial');
    const total = sandbox.world.holdingsCount(accountId);
    expect(outcome.counts).toEqual({ processed: total, inserted: 0, updated: 0, skipped: total - 1, failed: 1 });
    const operation = await store.readStream(`sync-${outcome.operationId}`);
    const errors = operation.filter((e) => e.type === 'SyncErrorsRecorded').flatMap((e) => (e.data as { errors: { code: string; recordId: string }[] }).errors);
    expect(errors.map((e) => e.code)).toEqual([code]);
    // What the ledger held of that record stays as it was: nothing appended, nothing removed.
    expect(await eventsAfter(platform, 'holdings', before)).toEqual([]);
    expect((await sourceRows(platform, 'holdings')).get(errors[0]!.recordId)?.removed).toBe(false);
    sandbox.world.flawHolding(accountId, victim!.id, {});
  });

  it('a re-run of an operation that crashed half-way appends nothing twice and counts as one run', async () => {
    const platform: Platform = 'orion';
    const sandbox = sandboxes.get(platform)!;
    const accountId = 'crash-acct';
    sandbox.world.addAccount({ ownerId: OWNER, id: accountId, holdings: 2600, transactions: 10 });
    const connectionId = 'conn-crash';
    const ledgerServices = { store, credentials: services.credentials };
    await initiateConnection(ledgerServices, { connectionId, ownerId: OWNER, platform, platformAccountId: accountId });
    await authorizeConnection(ledgerServices, { connectionId, credentials: await platformModules.find((m) => m.platform === platform)!.connectWithoutUser(services.adapterFor(platform), sandbox, OWNER) });
    const { operationId } = await requestSync(services, { connectionId, dataTypes: ['holdings'], trigger: 'manual', requestedBy: 'tester' });

    const crash = new Error('process died');
    await expect(
      runSync(services, operationId, {
        onProgress: ({ appended }) => {
          if (appended >= 1000) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    const stream = `source-${connectionId}.holdings`;
    const partial = await store.readStream(stream);
    expect(partial.length).toBeGreaterThanOrEqual(1000);
    expect(partial.length).toBeLessThan(2600);

    const outcome = await runSync(services, operationId);
    expect(outcome).toMatchObject({ status: 'completed', counts: { processed: 2600, inserted: 2600, updated: 0, skipped: 0, failed: 0 } });
    const events = await store.readStream(stream);
    expect(events).toHaveLength(2600);
    expect(new Set(events.map((e) => (e.data as { recordId: string }).recordId)).size).toBe(2600);
    const operation = await store.readStream(`sync-${operationId}`);
    expect(operation.filter((e) => e.type === 'SyncStarted')).toHaveLength(1);
    expect(operation.filter((e) => e.type === 'SyncCompleted')).toHaveLength(1);
    // A finished operation run again changes nothing and answers with its outcome.
    expect(await runSync(services, operationId)).toEqual(outcome);
    expect(await store.readStream(stream)).toHaveLength(2600);
  });
});

describe('the source_records read model', () => {
  it('equals a rebuild from the log', async () => {
    const snapshot = async () =>
      (await sql`SELECT connection_id, data_type, record_id, revision, content_hash, record, removed, last_operation_id, updated_at FROM source_records ORDER BY 1, 2, 3`.execute(database.db)).rows;
    await engine.catchUpTo(sourceRecordsProjector);
    const live = await snapshot();
    expect(live.length).toBeGreaterThan(3 * (HOLDINGS + TRANSACTIONS));
    await engine.rebuild(sourceRecordsProjector);
    expect(await snapshot()).toEqual(live);
  });
});
