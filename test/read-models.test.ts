import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { initiateConnection } from '../src/commands/connections.ts';
import { parseFxCsv, recordFxRates } from '../src/commands/fx-rates.ts';
import { changeConnectionSettings } from '../src/commands/connections.ts';
import { createPortfolio, linkConnection, unlinkConnection } from '../src/commands/portfolios.ts';
import { Dec } from '../src/domain/money/decimal.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { consolidationProjector } from '../src/projections/consolidation.ts';
import { fxRatesProjector } from '../src/projections/fx-rates.ts';
import type { Projector } from '../src/projections/projector.ts';
import { performanceMetricsProjector, taxLotsProjector } from '../src/projections/source-details.ts';
import { syncOperationsProjector } from '../src/projections/sync-operations.ts';
import { transactionsProjector } from '../src/projections/transactions.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { appendSourceRecords, holdingWire, syncHoldings } from './support/ledger-events.ts';

const projectors: Projector[] = [fxRatesProjector, syncOperationsProjector, consolidationProjector, transactionsProjector, performanceMetricsProjector, taxLotsProjector];
let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
const services = () => ({ store, credentials: null as never });

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, projectors, { batchSize: 7 });
  for (const projector of projectors) await engine.ensure(projector);
});
afterAll(async () => database?.drop());

async function project(): Promise<void> {
  for (const projector of projectors) await engine.catchUpTo(projector);
}

async function rows<T>(query: ReturnType<typeof sql<T>>): Promise<T[]> {
  return (await query.execute(database.db)).rows;
}

const AAPL = { ticker: 'AAPL', cusip: '037833100', name: 'Apple Inc.' };
const MSFT = { ticker: 'MSFT', isin: 'US5949181045', name: 'Microsoft Corporation' };

describe('FX rates', () => {
  it('imports a CSV once, keeps the latest recording of a pair and date, and refuses a faulty line naming it', async () => {
    const csv = 'currency,quote,as_of,rate\nEUR,USD,2025-06-27,1.0800\n"EUR","USD","2025-06-30","1.1"\n\nGBP,USD,2025-06-30,1.25\n';
    const rates = parseFxCsv(csv);
    expect(rates).toHaveLength(3);
    const first = await recordFxRates(store, { rates, source: 'rates.csv' });
    const again = await recordFxRates(store, { rates, source: 'rates.csv' });
    expect([first.appended, again.appended]).toEqual([1, 0]);
    await recordFxRates(store, { rates: [{ currency: 'GBP', quote: 'USD', asOf: '2025-06-30', rate: '1.2700' }], source: 'correction' });
    await project();
    const table = await rows(sql<{ pair: string; as_of: string; rate: string; source: string }>`
      SELECT currency || '/' || quote AS pair, as_of::text, rate::text, source FROM fx_rates ORDER BY 1, 2`);
    expect(table).toEqual([
      { pair: 'EUR/USD', as_of: '2025-06-27', rate: '1.08', source: 'rates.csv' },
      { pair: 'EUR/USD', as_of: '2025-06-30', rate: '1.1', source: 'rates.csv' },
      { pair: 'GBP/USD', as_of: '2025-06-30', rate: '1.27', source: 'correction' },
    ]);
    expect(() => parseFxCsv('currency,quote,date,rate\nEUR,USD,2025-06-30,-1\n')).toThrow(/line 2: rate: must be more than 0/);
    expect(() => parseFxCsv('currency,quote,rate\nEUR,USD,1\n')).toThrow(/as_of/);
  });
});

describe('portfolios, connections and sync operations', () => {
  it('shows links with status, last and next sync, error count, success rate, counts and value; operations with counts and errors', async () => {
    await createPortfolio(store, { portfolioId: 'p-ops', ownerId: 'u1', name: 'Operations', baseCurrency: 'USD' });
    await initiateConnection(services(), { connectionId: 'c-ops', ownerId: 'u1', platform: 'orion', settings: { syncFrequencyMinutes: 60 } });
    await linkConnection(store, { portfolioId: 'p-ops', connectionId: 'c-ops' });
    const first = await syncHoldings(store, 'c-ops', { observed: [holdingWire({ recordId: 'h1', ...AAPL, quantity: '10', price: '200.00' })] });
    const second = await syncHoldings(
      store,
      'c-ops',
      { observed: [holdingWire({ recordId: 'h2', ...MSFT, quantity: '3', price: '400.10' })] },
      { failed: 1, errors: [{ recordId: 'h3', code: 'CURRENCY_NOT_SUPPORTED', message: 'XYZ is not a currency' }] },
    );
    await project();

    const ops = await rows(sql<{ operation_id: string; status: string; processed: number; inserted: number; failed: number; error_count: number }>`
      SELECT operation_id, status, processed, inserted, failed, error_count FROM sync_operations ORDER BY requested_at`);
    expect(ops).toEqual([
      { operation_id: first, status: 'completed', processed: 1, inserted: 1, failed: 0, error_count: 0 },
      { operation_id: second, status: 'partial', processed: 2, inserted: 1, failed: 1, error_count: 1 },
    ]);
    expect(await rows(sql`SELECT operation_id, record_id, code FROM sync_errors`)).toEqual([{ operation_id: second, record_id: 'h3', code: 'CURRENCY_NOT_SUPPORTED' }]);

    const [link] = await rows(sql<Record<string, unknown>>`
      SELECT status, platform, display_name, last_sync_status, error_count, success_rate::text, holdings_count, value::text,
             next_sync_at - last_sync_at AS until_next FROM portfolio_connections WHERE portfolio_id = 'p-ops'`);
    expect(link).toMatchObject({ status: 'pending', platform: 'orion', display_name: 'Orion', last_sync_status: 'partial', error_count: 1, success_rate: '1.0000', holdings_count: 2, value: '3200.30' });
    expect(link!.until_next).toMatchObject({ hours: 1 });
    const [portfolio] = await rows(sql`SELECT name, base_currency, total_value::text, holdings_count FROM portfolios WHERE portfolio_id = 'p-ops'`);
    expect(portfolio).toEqual({ name: 'Operations', base_currency: 'USD', total_value: '3200.30', holdings_count: 2 });
  });
});

describe('consolidation', () => {
  beforeAll(async () => {
    await createPortfolio(store, { portfolioId: 'p1', ownerId: 'u2', name: 'Family', baseCurrency: 'USD' });
    for (const [connectionId, platform] of [['c-bd', 'black_diamond'], ['c-or', 'orion'], ['c-ad', 'addepar']] as const) {
      await initiateConnection(services(), { connectionId, ownerId: 'u2', platform, settings: { conflictStrategy: 'MANUAL_REVIEW' } });
    }
    await linkConnection(store, { portfolioId: 'p1', connectionId: 'c-bd' });
    await linkConnection(store, { portfolioId: 'p1', connectionId: 'c-or' });
    await linkConnection(store, { portfolioId: 'p1', connectionId: 'c-ad', weight: '0.5' });
    await syncHoldings(store, 'c-bd', {
      observed: [
        holdingWire({ recordId: 'bd-1', ...AAPL, quantity: '10', price: '189.84' }),
        holdingWire({ recordId: 'bd-2', ...MSFT, quantity: '4.5', price: '415.50' }),
        holdingWire({ recordId: 'bd-3', ticker: 'CASHX', name: 'Cash', assetClass: 'cash', quantity: '1000.005', price: '1' }),
      ],
    });
    // Orion sends Apple by ISIN only: the ISIN embeds the CUSIP, so both meet under one security.
    await syncHoldings(store, 'c-or', {
      observed: [
        holdingWire({ recordId: 'or-1', isin: 'US0378331005', name: 'APPLE INC', quantity: '5', price: '189.84' }),
        holdingWire({ recordId: 'or-2', ticker: 'SAP', name: 'SAP SE', quantity: '7', price: '181.13', currency: 'EUR' }),
        holdingWire({ recordId: 'or-3', ticker: 'ZZZ', name: 'Mystery', quantity: '1', price: '5', currency: 'NOK' }),
      ],
    });
    await syncHoldings(store, 'c-ad', { observed: [holdingWire({ recordId: 'ad-1', ...AAPL, quantity: '3', price: '189.84' })] });
    await project();
  });

  async function holdings() {
    return rows(sql<{ security_key: string; quantity: string; value: string; percent: string; source_count: number }>`
      SELECT security_key, quantity::text, value::text, percent_of_portfolio::text AS percent, source_count FROM holdings WHERE portfolio_id = 'p1' ORDER BY security_key`);
  }

  it('consolidates by canonical security across sources with a per-source breakdown, weights and FX, totals to the cent', async () => {
    expect(await holdings()).toEqual([
      { security_key: 'CUSIP:037833100', quantity: '16.5', value: '3132.36', percent: expect.any(String), source_count: 3 },
      { security_key: 'CUSIP:594918104', quantity: '4.5', value: '1869.75', percent: expect.any(String), source_count: 1 },
      // 1000.005 rounds half to even
      { security_key: 'TICKER:CASHX', quantity: '1000.005', value: '1000.00', percent: expect.any(String), source_count: 1 },
      // 7 × 181.13 = 1267.91 EUR at 1.1 (the rate of 2025-06-30) = 1394.701 → 1394.70
      { security_key: 'TICKER:SAP', quantity: '7', value: '1394.70', percent: expect.any(String), source_count: 1 },
    ]);
    const breakdown = await rows(sql`
      SELECT connection_id, record_id, quantity::text, value::text, confidence::text FROM holding_sources
       WHERE portfolio_id = 'p1' AND security_key = 'CUSIP:037833100' ORDER BY connection_id`);
    expect(breakdown).toEqual([
      { connection_id: 'c-ad', record_id: 'ad-1', quantity: '1.5', value: '284.76', confidence: '1' },
      { connection_id: 'c-bd', record_id: 'bd-1', quantity: '10', value: '1898.40', confidence: '1' },
      { connection_id: 'c-or', record_id: 'or-1', quantity: '5', value: '949.20', confidence: '1' },
    ]);
    const [portfolio] = await rows(sql<{ total: string; n: number }>`SELECT total_value::text AS total, holdings_count AS n FROM portfolios WHERE portfolio_id = 'p1'`);
    const list = await holdings();
    expect(portfolio!.total).toBe(Dec.sum(...list.map((h) => h.value)).toFixed(2));
    expect(portfolio).toEqual({ total: '7396.81', n: 4 });
    expect(list.map((h) => h.percent)).toEqual(list.map((h) => new Dec(h.value).div('7396.81').times(100).toDecimalPlaces(4).toFixed()));
    // NOK has no rate: that record fails alone, with its code.
    expect(await rows(sql`SELECT connection_id, record_id, code FROM holding_errors WHERE portfolio_id = 'p1'`)).toEqual([
      { connection_id: 'c-or', record_id: 'or-3', code: 'CURRENCY_NOT_SUPPORTED' },
    ]);
    const links = await rows(sql`SELECT connection_id, value::text, holdings_count FROM portfolio_connections WHERE portfolio_id = 'p1' ORDER BY connection_id`);
    expect(links).toEqual([
      { connection_id: 'c-ad', value: '284.76', holdings_count: 1 },
      { connection_id: 'c-bd', value: '4768.15', holdings_count: 3 },
      { connection_id: 'c-or', value: '2343.90', holdings_count: 3 },
    ]);
  });

  it('follows changes and removals, and a rate recorded later consolidates the record that lacked one', async () => {
    await syncHoldings(store, 'c-bd', { changed: [{ recordId: 'bd-2', revision: 2, changes: { quantity: '5', marketValue: '2077.50' } }], removed: [{ recordId: 'bd-3', revision: 2 }] });
    await recordFxRates(store, { rates: [{ currency: 'USD', quote: 'NOK', asOf: '2025-06-01', rate: '10' }], source: 'test' });
    await project();
    const list = await holdings();
    expect(list.map((h) => [h.security_key, h.quantity, h.value])).toEqual([
      ['CUSIP:037833100', '16.5', '3132.36'],
      ['CUSIP:594918104', '5', '2077.50'],
      ['TICKER:SAP', '7', '1394.70'],
      // 5 NOK at the inverse of USD/NOK 10
      ['TICKER:ZZZ', '1', '0.50'],
    ]);
    expect(await rows(sql`SELECT count(*)::int AS n FROM holding_errors`)).toEqual([{ n: 0 }]);
    const [portfolio] = await rows(sql<{ total: string }>`SELECT total_value::text AS total FROM portfolios WHERE portfolio_id = 'p1'`);
    expect(portfolio!.total).toBe(Dec.sum(...list.map((h) => h.value)).toFixed(2));
  });

  it('re-consolidates when a filter changes, and again when it is lifted; unlinking removes a source', async () => {
    await changeConnectionSettings({ store }, { connectionId: 'c-bd', changes: { dataFilters: { excludedSecurities: ['MSFT'], minimumValue: '1000' } } });
    await project();
    // Black Diamond's Microsoft is excluded; its Apple (1898.40) passes the minimum.
    expect((await holdings()).map((h) => [h.security_key, h.quantity])).toEqual([
      ['CUSIP:037833100', '16.5'],
      ['TICKER:SAP', '7'],
      ['TICKER:ZZZ', '1'],
    ]);
    await changeConnectionSettings({ store }, { connectionId: 'c-bd', changes: { dataFilters: { includedAssetClasses: ['cash'] } } });
    await project();
    expect((await holdings()).map((h) => [h.security_key, h.quantity])).toEqual([
      ['CUSIP:037833100', '6.5'],
      ['TICKER:SAP', '7'],
      ['TICKER:ZZZ', '1'],
    ]);
    await changeConnectionSettings({ store }, { connectionId: 'c-bd', changes: { dataFilters: {} } });
    await unlinkConnection(store, { portfolioId: 'p1', connectionId: 'c-ad' });
    await project();
    expect((await holdings()).map((h) => [h.security_key, h.quantity, h.source_count])).toEqual([
      ['CUSIP:037833100', '15', 2],
      ['CUSIP:594918104', '5', 1],
      ['TICKER:SAP', '7', 1],
      ['TICKER:ZZZ', '1', 1],
    ]);
  });

  it('equals a rebuild from the log, row for row', async () => {
    const snapshot = async () => ({
      holdings: await rows(sql`SELECT * FROM holdings ORDER BY portfolio_id, security_key`),
      sources: await rows(sql`SELECT * FROM holding_sources ORDER BY portfolio_id, security_key, connection_id, record_id`),
      portfolios: await rows(sql`SELECT * FROM portfolios ORDER BY portfolio_id`),
      links: await rows(sql`SELECT * FROM portfolio_connections ORDER BY portfolio_id, connection_id`),
      connections: await rows(sql`SELECT * FROM connections ORDER BY connection_id`),
      operations: await rows(sql`SELECT * FROM sync_operations ORDER BY operation_id`),
    });
    const live = await snapshot();
    await engine.rebuild(consolidationProjector);
    await engine.rebuild(syncOperationsProjector);
    expect(await snapshot()).toEqual(live);
  });
});

describe('transactions, performance and tax lots', () => {
  const buy = (recordId: string, amount = '-1898.40') => ({
    platformRecordId: recordId, platformAccountId: 'a', type: 'BUY', status: 'COMPLETED', tradeDate: '2025-06-02',
    security: { ticker: 'AAPL', cusip: '037833100', name: 'Apple Inc.', assetClass: 'equity', securityType: 'stock' },
    quantity: '10', price: '189.84', amount, currency: 'USD',
  });

  it('de-duplicates a transaction two sources report, keeps two equal trades of one source apart, and follows changes', async () => {
    await createPortfolio(store, { portfolioId: 'p-tx', ownerId: 'u3', name: 'Trades', baseCurrency: 'USD' });
    for (const connectionId of ['t-1', 't-2']) {
      await initiateConnection(services(), { connectionId, ownerId: 'u3', platform: 'orion' });
      await linkConnection(store, { portfolioId: 'p-tx', connectionId });
    }
    await appendSourceRecords(store, 't-1', 'transactions', [buy('x-1'), buy('x-2'), { ...buy('x-3'), type: 'DIVIDEND', quantity: undefined, amount: '12.00' }]);
    await appendSourceRecords(store, 't-2', 'transactions', [buy('y-1')]);
    await project();
    const list = async () =>
      rows(sql<{ type: string; source_count: number; sources: { connectionId: string; recordId: string }[] }>`
        SELECT type, source_count, sources FROM transactions WHERE portfolio_id = 'p-tx' ORDER BY type, transaction_id`);
    expect((await list()).map((t) => [t.type, t.sources.map((s) => s.recordId).sort()])).toEqual([
      ['BUY', ['x-1', 'y-1']],
      ['BUY', ['x-2']],
      ['DIVIDEND', ['x-3']],
    ]);
    await appendSourceRecords(store, 't-2', 'transactions', [], [{ recordId: 'y-1', revision: 2, changes: { amount: '-1898.41' } }]);
    await project();
    expect((await list()).map((t) => t.source_count)).toEqual([1, 1, 1, 1]);
  });

  it('keeps performance per account and period, and tax lots, as the platforms report them', async () => {
    await appendSourceRecords(store, 't-1', 'performance', [
      { platformAccountId: 'a', period: 'YTD', startDate: '2025-01-01', endDate: '2025-06-30', returnRate: '0.0523', beginningValue: '1000.00', endingValue: '1052.30', netFlows: '0.00', currency: 'USD' },
    ], [], 'a:YTD');
    await appendSourceRecords(store, 't-1', 'tax_lots', [
      { platformRecordId: 'lot-1', platformAccountId: 'a', holdingRecordId: 'h', security: { ticker: 'AAPL', name: 'Apple', assetClass: 'equity', securityType: 'stock' }, acquiredOn: '2023-01-03', quantity: '10', costBasis: '1250.00', method: 'FIFO', term: 'LONG', currency: 'USD' },
    ]);
    await project();
    expect(await rows(sql`SELECT period, return_rate::text, ending_value::text FROM performance_metrics`)).toEqual([{ period: 'YTD', return_rate: '0.0523', ending_value: '1052.30' }]);
    expect(await rows(sql`SELECT ticker, quantity::text, cost_basis::text, method, term FROM tax_lots`)).toEqual([{ ticker: 'AAPL', quantity: '10', cost_basis: '1250.00', method: 'FIFO', term: 'LONG' }]);
  });
});
