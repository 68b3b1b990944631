import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';
import { DecimalStringSchema } from '../money/decimal.ts';
import { PlatformSchema } from '../platforms/records.ts';

const Id = z.string().min(1).max(200);
const Instant = z.iso.datetime({ message: 'must be an ISO 8601 UTC instant' });

/** A security as an instruction names it: at least one identifier. */
export const SecurityRefSchema = z
  .object({ ticker: z.string().min(1).max(20).optional(), cusip: z.string().length(9).optional(), isin: z.string().length(12).optional() })
  .strict()
  .refine((ref) => ref.ticker !== undefined || ref.cusip !== undefined || ref.isin !== undefined, 'must name a ticker, CUSIP or ISIN');

/** What the ledger may push back to a platform (write-back), as the log keeps it: amounts as decimal strings. */
export const PushInstructionSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('trade'),
      platformAccountId: Id,
      side: z.enum(['BUY', 'SELL']),
      security: SecurityRefSchema,
      quantity: DecimalStringSchema,
      orderType: z.enum(['MARKET', 'LIMIT']),
      limitPrice: DecimalStringSchema.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('rebalance'),
      platformAccountId: Id,
      targets: z.array(z.object({ security: SecurityRefSchema, weight: DecimalStringSchema }).strict()).min(1).max(1000),
    })
    .strict(),
  z
    .object({
      kind: z.literal('manual_override'),
      platformAccountId: Id,
      platformRecordId: Id,
      field: z.enum(['quantity', 'price', 'costBasis']),
      value: DecimalStringSchema,
      reason: z.string().trim().min(1).max(500),
    })
    .strict(),
]);
export type PushInstructionData = z.infer<typeof PushInstructionSchema>;

export const PushRequested = defineEvent({
  type: 'PushRequested',
  version: 1,
  schema: z.object({ pushId: Id, connectionId: Id, platform: PlatformSchema, instruction: PushInstructionSchema, requestedBy: Id }),
});

export const PushAcknowledged = defineEvent({
  type: 'PushAcknowledged',
  version: 1,
  schema: z.object({ pushId: Id, platformReference: z.string().min(1), acceptedAt: Instant }),
});

export const PushRejected = defineEvent({
  type: 'PushRejected',
  version: 1,
  schema: z.object({
    pushId: Id,
    code: z.string().min(1).max(200),
    message: z.string(),
    /** True when the platform could not be reached rather than refusing: the same push may be sent again. */
    retryable: z.boolean(),
  }),
});

export const pushEventDefinitions = [PushRequested, PushAcknowledged, PushRejected];
