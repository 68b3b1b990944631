import { sql } from 'kysely';
import type { FastifyRequest } from 'fastify';
import { loadConnection, loadOperation } from '../../../commands/sync-requests.ts';
import type { ConnectionState } from '../../../domain/connections/connection.ts';
import type { SyncOperationState } from '../../../domain/sync/sync-operation.ts';
import type { ApiContext } from './context.ts';
import { principalOf } from './context.ts';
import { ApiProblem, notFound } from './problem.ts';

/**
 * Who may see what. Every lookup by id goes through here and answers "does not exist" for
 * anything the caller may not see, so another user's ids reveal nothing, not even that they exist.
 */

export interface PortfolioAccess {
  readonly portfolioId: string;
  readonly ownerId: string;
  readonly baseCurrency: string;
}

/** A portfolio the caller owns (any role but operations, which sees no holdings). */
export async function visiblePortfolio(context: ApiContext, request: FastifyRequest, portfolioId: string): Promise<PortfolioAccess> {
  const principal = principalOf(request);
  const row = (await sql<{ portfolio_id: string; owner_id: string; base_currency: string }>`
    SELECT portfolio_id, owner_id, base_currency FROM portfolios WHERE portfolio_id = ${portfolioId}`.execute(context.ledger.database.db)).rows[0];
  const owns = row !== undefined && row.owner_id === principal.userId && principal.roles.has('owner');
  if (!row || !owns) throw notFound(`portfolio ${portfolioId}`);
  return { portfolioId: row.portfolio_id, ownerId: row.owner_id, baseCurrency: row.base_currency };
}

type LiveConnection = Exclude<ConnectionState, { status: 'absent' }>;
type LiveOperation = Exclude<SyncOperationState, { status: 'absent' }>;

/**
 * Whose connections and sync operations the caller sees in sync monitoring: every user's with the
 * operations role, else (owner) their own. null means everyone's.
 */
export function monitoredOwner(request: FastifyRequest): string | null {
  const principal = principalOf(request);
  if (principal.roles.has('operations')) return null;
  if (principal.roles.has('owner')) return principal.userId;
  throw new ApiProblem('forbidden', `sync monitoring needs the role owner or operations; the token has ${[...principal.roles].join(', ')}`);
}

/** A connection the caller may watch (monitoredOwner); 404 for any other id. */
export async function visibleConnection(context: ApiContext, request: FastifyRequest, connectionId: string): Promise<{ connectionId: string; ownerId: string }> {
  const owner = monitoredOwner(request);
  const row = (await sql<{ owner_id: string }>`SELECT owner_id FROM connections WHERE connection_id = ${connectionId}`.execute(context.ledger.database.db)).rows[0];
  if (!row || (owner !== null && row.owner_id !== owner)) throw notFound(`connection ${connectionId}`);
  return { connectionId, ownerId: row.owner_id };
}

/**
 * A connection the caller owns and may command, as the log has it (not the read model, which may
 * lag behind a connection just made); 404 for any other id.
 */
export async function ownedConnection(context: ApiContext, request: FastifyRequest, connectionId: string): Promise<LiveConnection> {
  const principal = principalOf(request);
  const connection = await loadConnection(context.ledger.store, connectionId);
  if (connection.status === 'absent' || connection.ownerId !== principal.userId || !principal.roles.has('owner')) throw notFound(`connection ${connectionId}`);
  return connection;
}

/** A sync operation of a connection the caller may watch, as the log has it; 404 for any other id. */
export async function visibleSyncOperation(context: ApiContext, request: FastifyRequest, operationId: string): Promise<LiveOperation> {
  const owner = monitoredOwner(request);
  const operation = await loadOperation(context.ledger.store, operationId);
  if (operation.status === 'absent') throw notFound(`sync operation ${operationId}`);
  if (owner !== null) {
    const connection = await loadConnection(context.ledger.store, operation.request.connectionId);
    if (connection.status === 'absent' || connection.ownerId !== owner) throw notFound(`sync operation ${operationId}`);
  }
  return operation;
}
