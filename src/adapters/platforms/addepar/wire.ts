import { z } from 'zod';
import type { AssetClass, PerformancePeriod, SecurityType } from '../../../domain/platforms/records.ts';

/**
 * Addepar's payloads as its API writes them: JSON:API documents (`data`, `included`, `links`,
 * `meta`, `errors`), snake_case attributes, amounts as JSON numbers. The schemas check shapes
 * only; the mapping turns them into canonical records. Where public material is silent the
 * sandbox's choices are marked here once.
 */

/** An amount as Addepar writes it: a JSON number (a string is accepted too). */
export const AddeparNumberSchema = z.union([z.number().finite(), z.string().min(1)]);
export type AddeparNumber = z.infer<typeof AddeparNumberSchema>;

const Text = z.string().nullish();
const Id = z.string().min(1);

export const ResourceIdentifierSchema = z.object({ type: z.string(), id: Id });
const ToOne = z.object({ data: ResourceIdentifierSchema.nullable() });

export const ErrorDocumentSchema = z.object({
  errors: z.array(z.object({ status: z.string(), title: z.string(), detail: z.string().optional(), code: z.string().optional(), source: z.object({ pointer: z.string() }).partial().optional() })).min(1),
});
export type ErrorDocument = z.infer<typeof ErrorDocumentSchema>;

/** A page of a collection: the records are checked one by one (a bad one must not sink the page). */
export const PageSchema = z.object({
  data: z.array(z.unknown()),
  included: z.array(z.unknown()).optional(),
  links: z.object({ next: z.string().nullable() }).passthrough(),
  meta: z.record(z.string(), z.unknown()).optional(),
});

/** Entity model types. Financial accounts are what the ledger syncs; the rest are graph nodes or securities. */
export const ACCOUNT_MODEL_TYPE = 'FINANCIAL_ACCOUNT';
export const PERSON_MODEL_TYPE = 'PERSON_NODE';

/**
 * Security model types (Addepar calls held instruments "entities" too; the upper-case names are
 * the sandbox's reading of Addepar's model types).
 */
export const SECURITY_MODEL_TYPES: Readonly<Record<SecurityType, string>> = {
  stock: 'STOCK',
  etf: 'ETF',
  mutual_fund: 'MUTUAL_FUND',
  bond: 'BOND',
  option: 'OPTION',
  cd: 'CERTIFICATE_OF_DEPOSIT',
  annuity: 'ANNUITY',
  cash: 'CASH',
  other: 'OTHER_SECURITY',
};

/** Addepar's `asset_class` attribute values. */
export const ASSET_CLASS_LABELS: Readonly<Record<AssetClass, string>> = {
  equity: 'Equity',
  fixed_income: 'Fixed Income',
  cash: 'Cash & Cash Equivalent',
  alternative: 'Alternatives',
  real_estate: 'Real Estate',
  commodity: 'Commodities',
  multi_asset: 'Multi-Asset',
  other: 'Other',
};

/**
 * A financial account entity. `original_name` … `modified_at` are Addepar's; `currency_factor`
 * is its currency attribute; `account_number`, `custodian_name`, `account_type`,
 * `inception_date` and `account_status` are the sandbox's names for the standard account
 * attributes a firm configures.
 */
export const EntitySchema = z.object({
  id: Id,
  type: z.literal('entities'),
  attributes: z.object({
    original_name: z.string(),
    display_name: Text,
    model_type: z.string(),
    ownership_type: z.enum(['PERCENT_BASED', 'SHARE_BASED', 'VALUE_BASED']).nullish(),
    currency_factor: Text,
    account_number: Text,
    custodian_name: Text,
    account_type: Text,
    inception_date: Text,
    account_status: z.enum(['Open', 'Closed']).nullish(),
    created_at: Text,
    modified_at: Text,
  }),
});
export type Entity = z.infer<typeof EntitySchema>;

/** A held instrument as an owned entity, sent in `included` with `include=owned`. */
export const SecurityEntitySchema = z.object({
  id: Id,
  type: z.literal('entities'),
  attributes: z.object({
    original_name: z.string(),
    display_name: Text,
    model_type: z.string(),
    ticker_symbol: Text,
    cusip: Text,
    isin: Text,
    asset_class: Text,
    currency_factor: Text,
  }),
});
export type SecurityEntity = z.infer<typeof SecurityEntitySchema>;

/** A position: the link between an owner entity (the account) and an owned one (the security). */
export const PositionSchema = z.object({
  id: Id,
  type: z.literal('positions'),
  attributes: z.object({
    name: z.string(),
    units: AddeparNumberSchema,
    price: AddeparNumberSchema,
    value: AddeparNumberSchema,
    cost_basis: AddeparNumberSchema.nullish(),
    currency: z.string(),
    as_of_date: z.string(),
  }),
  relationships: z.object({ owner: ToOne, owned: ToOne }),
});
export type Position = z.infer<typeof PositionSchema>;

/**
 * Transaction types and statuses as the sandbox writes them (Addepar's own type list is long and
 * firm-configurable; these are the ones the ledger maps).
 */
export const TRANSACTION_TYPES = { BUY: 'buy', SELL: 'sell', DIVIDEND: 'cash_dividend', INTEREST: 'interest_income', FEE: 'fee', TRANSFER: 'transfer' } as const;
export const TRANSACTION_STATUSES = { PENDING: 'pending', COMPLETED: 'posted', FAILED: 'failed', CANCELLED: 'cancelled' } as const;

/**
 * One transaction's attributes, the same in `POST /v1/transactions/query` answers and in job
 * exports (there as TSV columns, every value text). `type`, `currency`, `trade_date`, `units` and
 * `amount` are Addepar's; the security columns, `status` and `modified_at` are the sandbox's.
 */
export const TRANSACTION_COLUMNS = [
  'id',
  'owner_id',
  'type',
  'status',
  'trade_date',
  'settle_date',
  'security_name',
  'ticker_symbol',
  'cusip',
  'isin',
  'asset_class',
  'security_model_type',
  'units',
  'price',
  'amount',
  'currency',
  'description',
  'modified_at',
] as const;
export type TransactionColumn = (typeof TRANSACTION_COLUMNS)[number];

export const TransactionRowSchema = z.object({
  id: Id,
  owner_id: Id,
  type: z.string(),
  status: z.string(),
  trade_date: z.string(),
  settle_date: Text,
  security_name: Text,
  ticker_symbol: Text,
  cusip: Text,
  isin: Text,
  asset_class: Text,
  security_model_type: Text,
  units: AddeparNumberSchema.nullish(),
  price: AddeparNumberSchema.nullish(),
  amount: AddeparNumberSchema,
  currency: z.string(),
  description: Text,
  modified_at: z.string(),
});
export type TransactionRow = z.infer<typeof TransactionRowSchema>;

/** A transaction resource of a `POST /v1/transactions/query` answer (not paginated). */
export const TransactionResourceSchema = z.object({
  id: Id,
  type: z.literal('transactions'),
  attributes: z.record(z.string(), z.unknown()),
  relationships: z.object({ owner: ToOne }),
});

export const TransactionQueryDocumentSchema = z.object({
  data: z.array(z.unknown()),
  meta: z.object({ data_as_of: z.string() }).passthrough(),
});

/** Addepar's job statuses. */
export const JOB_STATUSES = ['Queued', 'In Progress - Waiting For Capacity', 'In Progress', 'Picked Up By Job Runner', 'Completed', 'Canceled', 'Timed Out', 'Failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * `transactions_query_results` is the sandbox's job type for a transaction export (Addepar's
 * documentation says jobs do not yet export transactions); results are TSV, one of Addepar's
 * output types, so an export is read as a stream.
 */
export const TRANSACTION_EXPORT_JOB = 'transactions_query_results';

export const JobDocumentSchema = z.object({
  data: z.object({
    id: Id,
    type: z.literal('jobs'),
    attributes: z.object({
      job_type: z.string(),
      status: z.enum(JOB_STATUSES),
      percent_complete: z.number().min(0).max(1),
      started_at: Text,
      completed_at: Text,
      errors: z.array(z.object({ status: z.string(), title: z.string(), detail: z.string().optional() })).nullish(),
    }),
  }),
  meta: z.object({ data_as_of: z.string() }).passthrough().optional(),
});
export type JobDocument = z.infer<typeof JobDocumentSchema>;

/** Performance periods as the sandbox's `time_period` grouping names them. */
export const TIME_PERIODS: Readonly<Record<PerformancePeriod, string>> = {
  DAILY: 'day',
  WEEKLY: 'week',
  MONTHLY: 'month',
  YTD: 'year_to_date',
  '1Y': 'trailing_1_year',
  '3Y': 'trailing_3_years',
  '5Y': 'trailing_5_years',
  INCEPTION: 'since_inception',
};

/** Portfolio-query column keys. `time_weighted_return` and `value` are Addepar's; the rest are the sandbox's names. */
export const COLUMNS = {
  twr: 'time_weighted_return',
  beginningValue: 'beginning_value',
  endingValue: 'value',
  netFlows: 'net_cash_flow',
  startDate: 'period_start_date',
  endDate: 'period_end_date',
  currency: 'currency',
  volatility: 'annualized_volatility',
  sharpe: 'sharpe_ratio',
  beta: 'beta',
  maxDrawdown: 'max_drawdown',
  allocation: 'allocation_effect',
  selection: 'selection_effect',
  totalEffect: 'total_effect',
  benchmarkReturn: 'benchmark_return',
  excessReturn: 'excess_return',
} as const;

const Columns = z.record(z.string(), z.unknown());
export const PortfolioRowSchema = z.object({ name: z.string(), grouping: z.string().optional(), columns: Columns });
export type PortfolioRow = z.infer<typeof PortfolioRowSchema>;

/** `POST /v1/portfolio/query` answers a tree: the total and one child per grouping value. */
export const PortfolioQueryDocumentSchema = z.object({
  data: z.object({
    type: z.literal('portfolio_query'),
    attributes: z.object({ total: PortfolioRowSchema, children: z.array(z.unknown()) }),
  }),
  meta: z.object({ start_date: z.string(), end_date: z.string() }).passthrough(),
});
