import { sql } from 'kysely';
import type { FastifyRequest } from 'fastify';
import type { ApiContext } from './context.ts';
import { principalOf } from './context.ts';
import { notFound } from './problem.ts';

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
