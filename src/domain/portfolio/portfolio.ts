import type { z } from 'zod';
import { DomainRuleViolation, type Decider, type DomainEvent } from '../decider.ts';
import type { PortfolioCreated, PortfolioRenamed } from './events.ts';

export type PortfolioEvent =
  | DomainEvent<'PortfolioCreated', z.infer<typeof PortfolioCreated.schema>>
  | DomainEvent<'PortfolioRenamed', z.infer<typeof PortfolioRenamed.schema>>;

export type PortfolioCommand =
  | { readonly kind: 'CreatePortfolio'; readonly portfolioId: string; readonly ownerId: string; readonly name: string; readonly baseCurrency: string }
  | { readonly kind: 'RenamePortfolio'; readonly portfolioId: string; readonly name: string };

export type PortfolioState =
  | { readonly status: 'absent' }
  | { readonly status: 'active'; readonly portfolioId: string; readonly ownerId: string; readonly name: string; readonly baseCurrency: string };

export const portfolioStreamId = (portfolioId: string) => `portfolio-${portfolioId}`;

export const portfolioDecider: Decider<PortfolioState, PortfolioCommand, PortfolioEvent> = {
  initialState: () => ({ status: 'absent' }),

  decide(command, state) {
    switch (command.kind) {
      case 'CreatePortfolio': {
        const { portfolioId, ownerId, name, baseCurrency } = command;
        if (state.status === 'absent') return [{ type: 'PortfolioCreated', data: { portfolioId, ownerId, name, baseCurrency } }];
        // Repeating the same creation is a no-op, so a client may safely retry it.
        if (state.ownerId === ownerId && state.name === name && state.baseCurrency === baseCurrency) return [];
        throw new DomainRuleViolation('PORTFOLIO_EXISTS', `portfolio ${portfolioId} already exists`);
      }
      case 'RenamePortfolio': {
        if (state.status === 'absent') throw new DomainRuleViolation('PORTFOLIO_NOT_FOUND', `portfolio ${command.portfolioId} does not exist`);
        if (state.name === command.name) return [];
        return [{ type: 'PortfolioRenamed', data: { portfolioId: command.portfolioId, name: command.name } }];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'PortfolioCreated':
        return { status: 'active', ...event.data };
      case 'PortfolioRenamed':
        return state.status === 'active' ? { ...state, name: event.data.name } : state;
    }
  },
};
