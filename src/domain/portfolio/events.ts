import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';

const CurrencyCode = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD');

export const PortfolioCreated = defineEvent({
  type: 'PortfolioCreated',
  version: 1,
  schema: z.object({
    portfolioId: z.string().min(1),
    ownerId: z.string().min(1),
    name: z.string().trim().min(1).max(200),
    baseCurrency: CurrencyCode,
  }),
});

export const PortfolioRenamed = defineEvent({
  type: 'PortfolioRenamed',
  version: 1,
  schema: z.object({ portfolioId: z.string().min(1), name: z.string().trim().min(1).max(200) }),
});
