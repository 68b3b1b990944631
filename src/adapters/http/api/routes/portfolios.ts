import { ulid } from 'ulid';
import { z } from 'zod';
import { loadConnection } from '../../../../commands/sync-requests.ts';
import { createPortfolio, linkConnection } from '../../../../commands/portfolios.ts';
import { CurrencySchema } from '../../../../domain/money/currency.ts';
import { commandMetadata, requireRole, type ApiRoutes } from '../context.ts';
import { notFound } from '../problem.ts';
import { commonErrors, DecimalString, IdSchema, PositionSchema, withPosition } from '../schemas.ts';

const LinkSchema = z.object({
  connectionId: IdSchema,
  weight: DecimalString.optional().meta({ description: "The share of the connection's holdings that belongs to the portfolio, more than 0 and at most 1; default 1" }),
  includeInTotals: z.boolean().optional().meta({ description: 'Whether the connection counts in the totals; default true' }),
});

const CreatePortfolioBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    baseCurrency: CurrencySchema,
    connections: z.array(LinkSchema).max(100).default([]).meta({ description: 'Connections of the caller to link at once' }),
  })
  .strict();

const CreatedPortfolio = z.object({
  portfolioId: z.string(),
  name: z.string(),
  baseCurrency: z.string(),
  connections: z.array(z.object({ connectionId: z.string(), weight: z.string(), includeInTotals: z.boolean() })),
  position: PositionSchema.nullable(),
});

export const portfolioRoutes: ApiRoutes = (app, context) => {
  app.post(
    '/portfolios',
    {
      config: { idempotent: true },
      schema: {
        tags: ['portfolios'],
        summary: 'Create a portfolio, optionally linking connections into it',
        body: CreatePortfolioBody,
        response: { 201: CreatedPortfolio, ...commonErrors, 409: commonErrors[400] },
      },
    },
    async (request, reply) => {
      const principal = requireRole(request, 'owner');
      const body = request.body;
      // Every link is checked before anything is written: a refused request leaves no portfolio behind.
      for (const link of body.connections) {
        const connection = await loadConnection(context.ledger.store, link.connectionId);
        if (connection.status === 'absent' || connection.ownerId !== principal.userId) throw notFound(`connection ${link.connectionId}`);
      }
      const portfolioId = ulid();
      const metadata = commandMetadata(request);
      let result = await createPortfolio(context.ledger.store, { portfolioId, ownerId: principal.userId, name: body.name, baseCurrency: body.baseCurrency }, metadata);
      const connections = [];
      for (const link of body.connections) {
        const linked = await linkConnection(context.ledger.store, { portfolioId, ...link }, metadata);
        if (linked.lastCursor) result = linked;
        connections.push({ connectionId: link.connectionId, weight: link.weight ?? '1', includeInTotals: link.includeInTotals ?? true });
      }
      const position = withPosition(reply, result.lastCursor);
      return reply.code(201).send({ portfolioId, name: body.name, baseCurrency: body.baseCurrency, connections, position });
    },
  );
};
