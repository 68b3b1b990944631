import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../src/adapters/postgres/projection-engine.ts';
import { detectConflictsAfterSync, detectPortfolioConflicts, ignoreConflict, resolveConflictByPerson } from '../src/commands/conflicts.ts';
import { initiateConnection } from '../src/commands/connections.ts';
import { createPortfolio, linkConnection } from '../src/commands/portfolios.ts';
import type { ResolutionStrategy } from '../src/domain/conflicts/resolution.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { consolidationProjector } from '../src/projections/consolidation.ts';
import { portfolioConflictsProjector } from '../src/projections/portfolio-conflicts.ts';
import type { Projector } from '../src/projections/projector.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { holdingWire, syncHoldings } from './support/ledger-events.ts';

const projectors: Projector[] = [consolidationProjector, portfolioConflictsProjector];
let database: TestDatabase;
let store: PostgresEventStore;
let engine: ProjectionEngine;
const services = () => ({ store, db: database.db });

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
  engine = new ProjectionEngine(database.db, store, projectors);
  for (const projector of projectors) await engine.ensure(projector);
});
afterAll(async () => database?.drop());

async function project(): Promise<void> {
  for (const projector of projectors) await engine.catchUpTo(projector);
}

const AAPL = { ticker: 'AAPL', cusip: '037833100', name: 'Apple Inc.', price: '189.84' };

/** Two sources of one portfolio disagree on Apple: A holds 100, B 90 (10% apart, beyond the 0.5% tolerance). */
async function disagreement(strategy: ResolutionStrategy, options: { bFirst?: boolean; name?: string } = {}) {
  const p = `p-${options.name ?? strategy.toLowerCase()}`;
  const [a, b] = [`${p}-a`, `${p}-b`];
  await createPortfolio(store, { portfolioId: p, ownerId: 'u', name: strategy, baseCurrency: 'USD' });
  for (const c of [a, b]) {
    await initiateConnection({ store, credentials: null as never }, { connectionId: c, ownerId: 'u', platform: 'orion', settings: { conflictStrategy: strategy } });
    await linkConnection(store, { portfolioId: p, connectionId: c });
  }
  const syncA = () => syncHoldings(store, a, { observed: [holdingWire({ recordId: `${a}-1`, ...AAPL, quantity: '100' })] });
  const syncB = () => syncHoldings(store, b, { observed: [holdingWire({ recordId: `${b}-1`, ...AAPL, quantity: '90' })] });
  for (const run of options.bFirst ? [syncB, syncA] : [syncA, syncB]) {
    await run();
    await delay(5);
  }
  await project();
  const report = await detectPortfolioConflicts(services(), p);
  await project();
  return { p, a, b, report };
}

async function conflictOf(portfolioId: string) {
  const [row] = (
    await sql<{ conflict_id: string; conflict_type: string; status: string; strategy: string | null; resolved_value: string | null; chosen_version: number | null; automatic: boolean | null; versions: { connectionId: string; value: string }[] }>`
      SELECT conflict_id, conflict_type, status, strategy, resolved_value::text, chosen_version, automatic, versions FROM portfolio_conflicts WHERE portfolio_id = ${portfolioId}`.execute(database.db)
  ).rows;
  return row!;
}

async function appleIn(portfolioId: string) {
  return (await sql<{ quantity: string; value: string; settled: boolean }>`
    SELECT quantity::text, value::text, settled FROM holdings WHERE portfolio_id = ${portfolioId} AND security_key = 'CUSIP:037833100'`.execute(database.db)).rows[0]!;
}

describe('conflicts between two sources of one portfolio', () => {
  it('CLEARWAY_WINS: the value the ledger held first stands', async () => {
    const { p, report } = await disagreement('CLEARWAY_WINS');
    expect(report).toEqual({ detected: 1, versionsObserved: 0, resolved: 1, pending: 0 });
    expect(await conflictOf(p)).toMatchObject({ conflict_type: 'QUANTITY_MISMATCH', status: 'resolved', strategy: 'CLEARWAY_WINS', resolved_value: '100', chosen_version: 1, automatic: true });
    expect(await appleIn(p)).toEqual({ quantity: '100', value: '18984.00', settled: true });
  });

  it('PLATFORM_WINS: the newest version the platforms reported stands', async () => {
    const { p } = await disagreement('PLATFORM_WINS');
    expect(await conflictOf(p)).toMatchObject({ status: 'resolved', resolved_value: '90', chosen_version: 2 });
    expect((await appleIn(p)).quantity).toBe('90');
  });

  it('TIMESTAMP: the latest observation wins, whichever source it came from', async () => {
    const { p, a } = await disagreement('TIMESTAMP', { bFirst: true });
    const conflict = await conflictOf(p);
    expect(conflict.versions[0]!.connectionId).toBe(a);
    expect(conflict).toMatchObject({ status: 'resolved', resolved_value: '100', chosen_version: 1 });
    expect((await appleIn(p)).quantity).toBe('100');
  });

  it('MERGE: the average of the sources', async () => {
    const { p } = await disagreement('MERGE');
    expect(await conflictOf(p)).toMatchObject({ status: 'resolved', resolved_value: '95', chosen_version: null });
    expect(await appleIn(p)).toEqual({ quantity: '95', value: '18034.80', settled: true });
  });

  it('MANUAL_REVIEW: pending, the sources add up, until a person resolves it (or ignores another)', async () => {
    const { p, report } = await disagreement('MANUAL_REVIEW');
    expect(report).toEqual({ detected: 1, versionsObserved: 0, resolved: 0, pending: 1 });
    const conflict = await conflictOf(p);
    expect(conflict.status).toBe('open');
    expect(await appleIn(p)).toEqual({ quantity: '190', value: '36069.60', settled: false });
    await expect(resolveConflictByPerson(store, { conflictId: conflict.conflict_id, strategy: 'MANUAL_REVIEW', resolvedBy: 'ana' })).rejects.toThrow(/MANUAL_REVIEW leaves a conflict pending/);
    await resolveConflictByPerson(store, { conflictId: conflict.conflict_id, strategy: 'MERGE', value: '92', resolvedBy: 'ana' });
    await project();
    expect(await conflictOf(p)).toMatchObject({ status: 'resolved', strategy: 'MERGE', resolved_value: '92', automatic: false });
    expect((await appleIn(p)).quantity).toBe('92');
    await expect(ignoreConflict(store, { conflictId: conflict.conflict_id, ignoredBy: 'ana' })).rejects.toThrow(/already resolved/);
  });

  it('VERSION_CONTROL: every version kept, the newest taken, and an earlier one chosen after later ones arrived', async () => {
    const { p, b } = await disagreement('VERSION_CONTROL');
    expect(await conflictOf(p)).toMatchObject({ status: 'resolved', resolved_value: '90', chosen_version: 2 });
    // B reports 80 next: a third version reopens the conflict and the newest stands again.
    const operationId = await syncHoldings(store, b, { changed: [{ recordId: `${b}-1`, revision: 2, changes: { quantity: '80', marketValue: '15187.20' } }] });
    await project();
    const completed = (await store.readStream(`sync-${operationId}`)).at(-1)!;
    expect(await detectConflictsAfterSync(services(), completed)).toEqual({ detected: 0, versionsObserved: 1, resolved: 1, pending: 0 });
    await project();
    const reopened = await conflictOf(p);
    expect(reopened.versions.map((v) => v.value)).toEqual(['100', '90', '80']);
    expect(reopened).toMatchObject({ resolved_value: '80', chosen_version: 3 });
    await resolveConflictByPerson(store, { conflictId: reopened.conflict_id, strategy: 'VERSION_CONTROL', version: 1, resolvedBy: 'ana' });
    await project();
    expect(await conflictOf(p)).toMatchObject({ status: 'resolved', resolved_value: '100', chosen_version: 1, automatic: false });
    expect((await appleIn(p)).quantity).toBe('100');
    const { rows } = await sql<{ resolutions: number }>`SELECT resolutions FROM portfolio_conflicts WHERE portfolio_id = ${p}`.execute(database.db);
    expect(rows).toEqual([{ resolutions: 3 }]);
  });

  it('detecting again appends nothing; an ignored conflict stays ignored when a new version arrives', async () => {
    const before = await store.head();
    expect(await detectPortfolioConflicts(services(), 'p-clearway_wins')).toEqual({ detected: 0, versionsObserved: 0, resolved: 0, pending: 0 });
    expect(await store.head()).toEqual(before);

    const { p, b } = await disagreement('MANUAL_REVIEW', { name: 'ignored' });
    const conflict = await conflictOf(p);
    await ignoreConflict(store, { conflictId: conflict.conflict_id, ignoredBy: 'ana', reason: 'two accounts, not one position' });
    await syncHoldings(store, b, { changed: [{ recordId: `${b}-1`, revision: 2, changes: { quantity: '85' } }] });
    await project();
    expect(await detectPortfolioConflicts(services(), p)).toEqual({ detected: 0, versionsObserved: 1, resolved: 0, pending: 0 });
    await project();
    expect(await conflictOf(p)).toMatchObject({ status: 'ignored' });
    expect((await appleIn(p)).quantity).toBe('185');
  });
});
