import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialVault } from '../src/adapters/crypto/credential-vault.ts';
import { platformModules } from '../src/adapters/platforms/registry.ts';
import { SANDBOX_USD_PER_UNIT, type RunningSandbox } from '../src/adapters/platforms/sandbox-kit/index.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { createSyncServices, type PlatformEndpoints } from '../src/adapters/scheduler/sync-services.ts';
import { detectPortfolioConflicts } from '../src/commands/conflicts.ts';
import { authorizeConnection, initiateConnection } from '../src/commands/connections.ts';
import { recordFxRates } from '../src/commands/fx-rates.ts';
import { createPortfolio, linkConnection } from '../src/commands/portfolios.ts';
import { requestSync } from '../src/commands/sync-requests.ts';
import { runSync } from '../src/commands/sync-run.ts';
import { securityKey } from '../src/domain/consolidation/security-identity.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { Dec } from '../src/domain/money/decimal.ts';
import { roundToMinorUnit } from '../src/domain/money/minor-units.ts';
import type { Platform } from '../src/domain/platforms/records.ts';
import { consolidationProjector } from '../src/projections/consolidation.ts';
import { fxRatesProjector } from '../src/projections/fx-rates.ts';
import { portfolioConflictsProjector } from '../src/projections/portfolio-conflicts.ts';
import type { Projector } from '../src/projections/projector.ts';
import { sourceRecordsProjector } from '../src/projections/source-records.ts';
import { syncOperationsProjector } from '../src/projections/sync-operations.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

const OWNER = 'e2e-owner';
const PORTFOLIO = 'e2e-portfolio';
const HOLDINGS = 120;

const projectors: Projector[] = [sourceRecordsProjector, fxRatesProjector, syncOperationsProjector, consolidationProjector, portfolioConflictsProjector];
let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
const sandboxes = new Map<Platform, RunningSandbox>();
const accountOf = (platform: Platform) => `${platform.replace('_', '-')}-e2e`;
const connectionOf = (platform: Platform) => `e2e-${platform.replace('_', '-')}`;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 12 });
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, projectors);
  for (const projector of projectors) await engine.ensure(projector);
  const credentials = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key: randomBytes(32) }]));
  const endpoints: PlatformEndpoints = {};
  for (const module of platformModules) {
    // One seed for all three: the same securities and prices, so the accounts overlap.
    const sandbox = await module.startSandbox({ seed: 'e2e', autoApprove: true });
    sandboxes.set(module.platform, sandbox);
    sandbox.world.addAccount({ ownerId: OWNER, id: accountOf(module.platform), holdings: HOLDINGS, transactions: 20 });
    endpoints[module.platform] = { baseUrl: sandbox.url };
  }
  const ledger = { database, store, engine, credentials };
  const services = createSyncServices(ledger, endpoints);
  await createPortfolio(store, { portfolioId: PORTFOLIO, ownerId: OWNER, name: 'Everything', baseCurrency: 'USD' });
  await recordFxRates(store, { rates: Object.entries(SANDBOX_USD_PER_UNIT).filter(([currency]) => currency !== 'USD').map(([currency, rate]) => ({ currency, quote: 'USD', asOf: '2000-01-01', rate })), source: 'sandbox rates' });
  for (const module of platformModules) {
    const connectionId = connectionOf(module.platform);
    // Pending review keeps every source counted, so the view can be held to the sum of the truths.
    await initiateConnection(ledger, { connectionId, ownerId: OWNER, platform: module.platform, platformAccountId: accountOf(module.platform), settings: { conflictStrategy: 'MANUAL_REVIEW' } });
    await authorizeConnection(ledger, { connectionId, credentials: await module.connectWithoutUser(services.adapterFor(module.platform), sandboxes.get(module.platform)!, OWNER) });
    await linkConnection(store, { portfolioId: PORTFOLIO, connectionId });
    const { operationId } = await requestSync(services, { connectionId, dataTypes: ['holdings'], trigger: 'manual', requestedBy: 'tester' });
    expect((await runSync(services, operationId)).status).toBe('completed');
  }
  for (const projector of projectors) await engine.catchUpTo(projector);
}, 180_000);

afterAll(async () => {
  await Promise.all([...sandboxes.values()].map((sandbox) => sandbox.close()));
  await database?.drop();
});

interface Expected {
  quantity: Dec;
  value: Dec;
  sources: Map<string, { quantity: string; value: string }>;
}

/** The consolidated view the sandboxes' own data implies: per canonical security, the sum of every source, in USD to the cent. */
function truth(): Map<string, Expected> {
  const expected = new Map<string, Expected>();
  for (const module of platformModules) {
    for (const holding of sandboxes.get(module.platform)!.world.holdings(accountOf(module.platform))) {
      const key = securityKey(holding.security)!;
      const rate = new Dec(SANDBOX_USD_PER_UNIT[holding.currency]!);
      const value = roundToMinorUnit(new Dec(holding.marketValue).times(rate), 'USD');
      const entry = expected.get(key) ?? { quantity: new Dec(0), value: new Dec(0), sources: new Map() };
      entry.quantity = entry.quantity.plus(holding.quantity);
      entry.value = entry.value.plus(value);
      entry.sources.set(`${connectionOf(module.platform)}/${holding.id}`, { quantity: new Dec(holding.quantity).toFixed(), value: value.toFixed(2) });
      expected.set(key, entry);
    }
  }
  return expected;
}

describe('three platforms connected, synced and consolidated', () => {
  it('holds every security at the sum of the sandboxes truth, quantity and USD value to the cent, with per-source breakdowns', async () => {
    const expected = truth();
    const holdings = await sql<{ security_key: string; quantity: string; value: string; source_count: number }>`
      SELECT security_key, quantity::text, value::text, source_count FROM holdings WHERE portfolio_id = ${PORTFOLIO}`.execute(database.db);
    const sources = await sql<{ security_key: string; connection_id: string; record_id: string; quantity: string; value: string; confidence: string }>`
      SELECT security_key, connection_id, record_id, quantity::text, value::text, confidence::text FROM holding_sources WHERE portfolio_id = ${PORTFOLIO}`.execute(database.db);
    expect(holdings.rows).toHaveLength(expected.size);
    for (const row of holdings.rows) {
      const want = expected.get(row.security_key);
      expect(want, row.security_key).toBeDefined();
      expect([row.security_key, new Dec(row.quantity).eq(want!.quantity), row.value]).toEqual([row.security_key, true, want!.value.toFixed(2)]);
      expect(row.source_count).toBe(want!.sources.size);
    }
    const breakdown = new Map(sources.rows.map((s) => [`${s.connection_id}/${s.record_id}`, { key: s.security_key, quantity: new Dec(s.quantity).toFixed(), value: s.value }]));
    for (const [key, want] of expected) {
      for (const [source, part] of want.sources) expect(breakdown.get(source), source).toEqual({ key, ...part });
    }
    expect(sources.rows.every((s) => s.confidence === '1')).toBe(true);
    // Securities held on more than one platform: the scenario really consolidates across sources.
    expect([...expected.values()].filter((e) => e.sources.size > 1).length).toBeGreaterThan(0);

    const [portfolio] = (await sql<{ total_value: string; holdings_count: number }>`
      SELECT total_value::text, holdings_count FROM portfolios WHERE portfolio_id = ${PORTFOLIO}`.execute(database.db)).rows;
    const total = Dec.sum(...[...expected.values()].map((e) => e.value));
    expect(portfolio).toEqual({ total_value: total.toFixed(2), holdings_count: expected.size });
    const links = await sql<{ connection_id: string; holdings_count: number; last_sync_status: string; value: string }>`
      SELECT connection_id, holdings_count, last_sync_status, value::text FROM portfolio_connections WHERE portfolio_id = ${PORTFOLIO} ORDER BY connection_id`.execute(database.db);
    expect(links.rows.map((l) => [l.holdings_count, l.last_sync_status])).toEqual(platformModules.map(() => [HOLDINGS, 'completed']));
    expect(Dec.sum(...links.rows.map((l) => l.value)).toFixed(2)).toBe(total.toFixed(2));
  });

  it('finds the overlapping securities as conflicts, held for review under MANUAL_REVIEW', async () => {
    const overlapping = [...truth().values()].filter((e) => e.sources.size > 1).length;
    const report = await detectPortfolioConflicts({ store, db: database.db }, PORTFOLIO);
    await engine.catchUpTo(portfolioConflictsProjector);
    expect(report.detected).toBeGreaterThanOrEqual(overlapping);
    expect(report.resolved).toBe(0);
    const { rows } = await sql<{ open: number; securities: number }>`
      SELECT count(*) FILTER (WHERE status = 'open')::int AS open, count(DISTINCT security_key)::int AS securities FROM portfolio_conflicts WHERE portfolio_id = ${PORTFOLIO}`.execute(database.db);
    expect(rows[0]).toEqual({ open: report.detected, securities: overlapping });
  });
});
