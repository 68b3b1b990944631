import type { EventMetadata } from '../domain/events/metadata.ts';
import type { ConflictTolerancesData } from '../domain/portfolio/portfolio.ts';
import { portfolioDecider, portfolioStreamId } from '../domain/portfolio/portfolio.ts';
import type { EventStore } from '../ports/event-store.ts';
import { handleCommand, type CommandResult } from './command-handler.ts';

export function createPortfolio(
  store: EventStore,
  input: { portfolioId: string; ownerId: string; name: string; baseCurrency: string },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  return handleCommand(store, portfolioDecider, portfolioStreamId(input.portfolioId), { kind: 'CreatePortfolio', ...input }, { metadata });
}

export function renamePortfolio(store: EventStore, input: { portfolioId: string; name: string }, metadata?: EventMetadata): Promise<CommandResult<unknown>> {
  return handleCommand(store, portfolioDecider, portfolioStreamId(input.portfolioId), { kind: 'RenamePortfolio', ...input }, { metadata });
}

/** Links a connection's holdings into a portfolio: a share of them (weight, 0 to 1) and whether they count in totals. */
export function linkConnection(
  store: EventStore,
  input: { portfolioId: string; connectionId: string; weight?: string; includeInTotals?: boolean },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  return handleCommand(store, portfolioDecider, portfolioStreamId(input.portfolioId), { kind: 'LinkConnection', ...input }, { metadata });
}

export function unlinkConnection(store: EventStore, input: { portfolioId: string; connectionId: string }, metadata?: EventMetadata): Promise<CommandResult<unknown>> {
  return handleCommand(store, portfolioDecider, portfolioStreamId(input.portfolioId), { kind: 'UnlinkConnection', ...input }, { metadata });
}

export function changeConflictTolerances(
  store: EventStore,
  input: { portfolioId: string; tolerances: ConflictTolerancesData },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  return handleCommand(store, portfolioDecider, portfolioStreamId(input.portfolioId), { kind: 'ChangeConflictTolerances', ...input }, { metadata });
}
