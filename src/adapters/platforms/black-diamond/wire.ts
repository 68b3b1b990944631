import { z } from 'zod';
import type { AssetClass, PerformancePeriod, SecurityType, TransactionRecord } from '../../../domain/platforms/records.ts';

/**
 * Black Diamond's payloads as they travel (the sandbox renders these; the adapter parses them).
 * Query endpoints answer `{ data, continuationToken }`; `continuationToken` is this project's
 * sandbox choice for paging (public material documents only `limit`), passed back in the next
 * request body and null on the last page. Amounts travel as JSON numbers or decimal strings, dates
 * as ISO date-times at midnight ("2024-03-31T00:00:00").
 */

/** The error body of every failed call. */
export const ErrorBodySchema = z.object({
  message: z.string(),
  code: z.union([z.string(), z.number()]),
  correlationID: z.string(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** The message of a 401 that means "refresh and try again" (Black Diamond says the token expired). */
export const TOKEN_EXPIRED_MESSAGE = 'The access token has expired.';

const Amount = z.union([z.number(), z.string()]);

// ---- accounts (bulk batch file "accounts_NNNN.json", 250 per file) ----
export const BatchAccountSchema = z.object({
  AccountID: z.string(),
  Name: z.string(),
  LongNumber: z.string().nullable(),
  AccountType: z.string().nullable(),
  Custodian: z.string().nullable(),
  CurrencyCode: z.string(),
  StartDate: z.string().nullable(),
  IsClosed: z.boolean(),
  MarketValue: Amount.nullable(),
});
export type BatchAccount = z.infer<typeof BatchAccountSchema>;

// ---- holdings: POST /account/Query/HoldingDetailSearch ----
export interface HoldingDetailSearchRequest {
  accountID: string;
  asOf: string;
  onlyCurrentHoldings: boolean;
  limit: number;
  include: { returnInfo: boolean; assets: boolean; costBasis?: boolean };
  continuationToken?: string | null;
}

export const HoldingDetailSearchRequestSchema = z.object({
  accountID: z.string().min(1),
  asOf: z.iso.date().optional(),
  onlyCurrentHoldings: z.boolean().default(true),
  limit: z.number().int().min(1).max(10_000).default(1000),
  include: z.object({ returnInfo: z.boolean().default(true), assets: z.boolean().default(true), costBasis: z.boolean().default(false) }).default({
    returnInfo: true,
    assets: true,
    costBasis: false,
  }),
  continuationToken: z.string().nullish(),
});

export const AssetSchema = z.object({
  assetId: z.string(),
  name: z.string(),
  cusip: z.string().nullable(),
  ticker: z.string().nullable(),
  /** Black Diamond's free identifier; the sandbox puts the ISIN here. */
  identifier: z.string().nullable(),
  assetClass: z.string(),
  securityType: z.string(),
  currencyCode: z.string(),
});
export type Asset = z.infer<typeof AssetSchema>;

export const HoldingDetailSchema = z.object({
  holdingId: z.string(),
  accountID: z.string(),
  asset: AssetSchema,
  returnInfo: z.object({ units: Amount, emv: Amount, returnDate: z.string() }),
  costBasis: z.object({ totalCost: Amount }).nullish(),
});
export type HoldingDetail = z.infer<typeof HoldingDetailSchema>;

/** Rows stay unparsed until mapping so one bad row costs one SyncError, not the page. */
export const PageSchema = z.object({
  data: z.array(z.unknown()),
  continuationToken: z.string().nullable(),
});
export type Page = z.infer<typeof PageSchema>;

// ---- transactions: POST /account/Query/TransactionSearch (and the batch "transactions" files) ----
export interface TransactionSearchRequest {
  accountID: string;
  startDate?: string;
  endDate?: string;
  /** Incremental: only transactions created or changed after this change token. */
  modifiedSinceToken?: string;
  limit: number;
  continuationToken?: string | null;
}

export const TransactionSearchRequestSchema = z.object({
  accountID: z.string().min(1),
  startDate: z.iso.date().optional(),
  endDate: z.iso.date().optional(),
  modifiedSinceToken: z.string().regex(/^[0-9]+$/, 'must be a change token from an earlier answer').optional(),
  limit: z.number().int().min(1).max(10_000).default(1000),
  continuationToken: z.string().nullish(),
});

export const TransactionPageSchema = PageSchema.extend({
  /** The platform's change token when the search began: pass it as `modifiedSinceToken` next time. */
  changeToken: z.string(),
});

export const ExternalFlowAffectSchema = z.enum(['Contribution', 'Withdrawal', 'NotExternalFlow']);

export const BdTransactionSchema = z.object({
  TransactionID: z.string(),
  AccountID: z.string(),
  TransactionType: z.string(),
  Status: z.string(),
  TradeDate: z.string(),
  SettleDate: z.string().nullable(),
  AssetID: z.string().nullable(),
  Ticker: z.string().nullable(),
  Cusip: z.string().nullable(),
  Identifier: z.string().nullable(),
  AssetName: z.string().nullable(),
  AssetClass: z.string().nullable(),
  SecurityType: z.string().nullable(),
  Units: Amount.nullable(),
  Price: Amount.nullable(),
  /** Always positive; the direction comes from TransactionType and, for transfers, ExternalFlowAffect. */
  MarketValue: Amount,
  CurrencyCode: z.string(),
  ExternalFlowAffect: ExternalFlowAffectSchema,
  Description: z.string().nullable(),
});
export type BdTransaction = z.infer<typeof BdTransactionSchema>;

// ---- performance: POST /account/Query/PerformanceSearch ----
export const PERIOD_NAMES = ['Daily', 'WeekToDate', 'MonthToDate', 'YearToDate', 'OneYear', 'ThreeYear', 'FiveYear', 'SinceInception'] as const;
export const PeriodNameSchema = z.enum(PERIOD_NAMES);
export type PeriodName = z.infer<typeof PeriodNameSchema>;

export const PerformanceSearchRequestSchema = z.object({
  accountID: z.string().min(1),
  periods: z.array(PeriodNameSchema).optional(),
});

export const BdPerformanceSchema = z.object({
  accountID: z.string(),
  period: z.string(),
  startDate: z.string(),
  endDate: z.string(),
  /** Time-weighted return in percent: 5.23 means 5.23%. */
  twrPercent: Amount,
  bmv: Amount,
  emv: Amount,
  netFlows: Amount,
  currencyCode: z.string(),
});
export type BdPerformance = z.infer<typeof BdPerformanceSchema>;

// ---- bulk: POST /batchV5, GET /batch/{id} ----
export const BATCH_FILES = ['accounts'] as const;
export const BatchRequestSchema = z.object({
  /** "MM-DD-YYYY", as Black Diamond writes it. */
  returnDate: z.string().regex(/^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])-[0-9]{4}$/, 'must be a date written MM-DD-YYYY'),
  batchFiles: z.array(z.enum(BATCH_FILES)).min(1),
  includeTransactions: z.boolean().default(false),
  includeHoldings: z.boolean().default(false),
});
export const BatchCreatedSchema = z.object({ batchId: z.string() });
export const BatchStatusSchema = z.object({ batchId: z.string(), status: z.enum(['Queued', 'Processing', 'Completed', 'Failed']) });

// ---- write-back: POST /tradeInstructions, POST /rebalanceRequests, POST /holdingOverrides ----
const Security = z
  .object({ ticker: z.string().min(1).optional(), cusip: z.string().min(1).optional(), isin: z.string().min(1).optional() })
  .refine((s) => s.ticker !== undefined || s.cusip !== undefined || s.isin !== undefined, 'needs a ticker, cusip or isin');
const PositiveDecimalText = z.string().regex(/^(0|[1-9][0-9]*)(\.[0-9]+)?$/, 'must be a decimal string');

export const TradeInstructionSchema = z.object({
  externalReference: z.string().min(1).max(100),
  accountID: z.string().min(1),
  action: z.enum(['Buy', 'Sell']),
  security: Security,
  units: PositiveDecimalText,
  orderType: z.enum(['Market', 'Limit']),
  limitPrice: PositiveDecimalText.optional(),
});
export const RebalanceRequestSchema = z.object({
  externalReference: z.string().min(1).max(100),
  accountID: z.string().min(1),
  targets: z.array(z.object({ security: Security, weightPercent: PositiveDecimalText })).min(1),
});
export const HoldingOverrideSchema = z.object({
  externalReference: z.string().min(1).max(100),
  accountID: z.string().min(1),
  holdingId: z.string().min(1),
  field: z.enum(['Units', 'Price', 'CostBasis']),
  value: PositiveDecimalText,
  reason: z.string().min(1).max(500),
});
export const PushAcceptedSchema = z.object({ id: z.string(), status: z.literal('Accepted'), createdDate: z.string() });

// ---- webhooks: new transactions ----
/**
 * Black Diamond documents no data webhooks; the product specification asks for transactions by
 * webhook, so the sandbox sends the shared signed delivery (X-Sandbox-Signature) with this body.
 */
export const WebhookBodySchema = z.object({
  id: z.string().min(1),
  type: z.literal('transactions.created'),
  dataType: z.literal('transactions'),
  accountId: z.string().min(1),
  recordIds: z.array(z.string().min(1)).min(1),
});

// ---- Black Diamond's vocabulary, shared by the sandbox (rendering) and the mapping (reading) ----
export const ASSET_CLASS_NAMES = {
  equity: 'Equity',
  fixed_income: 'Fixed Income',
  cash: 'Cash & Equivalents',
  alternative: 'Alternative Investments',
  real_estate: 'Real Estate',
  commodity: 'Commodities',
  multi_asset: 'Multi-Asset',
  other: 'Other',
} as const satisfies Record<AssetClass, string>;

export const SECURITY_TYPE_NAMES = {
  stock: 'Common Stock',
  etf: 'ETF',
  mutual_fund: 'Mutual Fund',
  bond: 'Bond',
  option: 'Option',
  cd: 'Certificate of Deposit',
  annuity: 'Annuity',
  cash: 'Cash',
  other: 'Other',
} as const satisfies Record<SecurityType, string>;

export const TRANSACTION_TYPE_NAMES = {
  BUY: 'Buy',
  SELL: 'Sell',
  DIVIDEND: 'Dividend',
  INTEREST: 'Interest',
  FEE: 'Fee',
  TRANSFER: 'Transfer',
} as const satisfies Record<TransactionRecord['type'], string>;

export const TRANSACTION_STATUS_NAMES = {
  PENDING: 'Pending',
  COMPLETED: 'Settled',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
} as const satisfies Record<TransactionRecord['status'], string>;

export const PERIOD_NAME_OF = {
  DAILY: 'Daily',
  WEEKLY: 'WeekToDate',
  MONTHLY: 'MonthToDate',
  YTD: 'YearToDate',
  '1Y': 'OneYear',
  '3Y': 'ThreeYear',
  '5Y': 'FiveYear',
  INCEPTION: 'SinceInception',
} as const satisfies Record<PerformancePeriod, PeriodName>;

/** Reverses one of the tables above. */
export function inverse<K extends string, V extends string>(table: Readonly<Record<K, V>>): ReadonlyMap<string, K> {
  return new Map(Object.entries(table).map(([key, value]) => [value as string, key as K]));
}
