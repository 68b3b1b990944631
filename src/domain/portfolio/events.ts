import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';
import { CurrencySchema } from '../money/currency.ts';
import { DecimalStringSchema } from '../money/decimal.ts';

const Id = z.string().min(1).max(200);

export const PortfolioCreated = defineEvent({
  type: 'PortfolioCreated',
  version: 1,
  schema: z.object({
    portfolioId: Id,
    ownerId: Id,
    name: z.string().trim().min(1).max(200),
    baseCurrency: CurrencySchema,
  }),
});

export const PortfolioRenamed = defineEvent({
  type: 'PortfolioRenamed',
  version: 1,
  schema: z.object({ portfolioId: Id, name: z.string().trim().min(1).max(200) }),
});

export const PortfolioConnectionLinked = defineEvent({
  type: 'PortfolioConnectionLinked',
  version: 1,
  schema: z.object({
    portfolioId: Id,
    connectionId: Id,
    /** The share of the connection's holdings that belongs to this portfolio, from 0 to 1. */
    weight: DecimalStringSchema,
    includeInTotals: z.boolean(),
  }),
});

export const PortfolioConnectionUnlinked = defineEvent({
  type: 'PortfolioConnectionUnlinked',
  version: 1,
  schema: z.object({ portfolioId: Id, connectionId: Id }),
});

/** Relative tolerances (0.01 = 1%) and the window within which two sources' observations are compared. */
export const ConflictTolerancesSchema = z.object({ quantity: DecimalStringSchema, value: DecimalStringSchema, windowMinutes: z.number().int().positive() });

export const PortfolioTolerancesChanged = defineEvent({
  type: 'PortfolioTolerancesChanged',
  version: 1,
  schema: z.object({ portfolioId: Id, tolerances: ConflictTolerancesSchema }),
});

export const portfolioEventDefinitions = [PortfolioCreated, PortfolioRenamed, PortfolioConnectionLinked, PortfolioConnectionUnlinked, PortfolioTolerancesChanged];
