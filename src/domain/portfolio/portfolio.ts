import type { z } from 'zod';
import { DomainRuleViolation, type Decider, type DomainEvent } from '../decider.ts';
import type { EventData } from '../events/catalogue.ts';
import { Dec } from '../money/decimal.ts';
import type {
  ConflictTolerancesSchema,
  PortfolioConnectionLinked,
  PortfolioConnectionUnlinked,
  PortfolioCreated,
  PortfolioRenamed,
  PortfolioTolerancesChanged,
} from './events.ts';

type Link = Omit<EventData<typeof PortfolioConnectionLinked>, 'portfolioId'>;
export type ConflictTolerancesData = z.infer<typeof ConflictTolerancesSchema>;

export type PortfolioEvent =
  | DomainEvent<'PortfolioCreated', EventData<typeof PortfolioCreated>>
  | DomainEvent<'PortfolioRenamed', EventData<typeof PortfolioRenamed>>
  | DomainEvent<'PortfolioConnectionLinked', EventData<typeof PortfolioConnectionLinked>>
  | DomainEvent<'PortfolioConnectionUnlinked', EventData<typeof PortfolioConnectionUnlinked>>
  | DomainEvent<'PortfolioTolerancesChanged', EventData<typeof PortfolioTolerancesChanged>>;

export type PortfolioCommand =
  | { readonly kind: 'CreatePortfolio'; readonly portfolioId: string; readonly ownerId: string; readonly name: string; readonly baseCurrency: string }
  | { readonly kind: 'RenamePortfolio'; readonly portfolioId: string; readonly name: string }
  | { readonly kind: 'LinkConnection'; readonly portfolioId: string; readonly connectionId: string; readonly weight?: string; readonly includeInTotals?: boolean }
  | { readonly kind: 'UnlinkConnection'; readonly portfolioId: string; readonly connectionId: string }
  | { readonly kind: 'ChangeConflictTolerances'; readonly portfolioId: string; readonly tolerances: ConflictTolerancesData };

export type PortfolioState =
  | { readonly status: 'absent' }
  | {
      readonly status: 'active';
      readonly portfolioId: string;
      readonly ownerId: string;
      readonly name: string;
      readonly baseCurrency: string;
      readonly links: Readonly<Record<string, Link>>;
      readonly tolerances?: ConflictTolerancesData;
    };

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
        const current = requirePortfolio(state, command.portfolioId);
        if (current.name === command.name) return [];
        return [{ type: 'PortfolioRenamed', data: { portfolioId: command.portfolioId, name: command.name } }];
      }
      case 'LinkConnection': {
        const current = requirePortfolio(state, command.portfolioId);
        const weight = new Dec(command.weight ?? '1');
        if (weight.lte(0) || weight.gt(1)) throw new DomainRuleViolation('WEIGHT_OUT_OF_RANGE', `weight must be more than 0 and at most 1, not ${command.weight}`);
        const link = { connectionId: command.connectionId, weight: weight.toFixed(), includeInTotals: command.includeInTotals ?? true };
        const held = current.links[command.connectionId];
        if (held && new Dec(held.weight).eq(weight) && held.includeInTotals === link.includeInTotals) return [];
        return [{ type: 'PortfolioConnectionLinked', data: { portfolioId: command.portfolioId, ...link } }];
      }
      case 'UnlinkConnection': {
        const current = requirePortfolio(state, command.portfolioId);
        if (!current.links[command.connectionId]) return [];
        return [{ type: 'PortfolioConnectionUnlinked', data: { portfolioId: command.portfolioId, connectionId: command.connectionId } }];
      }
      case 'ChangeConflictTolerances': {
        const current = requirePortfolio(state, command.portfolioId);
        if (JSON.stringify(current.tolerances) === JSON.stringify(command.tolerances)) return [];
        return [{ type: 'PortfolioTolerancesChanged', data: { portfolioId: command.portfolioId, tolerances: command.tolerances } }];
      }
    }
  },

  evolve(state, event) {
    if (event.type === 'PortfolioCreated') return { status: 'active', ...event.data, links: {} };
    if (state.status === 'absent') return state;
    switch (event.type) {
      case 'PortfolioRenamed':
        return { ...state, name: event.data.name };
      case 'PortfolioConnectionLinked': {
        const { portfolioId: _portfolio, ...link } = event.data;
        return { ...state, links: { ...state.links, [link.connectionId]: link } };
      }
      case 'PortfolioConnectionUnlinked': {
        const { [event.data.connectionId]: _removed, ...links } = state.links;
        return { ...state, links };
      }
      case 'PortfolioTolerancesChanged':
        return { ...state, tolerances: event.data.tolerances };
    }
  },
};

function requirePortfolio(state: PortfolioState, portfolioId: string): Exclude<PortfolioState, { status: 'absent' }> {
  if (state.status === 'absent') throw new DomainRuleViolation('PORTFOLIO_NOT_FOUND', `portfolio ${portfolioId} does not exist`);
  return state;
}
