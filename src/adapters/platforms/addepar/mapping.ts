import type { Decimal } from 'decimal.js';
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
import { isValidCusip, isValidIsin } from '../../../domain/securities/identifiers.ts';
import type { Fetched } from '../../../ports/platform-adapter.ts';
import { DECIMAL_TEXT, TICKER, currencies, dates, isIdText, isObject } from '../fast-path.ts';
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
 * naming the record, never throws for bad data. Positions, their securities and transaction rows,
 * the records a fetch has by the hundred thousand, first try a direct path (see the end of this
 * file); what it does not take goes through the schemas, which take it or name the fault.
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
  private readonly mapped = new Map<string, SecurityVerdict>();

  /** Replaces the book with a new page's included entities. */
  load(included: readonly unknown[] | undefined): void {
    this.raw.clear();
    this.mapped.clear();
    for (const entity of included ?? []) this.raw.set(resourceId(entity), entity);
  }

  security(entityId: string): SecurityVerdict {
    let result = this.mapped.get(entityId);
    if (result === undefined) {
      const raw = this.raw.get(entityId);
      result = raw === undefined ? { ok: false, issues: [{ path: ['relationships', 'owned'], message: `names entity ${entityId}, which the page does not include` }] } : mapSecurityEntity(raw);
      this.mapped.set(entityId, result);
    }
    return result;
  }
}

type SecurityVerdict = ReturnType<typeof securityOf>;

/** An owned entity → its security, or what is wrong with it (the path named from the position). */
export function mapSecurityEntity(raw: unknown): SecurityVerdict {
  const direct = directSecurity(raw);
  return direct === undefined ? checkedSecurityEntity(raw) : { ok: true, security: direct };
}

/** The schema path of mapSecurityEntity. */
export function checkedSecurityEntity(raw: unknown): SecurityVerdict {
  const parsed = SecurityEntitySchema.safeParse(raw);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.map((issue) => ({ path: ['owned', ...issue.path], message: issue.message })) };
  const a = parsed.data.attributes;
  return securityOf({ name: optionalText(a.display_name) ?? a.original_name, ticker: a.ticker_symbol, cusip: a.cusip, isin: a.isin, assetClass: a.asset_class, modelType: a.model_type });
}

const HoldingWithoutSecurity = HoldingRecordSchema.omit({ security: true });
const TransactionWithoutSecurity = TransactionRecordSchema.omit({ security: true });

/** A position (with its owned security from the book) → HoldingRecord. */
export function mapPosition(raw: unknown, securities: SecurityBook): Mapped<HoldingRecord> {
  const direct = directPosition(raw, securities);
  return direct === undefined ? checkedPosition(raw, securities) : record(direct);
}

/** The schema path of mapPosition: every position it takes or refuses, with the reason. */
export function checkedPosition(raw: unknown, securities: SecurityBook): Mapped<HoldingRecord> {
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
  /** By the row's first identifier; an entry serves a row only when all six columns match. */
  private readonly entries = new Map<string, { readonly columns: SecurityColumns; readonly result: SecurityVerdict }>();
  constructor(private readonly capacity = 20_000) {}

  security(row: TransactionRow): SecurityVerdict {
    const key = row.isin ?? row.cusip ?? row.ticker_symbol ?? row.security_name ?? '';
    const entry = this.entries.get(key);
    if (entry !== undefined && sameSecurityColumns(entry.columns, row)) return entry.result;
    const result = securityOf({ name: row.security_name ?? '', ticker: row.ticker_symbol, cusip: row.cusip, isin: row.isin, assetClass: row.asset_class, modelType: row.security_model_type });
    if (this.entries.size >= this.capacity) this.entries.clear();
    const { isin, cusip, ticker_symbol, security_name, asset_class, security_model_type } = row;
    this.entries.set(key, { columns: { isin, cusip, ticker_symbol, security_name, asset_class, security_model_type }, result });
    return result;
  }
}

type SecurityColumns = Pick<TransactionRow, 'isin' | 'cusip' | 'ticker_symbol' | 'security_name' | 'asset_class' | 'security_model_type'>;

function sameSecurityColumns(a: SecurityColumns, b: SecurityColumns): boolean {
  return a.isin === b.isin && a.cusip === b.cusip && a.ticker_symbol === b.ticker_symbol && a.security_name === b.security_name && a.asset_class === b.asset_class && a.security_model_type === b.security_model_type;
}

const hasSecurity = (row: TransactionRow): boolean => Boolean(optionalText(row.ticker_symbol) ?? optionalText(row.cusip) ?? optionalText(row.isin) ?? optionalText(row.security_name));

/** A transaction row (query answer attributes or an export line) → TransactionRecord. */
export function mapTransaction(raw: unknown, securities: RowSecurityCache): Mapped<TransactionRecord> {
  const direct = directTransaction(raw, securities);
  return direct === undefined ? checkedTransaction(raw, securities) : record(direct);
}

/** The schema path of mapTransaction: every row it takes or refuses, with the reason. */
export function checkedTransaction(raw: unknown, securities: RowSecurityCache): Mapped<TransactionRecord> {
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

// ---- the direct path ---------------------------------------------------------------------------
//
// Builds the canonical record straight from the payload and takes it only when every check the
// wire schema and the canonical schema make passes (identifiers by their check digits, currencies
// and dates through the schemas themselves, cached); anything else returns undefined and goes the
// schema path, which takes it too or names the fault. So the direct path can only be stricter
// than the schemas, never looser, and a test holds the two paths to the same output.

/** The wire schemas' optional text: a string, null or absent. */
const isText = (value: unknown): value is string | null | undefined => value == null || typeof value === 'string';

function directId(value: unknown): string | undefined {
  return isIdText(value) ? value : undefined;
}

/** An AddeparNumber as the canonical schema takes it, or undefined. */
function directDecimal(value: unknown): Decimal | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? new Dec(decimalTextOf(value)) : undefined;
  return typeof value === 'string' && DECIMAL_TEXT.test(value) ? new Dec(value) : undefined;
}

/** null when absent, undefined when not taken. */
function directOptionalDecimal(value: unknown): Decimal | null | undefined {
  return value == null ? null : directDecimal(value);
}

/** A ToOne relationship's resource id, or undefined. */
function relatedId(relationship: unknown): string | undefined {
  if (!isObject(relationship)) return undefined;
  const data = relationship.data;
  return isObject(data) && typeof data.type === 'string' ? directId(data.id) : undefined;
}

/** What securityOf gives for these fields when SecuritySchema takes them; undefined otherwise. */
function directSecurityOf(fields: SecurityFields): Security | undefined {
  const ticker = optionalText(fields.ticker);
  const cusip = optionalText(fields.cusip);
  const isin = optionalText(fields.isin);
  if (ticker === undefined && cusip === undefined && isin === undefined) return undefined;
  if ((ticker !== undefined && !TICKER.test(ticker)) || (cusip !== undefined && !isValidCusip(cusip)) || (isin !== undefined && !isValidIsin(isin)) || fields.name.length === 0) return undefined;
  const assetClass = fields.assetClass ? (ASSET_CLASS_BY_LABEL.get(fields.assetClass) ?? (AssetClassSchema.safeParse(fields.assetClass).success ? (fields.assetClass as AssetClass) : 'other')) : 'other';
  const securityType = fields.modelType ? (SECURITY_TYPE_BY_MODEL.get(fields.modelType) ?? 'other') : 'other';
  return { ticker, cusip, isin, name: fields.name, assetClass, securityType };
}

/** An owned entity of a page's `included` → its security, when both schemas would take it. */
function directSecurity(raw: unknown): Security | undefined {
  if (!isObject(raw) || raw.type !== 'entities' || typeof raw.id !== 'string' || raw.id === '' || !isObject(raw.attributes)) return undefined;
  const a = raw.attributes;
  if (typeof a.original_name !== 'string' || typeof a.model_type !== 'string') return undefined;
  if (!isText(a.display_name) || !isText(a.ticker_symbol) || !isText(a.cusip) || !isText(a.isin) || !isText(a.asset_class) || !isText(a.currency_factor)) return undefined;
  return directSecurityOf({ name: optionalText(a.display_name) ?? a.original_name, ticker: a.ticker_symbol, cusip: a.cusip, isin: a.isin, assetClass: a.asset_class, modelType: a.model_type });
}

function directPosition(raw: unknown, securities: SecurityBook): HoldingRecord | undefined {
  if (!isObject(raw) || raw.type !== 'positions' || !isObject(raw.attributes) || !isObject(raw.relationships)) return undefined;
  const platformRecordId = directId(raw.id);
  const platformAccountId = relatedId(raw.relationships.owner);
  const ownedId = relatedId(raw.relationships.owned);
  const a = raw.attributes;
  if (platformRecordId === undefined || platformAccountId === undefined || ownedId === undefined || typeof a.name !== 'string') return undefined;
  const quantity = directDecimal(a.units);
  const price = directDecimal(a.price);
  const marketValue = directDecimal(a.value);
  const costBasis = directOptionalDecimal(a.cost_basis);
  if (quantity === undefined || price === undefined || marketValue === undefined || costBasis === undefined) return undefined;
  if (typeof a.currency !== 'string' || !currencies.ok(a.currency) || typeof a.as_of_date !== 'string' || !dates.ok(a.as_of_date)) return undefined;
  const security = securities.security(ownedId);
  if (!security.ok) return undefined;
  return { platformRecordId, platformAccountId, security: security.security, quantity, price, marketValue, costBasis: costBasis ?? undefined, currency: a.currency, asOf: a.as_of_date };
}

function directTransaction(raw: unknown, securities: RowSecurityCache): TransactionRecord | undefined {
  if (!isObject(raw)) return undefined;
  const platformRecordId = directId(raw.id);
  const platformAccountId = directId(raw.owner_id);
  const type = typeof raw.type === 'string' ? TRANSACTION_TYPE_BY_NAME.get(raw.type) : undefined;
  const status = typeof raw.status === 'string' ? STATUS_BY_NAME.get(raw.status) : undefined;
  if (platformRecordId === undefined || platformAccountId === undefined || type === undefined || status === undefined || typeof raw.modified_at !== 'string') return undefined;
  if (typeof raw.trade_date !== 'string' || !dates.ok(raw.trade_date) || !isText(raw.settle_date) || typeof raw.currency !== 'string' || !currencies.ok(raw.currency)) return undefined;
  const settleDate = optionalText(raw.settle_date);
  if (settleDate !== undefined && !dates.ok(settleDate)) return undefined;
  if (!isText(raw.security_name) || !isText(raw.ticker_symbol) || !isText(raw.cusip) || !isText(raw.isin) || !isText(raw.asset_class) || !isText(raw.security_model_type) || !isText(raw.description)) return undefined;
  const quantity = directOptionalDecimal(raw.units);
  const price = directOptionalDecimal(raw.price);
  const amount = directDecimal(raw.amount);
  if (quantity === undefined || price === undefined || amount === undefined) return undefined;
  const row = raw as TransactionRow;
  let security: Security | undefined;
  if (hasSecurity(row)) {
    const mapped = securities.security(row);
    if (!mapped.ok) return undefined;
    security = mapped.security;
  }
  const description = optionalText(raw.description);
  return {
    platformRecordId,
    platformAccountId,
    type,
    status,
    tradeDate: raw.trade_date,
    settleDate,
    quantity: quantity ?? undefined,
    price: price ?? undefined,
    amount,
    currency: raw.currency,
    description,
    ...(security === undefined ? {} : { security }),
  };
}
