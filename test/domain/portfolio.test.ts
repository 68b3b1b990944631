import { describe, expect, it } from 'vitest';
import { portfolioDecider, type PortfolioCommand, type PortfolioEvent, type PortfolioState } from '../../src/domain/portfolio/portfolio.ts';
import { violationCode } from '../support/decider.ts';

const create: PortfolioCommand = { kind: 'CreatePortfolio', portfolioId: 'p1', ownerId: 'u1', name: 'Retirement', baseCurrency: 'USD' };
const given = (...events: PortfolioEvent[]): PortfolioState => events.reduce(portfolioDecider.evolve, portfolioDecider.initialState());
const created: PortfolioEvent = { type: 'PortfolioCreated', data: { portfolioId: 'p1', ownerId: 'u1', name: 'Retirement', baseCurrency: 'USD' } };

const violation = violationCode;

describe('portfolio decider', () => {
  it('creates a portfolio that does not exist yet', () => {
    expect(portfolioDecider.decide(create, given())).toEqual([created]);
  });

  it('treats the same creation again as a no-op and a different one as a conflict', () => {
    expect(portfolioDecider.decide(create, given(created))).toEqual([]);
    expect(violation(() => portfolioDecider.decide({ ...create, baseCurrency: 'EUR' }, given(created)))).toBe('PORTFOLIO_EXISTS');
  });

  it('renames an existing portfolio, ignores a rename to its current name, refuses a missing one', () => {
    const rename: PortfolioCommand = { kind: 'RenamePortfolio', portfolioId: 'p1', name: 'Retirement 2050' };
    expect(portfolioDecider.decide(rename, given(created))).toEqual([{ type: 'PortfolioRenamed', data: { portfolioId: 'p1', name: 'Retirement 2050' } }]);
    expect(portfolioDecider.decide({ ...rename, name: 'Retirement' }, given(created))).toEqual([]);
    expect(violation(() => portfolioDecider.decide(rename, given()))).toBe('PORTFOLIO_NOT_FOUND');
  });

  it('folds renames into the state', () => {
    const state = given(created, { type: 'PortfolioRenamed', data: { portfolioId: 'p1', name: 'A' } }, { type: 'PortfolioRenamed', data: { portfolioId: 'p1', name: 'B' } });
    expect(state).toEqual({ status: 'active', portfolioId: 'p1', ownerId: 'u1', name: 'B', baseCurrency: 'USD', links: {} });
  });

  it('links connections with a weight, updates a link only when it changes, and unlinks', () => {
    const link: PortfolioCommand = { kind: 'LinkConnection', portfolioId: 'p1', connectionId: 'c1', weight: '0.5' };
    const linked = portfolioDecider.decide(link, given(created));
    expect(linked).toEqual([{ type: 'PortfolioConnectionLinked', data: { portfolioId: 'p1', connectionId: 'c1', weight: '0.5', includeInTotals: true } }]);
    const state = given(created, ...linked);
    expect(portfolioDecider.decide({ ...link, weight: '0.50' }, state)).toEqual([]);
    expect(portfolioDecider.decide({ ...link, includeInTotals: false }, state)).toHaveLength(1);
    expect(violation(() => portfolioDecider.decide({ ...link, weight: '1.5' }, state))).toBe('WEIGHT_OUT_OF_RANGE');
    const unlinked = portfolioDecider.decide({ kind: 'UnlinkConnection', portfolioId: 'p1', connectionId: 'c1' }, state);
    expect(unlinked).toEqual([{ type: 'PortfolioConnectionUnlinked', data: { portfolioId: 'p1', connectionId: 'c1' } }]);
    expect(given(created, ...linked, ...unlinked)).toMatchObject({ links: {} });
    expect(portfolioDecider.decide({ kind: 'UnlinkConnection', portfolioId: 'p1', connectionId: 'c1' }, given(created))).toEqual([]);
  });
});
