import { Dec } from '../../../domain/money/decimal.ts';
import {
  AccountRecordSchema,
  AnalyticsRecordSchema,
  AssetClassSchema,
  HoldingRecordSchema,
  PerformanceRecordSchema,
  SecuritySchema,
  TransactionRecordSchema,
  type AccountRecord,
  type AnalyticsRecord,
  type AssetClass,
  type HoldingRecord,
  type PerformancePeriod,
  type PerformanceRecord,
  type Security,
  type SecurityType,
  type TransactionRecord,
} from '../../../domain/platforms/records.ts';
import type { SyncError, SyncErrorCode } from '../../../domain/platforms/sync-error.ts';
import type { Fetched } from '../../../ports/platform-adapter.ts';
import {
  ACCOUNT_MODEL_TYPE,
  ASSET_CLASS_LABELS,
  COLUMNS,
  EntitySchema,
  PositionSchema,
  SECURITY_MODEL_TYPES,
  SecurityEntitySchema,
  TIME_PERIODS,
  TRANSACTION_STATUSES,
  TransactionRowSchema,
  type AddeparNumber,
  type PortfolioRow,
  type TransactionRow,
} from './wire.ts';

/**
 * Addepar payloads → canonical records. Pure: every function answers a record or one SyncError
 * naming the record, never throws for bad data.
 */

type Issue = { readonly path: readonly PropertyKey[]; readonly message: string };
type Mapped<T> = Fetched<T> & { readonly kind: 'record' | 'error' };

const ASSET_CLASS_BY_LABEL = new Map(Object.entries(ASSET_CLASS_LABELS).map(([key, label]) => [label, key as AssetClass]));
const SECURITY_TYPE_BY_MODEL = new Map(Object.entries(SECURITY_MODEL_TYPES).map(([key, model]) => [model, key as SecurityType]));
const TRANSACTION_TYPE_BY_NAME = new Map<string, TransactionRecord['type']>([
  ['buy', 'BUY'],
  ['sell', 'SELL'],
  ['cash_dividend', 'DIVIDEND'],
  ['interest_income', 'INTEREST'],
  ['fee', 'FEE'],
  ['transfer', 'TRANSFER'],
]);
const STATUS_BY_NAME = new Map(Object.entries(TRANSACTION_STATUSES).map(([status, name]) => [name as string, status as TransactionRecord['status']]));
export const PERIOD_BY_TIME_PERIOD = new Map(Object.entries(TIME_PERIODS).map(([period, name]) => [name, period as PerformancePeriod]));

export function syncError(recordId: string, code: SyncErrorCode, message: string): SyncError {
  return { recordId, code, message, severity: 'error', retryable: false };
}

function failure<T>(recordId: string, what: string, issues: readonly Issue[]): Mapped<T> {
  const first = issues[0];
  const path = first ? first.path.map(String).join('.') : '';
  const code: SyncErrorCode = /(^|\.)(cusip|isin)$/.test(path) ? 'IDENTIFIER_INVALID' : /(^|\.)currency(_factor)?$/.test(path) ? 'CURRENCY_NOT_SUPPORTED' : 'RECORD_INVALID';
  const detail = issues
    .slice(0, 3)
    .map((issue) => `${issue.path.map(String).join('.') || '(record)'} ${issue.message}`)
    .join('; ');
  return { kind: 'error', error: syncError(recordId, code, `Addepar ${what} ${recordId}: ${detail}`) };
}

const record = <T>(value: T): Mapped<T> => ({ kind: 'record', record: value });

/** The id a raw resource carries, for naming it in an error before its shape is known. */
export function resourceId(raw: unknown): string {
  const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id !== '' ? id : typeof id === 'number' ? String(id) : '(no id)';
}

/** A platform number as decimal text: JSON numbers by their shortest round-trip form, never an exponent. */
export function decimalTextOf(value: AddeparNumber): string {
  if (typeof value === 'string') return value;
  const text = String(value);
  return text.includes('e') ? new Dec(text).toFixed() : text;
}

const optionalText = (value: string | null | undefined): string | undefined => (value === null || value === undefined || value === '' ? undefined : value);

/** A financial account entity → AccountRecord; undefined for other entities (people, households). */
export function mapAccount(raw: unknown): Mapped<AccountRecord> | undefined {
  const id = resourceId(raw);
  const parsed = EntitySchema.safeParse(raw);
  if (!parsed.success) return failure(id, 'entity', parsed.error.issues);
  const { attributes } = parsed.data;
  if (attributes.model_type !== ACCOUNT_MODEL_TYPE) return undefined;
  const result = AccountRecordSchema.safeParse({
    platformAccountId: parsed.data.id,
    name: optionalText(attributes.display_name) ?? attributes.original_name,
    number: optionalText(attributes.account_number),
    accountType: optionalText(attributes.account_type),
    custodian: optionalText(attributes.custodian_name),
    currency: attributes.currency_factor ?? undefined,
    status: attributes.account_status === 'Closed' ? 'closed' : 'open',
    openedOn: optionalText(attributes.inception_date),
  });
  return result.success ? record(result.data) : failure(id, 'account', result.error.issues);
}

interface SecurityFields {
  readonly name: string;
  readonly ticker?: string | null;
  readonly cusip?: string | null;
  readonly isin?: string | null;
  readonly assetClass?: string | null;
  readonly modelType?: string | null;
}

/** Addepar's labels → canonical security; the error names what is wrong with it. */
function securityOf(fields: SecurityFields): { ok: true; security: Security } | { ok: false; issues: readonly Issue[] } {
  const assetClass = fields.assetClass ? (ASSET_CLASS_BY_LABEL.get(fields.assetClass) ?? (AssetClassSchema.safeParse(fields.assetClass).success ? fields.assetClass : 'other')) : 'other';
  const securityType = fields.modelType ? (SECURITY_TYPE_BY_MODEL.get(fields.modelType) ?? 'other') : 'other';
  const parsed = SecuritySchema.safeParse({
    name: fields.name,
    ticker: optionalText(fields.ticker),
    cusip: optionalText(fields.cusip),
    isin: optionalText(fields.isin),
    assetClass,
    securityType,
  });
  return parsed.success ? { ok: true, security: parsed.data } : { ok: false, issues: parsed.error.issues.map((issue) => ({ path: ['security', ...issue.path], message: issue.message })) };
}

/**
 * Securities of a page's `included` owned entities, by entity id: a security shared by many
 * positions is checked (check digits and all) once.
 */
export class SecurityBook {
  private readonly raw = new Map<string, unknown>();
  private readonly mapped = new Map<string, ReturnType<typeof securityOf>>();

  /** Replaces the book with a new page's included entities. */
  load(included: readonly unknown[] | undefined): void {
    this.raw.clear();
    this.mapped.clear();
    for (const entity of included ?? []) this.raw.set(resourceId(entity), entity);
  }

  security(entityId: string): ReturnType<typeof securityOf> {
    let result = this.mapped.get(entityId);
    if (result === undefined) {
      const raw = this.raw.get(entityId);
      const parsed = SecurityEntitySchema.safeParse(raw);
      if (raw === undefined) result = { ok: false, issues: [{ path: ['relationships', 'owned'], message: `names entity ${entityId}, which the page does not include` }] };
      else if (!parsed.success) result = { ok: false, issues: parsed.error.issues.map((issue) => ({ path: ['owned', ...issue.path], message: issue.message })) };
      else {
        const a = parsed.data.attributes;
        result = securityOf({ name: optionalText(a.display_name) ?? a.original_name, ticker: a.ticker_symbol, cusip: a.cusip, isin: a.isin, assetClass: a.asset_class, modelType: a.model_type });
      }
      this.mapped.set(entityId, result);
    }
    return result;
  }
}

const HoldingWithoutSecurity = HoldingRecordSchema.omit({ security: true });
const TransactionWithoutSecurity = TransactionRecordSchema.omit({ security: true });

/** A position (with its owned security from the book) → HoldingRecord. */
export function mapPosition(raw: unknown, securities: SecurityBook): Mapped<HoldingRecord> {
  const id = resourceId(raw);
  const parsed = PositionSchema.safeParse(raw);
  if (!parsed.success) return failure(id, 'position', parsed.error.issues);
  const { attributes, relationships } = parsed.data;
  const owner = relationships.owner.data;
  const owned = relationships.owned.data;
  if (owner === null || owned === null) return failure(id, 'position', [{ path: ['relationships', owner === null ? 'owner' : 'owned'], message: 'is empty' }]);
  const security = securities.security(owned.id);
  if (!security.ok) return failure(id, 'position', security.issues);
  const result = HoldingWithoutSecurity.safeParse({
    platformRecordId: parsed.data.id,
    platformAccountId: owner.id,
    quantity: decimalTextOf(attributes.units),
    price: decimalTextOf(attributes.price),
    marketValue: decimalTextOf(attributes.value),
    costBasis: attributes.cost_basis === null || attributes.cost_basis === undefined ? undefined : decimalTextOf(attributes.cost_basis),
    currency: attributes.currency,
    asOf: attributes.as_of_date,
  });
  return result.success ? record({ ...result.data, security: security.security }) : failure(id, 'position', result.error.issues);
}

/**
 * Securities of transaction rows by their columns: an export repeats a few thousand securities
 * over hundreds of thousands of rows. Bounded, so an export with endless distinct securities
 * stays flat in memory.
 */
export class RowSecurityCache {
  private readonly entries = new Map<string, ReturnType<typeof securityOf>>();
  constructor(private readonly capacity = 20_000) {}

  security(row: TransactionRow): ReturnType<typeof securityOf> {
    const key = `${row.security_name}\u0000${row.ticker_symbol}\u0000${row.cusip}\u0000${row.isin}\u0000${row.asset_class}\u0000${row.security_model_type}`;
    let result = this.entries.get(key);
    if (result === undefined) {
      result = securityOf({ name: row.security_name ?? '', ticker: row.ticker_symbol, cusip: row.cusip, isin: row.isin, assetClass: row.asset_class, modelType: row.security_model_type });
      if (this.entries.size >= this.capacity) this.entries.clear();
      this.entries.set(key, result);
    }
    return result;
  }
}

const hasSecurity = (row: TransactionRow): boolean => Boolean(optionalText(row.ticker_symbol) ?? optionalText(row.cusip) ?? optionalText(row.isin) ?? optionalText(row.security_name));

/** A transaction row (query answer attributes or an export line) → TransactionRecord. */
export function mapTransaction(raw: unknown, securities: RowSecurityCache): Mapped<TransactionRecord> {
  const id = resourceId(raw);
  const parsed = TransactionRowSchema.safeParse(raw);
  if (!parsed.success) return failure(id, 'transaction', parsed.error.issues);
  const row = parsed.data;
  const type = TRANSACTION_TYPE_BY_NAME.get(row.type);
  if (type === undefined) return failure(id, 'transaction', [{ path: ['type'], message: `"${row.type}" is not a transaction type the ledger knows` }]);
  const status = STATUS_BY_NAME.get(row.status);
  if (status === undefined) return failure(id, 'transaction', [{ path: ['status'], message: `"${row.status}" is not a transaction status the ledger knows` }]);
  let security: Security | undefined;
  if (hasSecurity(row)) {
    const mapped = securities.security(row);
    if (!mapped.ok) return failure(id, 'transaction', mapped.issues);
    security = mapped.security;
  }
  const result = TransactionWithoutSecurity.safeParse({
    platformRecordId: row.id,
    platformAccountId: row.owner_id,
    type,
    status,
    tradeDate: row.trade_date,
    settleDate: optionalText(row.settle_date),
    quantity: row.units === null || row.units === undefined || row.units === '' ? undefined : decimalTextOf(row.units),
    price: row.price === null || row.price === undefined || row.price === '' ? undefined : decimalTextOf(row.price),
    amount: decimalTextOf(row.amount),
    currency: row.currency,
    description: optionalText(row.description),
  });
  if (!result.success) return failure(id, 'transaction', result.error.issues);
  return record(security === undefined ? result.data : { ...result.data, security });
}

/** A column's value as decimal text (undefined when absent), for the canonical schema to judge. */
function columnText(row: PortfolioRow, key: string): unknown {
  const value = row.columns[key];
  return typeof value === 'number' ? decimalTextOf(value) : value;
}

/** One child of a `time_period` grouping → PerformanceRecord. */
export function mapPerformance(accountId: string, row: PortfolioRow): Mapped<PerformanceRecord> {
  const recordId = `${accountId}:performance:${row.name}`;
  const period = PERIOD_BY_TIME_PERIOD.get(String(row.columns['time_period'] ?? ''));
  const result = PerformanceRecordSchema.safeParse({
    platformAccountId: accountId,
    period,
    startDate: row.columns[COLUMNS.startDate],
    endDate: row.columns[COLUMNS.endDate],
    returnRate: columnText(row, COLUMNS.twr),
    beginningValue: columnText(row, COLUMNS.beginningValue),
    endingValue: columnText(row, COLUMNS.endingValue),
    netFlows: columnText(row, COLUMNS.netFlows),
    currency: row.columns[COLUMNS.currency],
  });
  return result.success ? record(result.data) : failure(recordId, 'performance', result.error.issues);
}

function analytics(recordId: string, candidate: unknown): Mapped<AnalyticsRecord> {
  const result = AnalyticsRecordSchema.safeParse(candidate);
  return result.success ? record(result.data) : failure(recordId, 'analytics', result.error.issues);
}

/** The total of a risk query → risk metrics as of the query's end date. */
export function mapRiskMetrics(accountId: string, total: PortfolioRow, asOf: string): Mapped<AnalyticsRecord> {
  return analytics(`${accountId}:risk_metrics`, {
    kind: 'risk_metrics',
    platformAccountId: accountId,
    asOf,
    volatility: columnText(total, COLUMNS.volatility),
    sharpeRatio: columnText(total, COLUMNS.sharpe),
    beta: columnText(total, COLUMNS.beta),
    maxDrawdown: columnText(total, COLUMNS.maxDrawdown),
  });
}

/** One child of an `asset_class` grouping → an attribution segment over the query's dates. */
export function mapAttribution(accountId: string, row: PortfolioRow, window: { readonly startDate: string; readonly endDate: string }): Mapped<AnalyticsRecord> {
  return analytics(`${accountId}:attribution:${row.name}`, {
    kind: 'attribution',
    platformAccountId: accountId,
    startDate: window.startDate,
    endDate: window.endDate,
    segment: row.name,
    allocationEffect: columnText(row, COLUMNS.allocation),
    selectionEffect: columnText(row, COLUMNS.selection),
    totalEffect: columnText(row, COLUMNS.totalEffect),
  });
}

/** One child of a `time_period` grouping of a benchmark query → a benchmark comparison. */
export function mapBenchmarkComparison(accountId: string, benchmarkId: string, row: PortfolioRow): Mapped<AnalyticsRecord> {
  return analytics(`${accountId}:benchmark:${benchmarkId}:${row.name}`, {
    kind: 'benchmark_comparison',
    platformAccountId: accountId,
    benchmarkId,
    period: PERIOD_BY_TIME_PERIOD.get(String(row.columns['time_period'] ?? '')),
    portfolioReturn: columnText(row, COLUMNS.twr),
    benchmarkReturn: columnText(row, COLUMNS.benchmarkReturn),
    excessReturn: columnText(row, COLUMNS.excessReturn),
  });
}
