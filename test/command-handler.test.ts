import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { handleCommand } from '../src/commands/command-handler.ts';
import { DomainRuleViolation } from '../src/domain/decider.ts';
import { InvalidEventError } from '../src/domain/events/catalogue.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { portfolioDecider, portfolioStreamId, type PortfolioCommand } from '../src/domain/portfolio/portfolio.ts';
import { WrongExpectedVersionError } from '../src/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 15 });
  store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });
});
afterAll(async () => database?.drop());

const create = (portfolioId: string): Extract<PortfolioCommand, { kind: 'CreatePortfolio' }> => ({ kind: 'CreatePortfolio', portfolioId, ownerId: 'u1', name: 'Growth', baseCurrency: 'CHF' });
const handle = (portfolioId: string, command: PortfolioCommand, maxRetries?: number) =>
  handleCommand(store, portfolioDecider, portfolioStreamId(portfolioId), command, { metadata: { actor: 'u1', source: 'test' }, maxRetries });

describe('command handler', () => {
  it('appends what the decider decides, with metadata, and nothing for a no-op', async () => {
    const first = await handle('a', create('a'));
    expect(first.version).toBe(1);
    expect(first.lastCursor).not.toBeNull();
    const again = await handle('a', create('a'));
    expect(again).toEqual({ events: [], version: 1, lastCursor: null });
    const [stored] = await store.readStream('portfolio-a');
    expect(stored).toMatchObject({ type: 'PortfolioCreated', data: { name: 'Growth', baseCurrency: 'CHF' }, metadata: { actor: 'u1', source: 'test' } });
  });

  it('surfaces a broken rule and writes nothing', async () => {
    await expect(handle('missing', { kind: 'RenamePortfolio', portfolioId: 'missing', name: 'X' })).rejects.toBeInstanceOf(DomainRuleViolation);
    expect(await store.readStream('portfolio-missing')).toEqual([]);
  });

  it('refuses a command whose event fails its schema, naming the field', async () => {
    const error = await handle('bad', { ...create('bad'), baseCurrency: 'usd' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as Error).message).toContain('data.baseCurrency: must be an ISO 4217 code');
    expect(await store.readStream('portfolio-bad')).toEqual([]);
  });

  it('decides again when another writer changed the stream meanwhile', async () => {
    await handle('busy', create('busy'));
    const names = Array.from({ length: 8 }, (_, i) => `Name ${i}`);
    const results = await Promise.all(names.map((name) => handle('busy', { kind: 'RenamePortfolio', portfolioId: 'busy', name }, 20)));
    expect(results.every((r) => r.events.length === 1)).toBe(true);
    const stream = await store.readStream('portfolio-busy');
    expect(stream.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(stream.slice(1).map((e) => (e.data as { name: string }).name))).toEqual(new Set(names));
  });

  it('gives up with WrongExpectedVersion after the allowed retries', async () => {
    await handle('contended', create('contended'));
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => handle('contended', { kind: 'RenamePortfolio', portfolioId: 'contended', name: `N${i}` }, 0)),
    );
    const failures = outcomes.filter((o) => o.status === 'rejected');
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) expect((failure as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedVersionError);
  });
});
