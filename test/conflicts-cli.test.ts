import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { detectPortfolioConflicts } from '../src/commands/conflicts.ts';
import { initiateConnection } from '../src/commands/connections.ts';
import { createPortfolio, linkConnection } from '../src/commands/portfolios.ts';
import { projectors } from '../src/composition.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { holdingWire, syncHoldings } from './support/ledger-events.ts';
import { ledgerCli } from './support/processes.ts';

let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
let env: NodeJS.ProcessEnv;

async function project(): Promise<void> {
  for (const projector of projectors) await engine.catchUpTo(projector);
}

beforeAll(async () => {
  database = await createTestDatabase();
  env = { DATABASE_URL: database.connectionString };
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, projectors);
  for (const projector of projectors) await engine.ensure(projector);
  await createPortfolio(store, { portfolioId: 'family', ownerId: 'u', name: 'Family', baseCurrency: 'USD' });
  for (const c of ['bd', 'orion']) {
    await initiateConnection({ store, credentials: null as never }, { connectionId: c, ownerId: 'u', platform: c === 'bd' ? 'black_diamond' : 'orion', settings: { conflictStrategy: 'MANUAL_REVIEW' } });
    await linkConnection(store, { portfolioId: 'family', connectionId: c });
  }
  await syncHoldings(store, 'bd', { observed: [holdingWire({ recordId: 'bd-1', ticker: 'AAPL', cusip: '037833100', quantity: '100', price: '189.84' })] });
  await syncHoldings(store, 'orion', {
    observed: [
      holdingWire({ recordId: 'or-1', ticker: 'AAPL', isin: 'US0378331005', quantity: '90', price: '189.84' }),
      holdingWire({ recordId: 'or-2', ticker: 'SAP', quantity: '10', price: '181.13', currency: 'EUR' }),
    ],
  });
  await project();
  await detectPortfolioConflicts({ store, db: database.db }, 'family');
  await project();
});
afterAll(async () => database?.drop());

describe('ledger portfolio, conflicts, resolve and fx', () => {
  it('imports FX rates from a file, once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fx-'));
    const file = join(dir, 'rates.csv');
    await writeFile(file, 'currency,quote,date,rate\nEUR,USD,2025-06-30,1.08\n');
    expect((await ledgerCli(['fx', 'import', file], env)).stdout).toContain('recorded 1 rates');
    expect((await ledgerCli(['fx', 'import', file], env)).stdout).toContain('all 1 rates were already recorded');
    await project();
    expect((await ledgerCli(['fx', 'list'], env)).stdout).toMatch(/EUR\/USD.*2025-06-30.*1\.08.*rates\.csv/);
  });

  it('shows a portfolio: total, holdings with their sources, connections, the open conflict and the sync operations', async () => {
    const result = await ledgerCli(['portfolio', 'family'], env);
    expect(result.code).toBe(0);
    // 190 Apple (36069.60) + 10 SAP at 1.08 (1956.20)
    expect(result.stdout).toContain('Family (family), owner u: 38025.80 USD in 2 holdings');
    expect(result.stdout).toMatch(/CUSIP:037833100.*190.*36069\.60.*bd 100 \(18984\.00, confidence 1\); orion 90 \(17085\.60, confidence 1\)/);
    expect(result.stdout).toContain('conflicts (1 open)');
    expect(result.stdout).toMatch(/QUANTITY_MISMATCH.*open/);
    expect(result.stdout.match(/completed/g)?.length).toBeGreaterThanOrEqual(2);
    const missing = await ledgerCli(['portfolio', 'nobody'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('portfolio nobody is not in the read models');
  });

  it('lists open conflicts and resolves one by a prefix of its id', async () => {
    const listed = await ledgerCli(['conflicts', '--json'], env);
    const [conflict] = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as { conflict_id: string; status: string });
    expect(conflict!.status).toBe('open');
    const refused = await ledgerCli(['resolve', conflict!.conflict_id.slice(0, 8), 'PLATFORM_WINS', '12'], env);
    expect(refused.stderr).toContain('PLATFORM_WINS takes no value; use MERGE to set one');
    const resolved = await ledgerCli(['resolve', conflict!.conflict_id.slice(0, 8).toLowerCase(), 'merge', '95', '--by', 'ana'], env);
    expect(resolved.stdout).toContain(`conflict ${conflict!.conflict_id} resolved by MERGE: 95`);
    await project();
    expect((await ledgerCli(['conflicts'], env)).stdout).toContain('no open conflicts');
    expect((await ledgerCli(['conflicts', '--status', 'resolved'], env)).stdout).toMatch(/MERGE 95 by ana/);
    expect((await ledgerCli(['portfolio', 'family'], env)).stdout).toMatch(/CUSIP:037833100.*95.*18034\.80.*yes/);
  });
});
