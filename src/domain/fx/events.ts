import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';
import { CurrencySchema } from '../money/currency.ts';
import { Dec, DecimalStringSchema } from '../money/decimal.ts';
import { IsoDateSchema } from '../platforms/records.ts';

/** One dated rate: one unit of `currency` is worth `rate` units of `quote`. */
export const FxRateEntrySchema = z
  .object({
    currency: CurrencySchema,
    quote: CurrencySchema,
    asOf: IsoDateSchema,
    rate: DecimalStringSchema.refine((text) => new Dec(text).gt(0), 'must be more than 0'),
  })
  .refine((r) => r.currency !== r.quote, { message: 'currency and quote must differ', path: ['quote'] });
export type FxRateEntry = z.infer<typeof FxRateEntrySchema>;

/** At most this many rates per event: a large import is several events. */
export const MAX_RATES_PER_EVENT = 1000;

/** Rates the ledger keeps for normalising values to a portfolio's base currency; a later recording of a pair and date replaces an earlier one. */
export const FxRatesRecorded = defineEvent({
  type: 'FxRatesRecorded',
  version: 1,
  schema: z.object({
    rates: z.array(FxRateEntrySchema).min(1).max(MAX_RATES_PER_EVENT),
    /** Where the rates came from: a file name, a feed, a person. */
    source: z.string().trim().min(1).max(200),
  }),
});

export const fxEventDefinitions = [FxRatesRecorded];

/** Every rate lives in one stream: rates are few and shared by every portfolio. */
export const FX_RATES_STREAM = 'fx-rates';
