import { z } from 'zod';
import { CurrencySchema } from '../money/currency.ts';
import { DecimalSchema } from '../money/decimal.ts';
import { isValidCusip, isValidIsin } from '../securities/identifiers.ts';

/**
 * The canonical records every platform adapter maps into. Amounts, quantities and prices are
 * Decimals (decimal strings on the wire), currencies ISO 4217, identifiers check-digit valid.
 * Each record keeps the platform's own id so a re-pull maps to the same identity.
 */

export const PlatformSchema = z.enum(['black_diamond', 'orion', 'addepar']);
export type Platform = z.infer<typeof PlatformSchema>;

export const DataTypeSchema = z.enum(['accounts', 'holdings', 'transactions', 'performance', 'tax_lots', 'analytics']);
export type DataType = z.infer<typeof DataTypeSchema>;

const IsoDate = z.iso.date('must be a date written YYYY-MM-DD');
/** An exchange ticker symbol as the canonical records write it. */
export const TICKER = /^[A-Z0-9][A-Z0-9.\-/ ]{0,19}$/;
const PlatformId = z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters');

export const AssetClassSchema = z.enum(['equity', 'fixed_income', 'cash', 'alternative', 'real_estate', 'commodity', 'multi_asset', 'other']);
export type AssetClass = z.infer<typeof AssetClassSchema>;

export const SecurityTypeSchema = z.enum(['stock', 'etf', 'mutual_fund', 'bond', 'option', 'cd', 'annuity', 'cash', 'other']);
export type SecurityType = z.infer<typeof SecurityTypeSchema>;

export const SecuritySchema = z
  .object({
    ticker: z.string().regex(TICKER, 'must be an upper-case ticker symbol').optional(),
    cusip: z.string().refine(isValidCusip, 'is not a valid CUSIP (9 characters with a correct check digit)').optional(),
    isin: z.string().refine(isValidIsin, 'is not a valid ISIN (12 characters with a correct check digit)').optional(),
    name: z.string().min(1, 'must not be empty'),
    assetClass: AssetClassSchema,
    securityType: SecurityTypeSchema,
  })
  .refine((s) => s.ticker !== undefined || s.cusip !== undefined || s.isin !== undefined, {
    message: 'needs at least one of ticker, cusip or isin',
  });
export type Security = z.infer<typeof SecuritySchema>;

export const AccountRecordSchema = z.object({
  platformAccountId: PlatformId,
  name: z.string().min(1, 'must not be empty'),
  number: z.string().optional(),
  accountType: z.string().optional(),
  custodian: z.string().optional(),
  currency: CurrencySchema,
  status: z.enum(['open', 'closed']),
  openedOn: IsoDate.optional(),
  marketValue: DecimalSchema.optional(),
});
export type AccountRecord = z.infer<typeof AccountRecordSchema>;

export const HoldingRecordSchema = z.object({
  platformRecordId: PlatformId,
  platformAccountId: PlatformId,
  security: SecuritySchema,
  quantity: DecimalSchema,
  price: DecimalSchema,
  marketValue: DecimalSchema,
  costBasis: DecimalSchema.optional(),
  currency: CurrencySchema,
  asOf: IsoDate,
});
export type HoldingRecord = z.infer<typeof HoldingRecordSchema>;

export const TransactionTypeSchema = z.enum(['BUY', 'SELL', 'DIVIDEND', 'INTEREST', 'FEE', 'TRANSFER']);
export const TransactionStatusSchema = z.enum(['PENDING', 'COMPLETED', 'FAILED', 'CANCELLED']);

export const TransactionRecordSchema = z.object({
  platformRecordId: PlatformId,
  platformAccountId: PlatformId,
  type: TransactionTypeSchema,
  status: TransactionStatusSchema,
  tradeDate: IsoDate,
  settleDate: IsoDate.optional(),
  security: SecuritySchema.optional(),
  quantity: DecimalSchema.optional(),
  price: DecimalSchema.optional(),
  /** Signed from the account's point of view: cash in is positive, cash out negative. */
  amount: DecimalSchema,
  currency: CurrencySchema,
  description: z.string().optional(),
});
export type TransactionRecord = z.infer<typeof TransactionRecordSchema>;

export const PerformancePeriodSchema = z.enum(['DAILY', 'WEEKLY', 'MONTHLY', 'YTD', '1Y', '3Y', '5Y', 'INCEPTION']);
export type PerformancePeriod = z.infer<typeof PerformancePeriodSchema>;

export const PerformanceRecordSchema = z.object({
  platformAccountId: PlatformId,
  period: PerformancePeriodSchema,
  startDate: IsoDate,
  endDate: IsoDate,
  /** A fraction: 0.0523 is 5.23%. */
  returnRate: DecimalSchema,
  beginningValue: DecimalSchema,
  endingValue: DecimalSchema,
  netFlows: DecimalSchema,
  currency: CurrencySchema,
});
export type PerformanceRecord = z.infer<typeof PerformanceRecordSchema>;

export const TaxLotRecordSchema = z.object({
  platformRecordId: PlatformId,
  platformAccountId: PlatformId,
  holdingRecordId: PlatformId,
  security: SecuritySchema,
  acquiredOn: IsoDate,
  quantity: DecimalSchema,
  costBasis: DecimalSchema,
  method: z.enum(['FIFO', 'LIFO', 'AVERAGE_COST']),
  term: z.enum(['SHORT', 'LONG']),
  currency: CurrencySchema,
});
export type TaxLotRecord = z.infer<typeof TaxLotRecordSchema>;

export const AnalyticsRecordSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('risk_metrics'),
    platformAccountId: PlatformId,
    asOf: IsoDate,
    volatility: DecimalSchema,
    sharpeRatio: DecimalSchema,
    beta: DecimalSchema,
    maxDrawdown: DecimalSchema,
  }),
  z.object({
    kind: z.literal('attribution'),
    platformAccountId: PlatformId,
    startDate: IsoDate,
    endDate: IsoDate,
    segment: z.string().min(1),
    allocationEffect: DecimalSchema,
    selectionEffect: DecimalSchema,
    totalEffect: DecimalSchema,
  }),
  z.object({
    kind: z.literal('benchmark_comparison'),
    platformAccountId: PlatformId,
    benchmarkId: z.string().min(1),
    period: PerformancePeriodSchema,
    portfolioReturn: DecimalSchema,
    benchmarkReturn: DecimalSchema,
    excessReturn: DecimalSchema,
  }),
]);
export type AnalyticsRecord = z.infer<typeof AnalyticsRecordSchema>;

export { IsoDate as IsoDateSchema };
