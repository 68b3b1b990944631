import type { Decimal } from 'decimal.js';
import type { z } from 'zod';
import { Dec } from '../../../domain/money/decimal.ts';
import {
  AccountRecordSchema,
  HoldingRecordSchema,
  PerformanceRecordSchema,
  TaxLotRecordSchema,
  TransactionRecordSchema,
  type AccountRecord,
  type AssetClass,
  type HoldingRecord,
  type PerformancePeriod,
  type PerformanceRecord,
  type Security,
  type SecurityType,
  type TaxLotRecord,
  type TransactionRecord,
} from '../../../domain/platforms/records.ts';
import type { SyncError, SyncErrorCode } from '../../../domain/platforms/sync-error.ts';
import type { Fetched } from '../../../ports/platform-adapter.ts';
import { DECIMAL_TEXT, TICKER, currencies, cusips, dates, fastDecimal, isIdText, isObject, isins, type Json } from '../fast-path.ts';

/**
 * Orion records (as wire.ts describes them) -> canonical records. Pure: each function takes one
 * record as it came off the wire and answers the canonical record or the SyncError that names
 * the Orion field at fault. One schema parse per record: the fields are lifted out of Orion's
 * shape as they are (a value of the wrong type passes through untouched) and the canonical schema
 * judges them, so a record costs one validation, not two. Assets and transactions, the records a
 * fetch has by the hundred thousand, first try a fast path (see the end of this file).
 */

export type Mapped<T> = Extract<Fetched<T>, { kind: 'record' | 'error' }>;


/** Orion is a US platform: a record that names no currency is in dollars. */
const DEFAULT_CURRENCY = 'USD';

/** The id a record carries, even when the rest of it is broken; `fallback` when it has none. */
export function rawRecordId(raw: unknown, fallback: string): string {
  if (typeof raw === 'object' && raw !== null) {
    const id = (raw as { id?: unknown }).id;
    if ((typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id !== '')) return String(id);
  }
  return fallback;
}

export function mapAccount(raw: unknown, fallbackId = 'account'): Mapped<AccountRecord> {
  const recordId = rawRecordId(raw, fallbackId);
  if (!isObject(raw)) return notAnObject(recordId, 'account');
  const parsed = AccountRecordSchema.safeParse({
    platformAccountId: idOf(raw.id),
    name: raw.name,
    number: optionalText(raw.number),
    accountType: optionalText(raw.accountType),
    custodian: optionalText(raw.custodian),
    currency: raw.currency ?? DEFAULT_CURRENCY,
    status: raw.isActive === true ? 'open' : raw.isActive === false ? 'closed' : raw.isActive,
    openedOn: raw.accountStartDate == null ? undefined : dateOnly(raw.accountStartDate),
    marketValue: raw.currentValue == null ? undefined : decimalInput(raw.currentValue),
  });
  return parsed.success ? { kind: 'record', record: parsed.data } : failure(recordId, 'account', parsed.error, ACCOUNT_FIELDS);
}

export function mapAsset(raw: unknown, fallbackId = 'asset'): Mapped<HoldingRecord> {
  const record = isObject(raw) ? fastAsset(raw) : undefined;
  return record === undefined ? checkedAsset(raw, fallbackId) : { kind: 'record', record };
}

/** The schema path of mapAsset: every record it takes or refuses, with the reason. */
export function checkedAsset(raw: unknown, fallbackId = 'asset'): Mapped<HoldingRecord> {
  const recordId = rawRecordId(raw, fallbackId);
  if (!isObject(raw)) return notAnObject(recordId, 'asset');
  const parsed = HoldingRecordSchema.safeParse({
    platformRecordId: idOf(raw.id),
    platformAccountId: idOf(raw.accountId),
    security: assetSecurity(raw),
    quantity: decimalInput(raw.currentShares),
    price: decimalInput(raw.currentPrice),
    marketValue: decimalInput(raw.currentValue),
    costBasis: raw.costBasis == null ? undefined : decimalInput(raw.costBasis),
    currency: raw.currency ?? DEFAULT_CURRENCY,
    asOf: dateOnly(raw.asOfDate),
  });
  return parsed.success ? { kind: 'record', record: parsed.data } : failure(recordId, 'asset', parsed.error, ASSET_FIELDS);
}

/**
 * A verbose asset -> its open tax lots (a lot with a sell date has been sold and is not held).
 * A broken asset is one error; a broken lot is an error of its own and its siblings still map.
 */
export function mapVerboseAsset(raw: unknown, fallbackId = 'asset'): Mapped<TaxLotRecord>[] {
  const assetId = rawRecordId(raw, fallbackId);
  if (!isObject(raw)) return [notAnObject(assetId, 'asset')];
  if (!Array.isArray(raw.taxLots)) return [{ kind: 'error', error: recordError(assetId, 'RECORD_INVALID', `Orion asset ${assetId}: taxLots must be a list`) }];
  const security = assetSecurity(raw);
  const asOf = dateOnly(raw.asOfDate);
  const currency = raw.currency ?? DEFAULT_CURRENCY;
  const results: Mapped<TaxLotRecord>[] = [];
  for (const [index, lot] of (raw.taxLots as unknown[]).entries()) {
    const lotId = rawRecordId(lot, `${assetId}/lot-${index + 1}`);
    if (!isObject(lot)) {
      results.push(notAnObject(lotId, 'tax lot'));
      continue;
    }
    if (lot.sellDate != null) continue;
    const acquiredOn = dateOnly(lot.acquiredDate);
    const holdingPeriodStart = lot.holdingPeriodDate == null ? acquiredOn : dateOnly(lot.holdingPeriodDate);
    const parsed = TaxLotRecordSchema.safeParse({
      platformRecordId: idOf(lot.id),
      platformAccountId: idOf(raw.accountId),
      holdingRecordId: idOf(raw.id),
      security,
      acquiredOn,
      quantity: decimalInput(lot.numberOfUnits),
      costBasis: decimalInput(lot.costAmount),
      method: typeof lot.method === 'string' ? (LOT_METHODS[lot.method] ?? lot.method) : lot.method,
      term: typeof holdingPeriodStart === 'string' && typeof asOf === 'string' ? lotTerm(holdingPeriodStart, asOf) : undefined,
      currency,
    });
    results.push(parsed.success ? { kind: 'record', record: parsed.data } : failure(lotId, 'tax lot', parsed.error, TAX_LOT_FIELDS));
  }
  return results;
}

export function mapTransaction(raw: unknown, fallbackId = 'transaction'): Mapped<TransactionRecord> {
  const record = isObject(raw) ? fastTransaction(raw) : undefined;
  return record === undefined ? checkedTransaction(raw, fallbackId) : { kind: 'record', record };
}

/** The schema path of mapTransaction: every record it takes or refuses, with the reason. */
export function checkedTransaction(raw: unknown, fallbackId = 'transaction'): Mapped<TransactionRecord> {
  const recordId = rawRecordId(raw, fallbackId);
  if (!isObject(raw)) return notAnObject(recordId, 'transaction');
  const kind = transactionKind(raw.financialType, raw.type);
  if (kind === undefined) {
    return {
      kind: 'error',
      error: recordError(recordId, 'RECORD_INVALID', `Orion transaction ${recordId}: financialType ${JSON.stringify(raw.financialType ?? null)} / type ${JSON.stringify(raw.type ?? null)} is not a kind of transaction the ledger knows`),
    };
  }
  const ticker = identifier(raw.ticker);
  const cusip = identifier(raw.cusip);
  const isin = identifier(raw.isin);
  const named = ticker ?? cusip ?? isin;
  const parsed = TransactionRecordSchema.safeParse({
    platformRecordId: idOf(raw.id),
    platformAccountId: idOf(raw.accountId),
    type: kind.type,
    status: typeof raw.status === 'string' ? (TRANSACTION_STATUSES[raw.status] ?? raw.status) : raw.status,
    tradeDate: dateOnly(raw.transDate),
    settleDate: raw.settleDate == null ? undefined : dateOnly(raw.settleDate),
    // A transaction names its security only by identifiers; its class and type live on the asset.
    security: named === undefined ? undefined : { ticker, cusip, isin, name: String(named), assetClass: 'other', securityType: 'other' },
    quantity: raw.noUnits == null ? undefined : absolute(decimalInput(raw.noUnits)),
    price: raw.navPrice == null ? undefined : decimalInput(raw.navPrice),
    amount: signed(decimalInput(raw.transAmount), kind.direction),
    currency: raw.currency ?? DEFAULT_CURRENCY,
    description: optionalText(raw.transactionDescription),
  });
  return parsed.success ? { kind: 'record', record: parsed.data } : failure(recordId, 'transaction', parsed.error, TRANSACTION_FIELDS);
}

export function mapPerformance(raw: unknown, fallbackId = 'performance'): Mapped<PerformanceRecord> {
  const accountId = isObject(raw) ? idOf(raw.accountId) : undefined;
  const recordId = isObject(raw) ? `${String(accountId ?? fallbackId)}/${String(raw.period)}` : fallbackId;
  if (!isObject(raw)) return notAnObject(recordId, 'performance');
  const twr = decimalInput(raw.twr);
  const parsed = PerformanceRecordSchema.safeParse({
    platformAccountId: accountId,
    period: typeof raw.period === 'string' ? (PERFORMANCE_PERIODS[raw.period] ?? raw.period) : raw.period,
    startDate: dateOnly(raw.startDate),
    endDate: dateOnly(raw.endDate),
    // Orion reports percent; the ledger keeps a fraction.
    returnRate: typeof twr === 'string' && DECIMAL_TEXT.test(twr) ? new Dec(twr).div(100).toFixed() : twr,
    beginningValue: decimalInput(raw.beginningValue),
    endingValue: decimalInput(raw.endingValue),
    netFlows: decimalInput(raw.netContributions),
    currency: raw.currency ?? DEFAULT_CURRENCY,
  });
  return parsed.success ? { kind: 'record', record: parsed.data } : failure(recordId, 'performance', parsed.error, PERFORMANCE_FIELDS);
}

// ---- vocabularies -------------------------------------------------------------------------------

const TRANSACTION_STATUSES: Readonly<Record<string, TransactionRecord['status']>> = {
  Complete: 'COMPLETED',
  Pending: 'PENDING',
  PendingCorpAction: 'PENDING',
  Rejected: 'FAILED',
  Reversed: 'CANCELLED',
  Inactive: 'CANCELLED',
};

type Direction = 1 | -1;
type TransactionKind = { readonly type: TransactionRecord['type']; readonly direction: Direction };

/** financialType (and, when it is missing or unknown, the plainer `type`) -> the ledger's type and which way the cash went. */
const TRANSACTION_KINDS: ReadonlyMap<string, TransactionKind> = new Map(
  Object.entries({
    buy: { type: 'BUY', direction: -1 },
    purchase: { type: 'BUY', direction: -1 },
    sell: { type: 'SELL', direction: 1 },
    sale: { type: 'SELL', direction: 1 },
    divcash: { type: 'DIVIDEND', direction: 1 },
    divreinvest: { type: 'DIVIDEND', direction: 1 },
    dividend: { type: 'DIVIDEND', direction: 1 },
    interest: { type: 'INTEREST', direction: 1 },
    mgmntfees: { type: 'FEE', direction: -1 },
    fee: { type: 'FEE', direction: -1 },
    contribution: { type: 'TRANSFER', direction: 1 },
    deposit: { type: 'TRANSFER', direction: 1 },
    distribution: { type: 'TRANSFER', direction: -1 },
    withdrawal: { type: 'TRANSFER', direction: -1 },
  } satisfies Record<string, TransactionKind>),
);

function transactionKind(financialType: unknown, type: unknown): TransactionKind | undefined {
  return (typeof financialType === 'string' ? TRANSACTION_KINDS.get(financialType.toLowerCase()) : undefined) ?? (typeof type === 'string' ? TRANSACTION_KINDS.get(type.toLowerCase()) : undefined);
}

const PERFORMANCE_PERIODS: Readonly<Record<string, PerformancePeriod>> = {
  '1Day': 'DAILY',
  '1Week': 'WEEKLY',
  '1Month': 'MONTHLY',
  YTD: 'YTD',
  '1Year': '1Y',
  '3Year': '3Y',
  '5Year': '5Y',
  ITD: 'INCEPTION',
};

const LOT_METHODS: Readonly<Record<string, TaxLotRecord['method']>> = { FIFO: 'FIFO', LIFO: 'LIFO', AverageCost: 'AVERAGE_COST' };

/**
 * Orion asset classes are named by each firm ("Large Cap Equity", "Intermediate Fixed Income",
 * "Cash & Equivalents"); the ledger's class is read from the words in the name.
 */
const ASSET_CLASS_WORDS: readonly (readonly [RegExp, AssetClass])[] = [
  [/cash|money market/i, 'cash'],
  [/fixed income|bond|municipal|treasur/i, 'fixed_income'],
  [/real estate|reit/i, 'real_estate'],
  [/commodit|precious metal/i, 'commodity'],
  [/alternative|hedge|private/i, 'alternative'],
  [/balanced|multi|allocation/i, 'multi_asset'],
  [/equit|stock/i, 'equity'],
];
const assetClasses = new Map<string, AssetClass>();

export function assetClassOf(name: unknown): AssetClass {
  if (typeof name !== 'string' || name === '') return 'other';
  let assetClass = assetClasses.get(name);
  if (assetClass === undefined) {
    assetClass = ASSET_CLASS_WORDS.find(([words]) => words.test(name))?.[1] ?? 'other';
    // A firm has a few dozen class names; the bound only guards against a feed of junk.
    if (assetClasses.size < 1000) assetClasses.set(name, assetClass);
  }
  return assetClass;
}

/** Orion's productType does not tell a stock from an ETF; both come out as 'stock'. A type Orion adds later is 'other'. */
const PRODUCT_TYPES: Readonly<Record<string, SecurityType>> = {
  StockOrETF: 'stock',
  MutualFund: 'mutual_fund',
  Bond: 'bond',
  Option: 'option',
  CD: 'cd',
  Annuity: 'annuity',
};

export function securityTypeOf(productType: unknown, isCustodialCash: unknown): SecurityType {
  if (isCustodialCash === true) return 'cash';
  return (typeof productType === 'string' ? PRODUCT_TYPES[productType] : undefined) ?? 'other';
}

function assetSecurity(asset: Json) {
  const cash = asset.isCustodialCash === true;
  return {
    ticker: identifier(asset.ticker),
    cusip: identifier(asset.cusip),
    isin: identifier(asset.isin),
    name: asset.name,
    assetClass: cash ? 'cash' : assetClassOf(asset.assetClass),
    securityType: securityTypeOf(asset.productType, cash),
  };
}

/** US rule: a lot held more than one year (from its holding-period date) is long term. */
export function lotTerm(holdingPeriodStart: string, asOf: string): TaxLotRecord['term'] {
  const year = Number(holdingPeriodStart.slice(0, 4));
  if (!Number.isInteger(year)) return 'SHORT';
  const oneYearOn = `${String(year + 1).padStart(4, '0')}${holdingPeriodStart.slice(4, 10)}`;
  return asOf > oneYearOn ? 'LONG' : 'SHORT';
}

// ---- field names, for messages -----------------------------------------------------------------

const SECURITY_FIELDS = { 'security.ticker': 'ticker', 'security.cusip': 'cusip', 'security.isin': 'isin', 'security.name': 'name', security: 'ticker/cusip/isin' };
const ACCOUNT_FIELDS = { platformAccountId: 'id', status: 'isActive', openedOn: 'accountStartDate', marketValue: 'currentValue' };
const ASSET_FIELDS = { ...SECURITY_FIELDS, platformRecordId: 'id', platformAccountId: 'accountId', quantity: 'currentShares', price: 'currentPrice', marketValue: 'currentValue', asOf: 'asOfDate' };
const TRANSACTION_FIELDS = {
  ...SECURITY_FIELDS,
  platformRecordId: 'id',
  platformAccountId: 'accountId',
  tradeDate: 'transDate',
  quantity: 'noUnits',
  price: 'navPrice',
  amount: 'transAmount',
  description: 'transactionDescription',
};
const TAX_LOT_FIELDS = { ...ASSET_FIELDS, platformRecordId: 'id', holdingRecordId: 'asset id', acquiredOn: 'acquiredDate', quantity: 'numberOfUnits', costBasis: 'costAmount', term: 'holdingPeriodDate' };
const PERFORMANCE_FIELDS = { platformAccountId: 'accountId', returnRate: 'twr', netFlows: 'netContributions' };

// ---- small conversions -------------------------------------------------------------------------

const ZERO = /^-?0(\.0+)?$/;

/** Orion ids are integers; kept as text so they travel like every other platform's ids. */
function idOf(value: unknown): unknown {
  return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
}

/**
 * A JSON number as decimal text: its shortest round-trip form, which is what Orion wrote for any
 * value a double carries exactly; exponent forms (1e-7) are written out. A string is trimmed;
 * anything else is left for the schema to refuse.
 */
export function decimalInput(value: unknown): unknown {
  if (typeof value === 'number') {
    const written = String(value);
    return Number.isFinite(value) && written.includes('e') ? new Dec(value).toFixed() : written;
  }
  return typeof value === 'string' ? value.trim() : value;
}

function absolute(value: unknown): unknown {
  return typeof value === 'string' && value.startsWith('-') ? value.slice(1) : value;
}

/** Orion writes amounts unsigned; the ledger signs them from the account's point of view. */
function signed(value: unknown, direction: Direction): unknown {
  const magnitude = absolute(value);
  return direction === -1 && typeof magnitude === 'string' && !ZERO.test(magnitude) ? `-${magnitude}` : magnitude;
}

/** "2024-03-28T00:00:00" -> "2024-03-28"; anything else is left for the schema to refuse. */
export function dateOnly(value: unknown): unknown {
  return typeof value === 'string' && value.length > 10 && value[10] === 'T' ? value.slice(0, 10) : value;
}

function optionalText(value: unknown): unknown {
  if (value == null) return undefined;
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function identifier(value: unknown): unknown {
  const text = optionalText(value);
  return typeof text === 'string' ? text.toUpperCase() : text;
}

function recordError(recordId: string, code: SyncErrorCode, message: string): SyncError {
  return { recordId, code, message, severity: 'error', retryable: false };
}

function notAnObject(recordId: string, what: string): { kind: 'error'; error: SyncError } {
  return { kind: 'error', error: recordError(recordId, 'RECORD_INVALID', `Orion ${what} ${recordId}: is not a JSON object`) };
}

function failure(recordId: string, what: string, error: z.ZodError, fields: Readonly<Record<string, string>>): { kind: 'error'; error: SyncError } {
  const paths = error.issues.map((issue) => issue.path.map(String).join('.'));
  const code: SyncErrorCode = paths.some((p) => p === 'security.cusip' || p === 'security.isin')
    ? 'IDENTIFIER_INVALID'
    : paths.includes('currency')
      ? 'CURRENCY_NOT_SUPPORTED'
      : 'RECORD_INVALID';
  const detail = error.issues.map((issue, i) => `${fields[paths[i]!] ?? (paths[i] || 'record')} ${issue.message}`).join('; ');
  return { kind: 'error', error: recordError(recordId, code, `Orion ${what} ${recordId}: ${detail}`) };
}

// ---- the fast path -----------------------------------------------------------------------------
//
// The fast path builds the canonical record directly and takes a record only when every check the
// canonical schema makes passes (identifiers by their check digits, currencies and dates through
// the schemas themselves, cached); whatever it does not take goes the schema path, which either
// takes it too or names the fault. So the fast path can only be stricter than the schemas, never
// looser, and a test holds the two paths to the same output.

function fastId(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  return isIdText(value) ? value : undefined;
}

/** undefined: not taken by the fast path; null: absent. */
function fastOptionalDecimal(value: unknown): Decimal | null | undefined {
  return value == null ? null : fastDecimal(value);
}

function fastDate(value: unknown): string | undefined {
  const date = dateOnly(value);
  return typeof date === 'string' && dates.ok(date) ? date : undefined;
}

function fastCurrency(value: unknown): string | undefined {
  if (value == null) return DEFAULT_CURRENCY;
  return typeof value === 'string' && currencies.ok(value) ? value : undefined;
}

/** An identifier as the schema path lifts it: null when absent, undefined when the fast path cannot judge it. */
function fastIdentifier(value: unknown, valid: (text: string) => boolean): string | null | undefined {
  const text = identifier(value);
  if (text === undefined) return null;
  return typeof text === 'string' && valid(text) ? text : undefined;
}

const isTicker = (text: string) => TICKER.test(text);
const isCusip = (text: string) => cusips.ok(text);
const isIsin = (text: string) => isins.ok(text);

function fastSecurity(ticker: unknown, cusip: unknown, isin: unknown, name: unknown, assetClass: AssetClass, securityType: SecurityType): Security | undefined {
  const t = fastIdentifier(ticker, isTicker);
  const c = fastIdentifier(cusip, isCusip);
  const i = fastIdentifier(isin, isIsin);
  if (t === undefined || c === undefined || i === undefined || (t === null && c === null && i === null)) return undefined;
  if (typeof name !== 'string' || name.length === 0) return undefined;
  return { ticker: t ?? undefined, cusip: c ?? undefined, isin: i ?? undefined, name, assetClass, securityType };
}

function fastAsset(raw: Json): HoldingRecord | undefined {
  const platformRecordId = fastId(raw.id);
  const platformAccountId = fastId(raw.accountId);
  const quantity = fastDecimal(raw.currentShares);
  const price = fastDecimal(raw.currentPrice);
  const marketValue = fastDecimal(raw.currentValue);
  const costBasis = fastOptionalDecimal(raw.costBasis);
  const currency = fastCurrency(raw.currency);
  const asOf = fastDate(raw.asOfDate);
  if (!platformRecordId || !platformAccountId || !quantity || !price || !marketValue || costBasis === undefined || !currency || !asOf) return undefined;
  const cash = raw.isCustodialCash === true;
  const security = fastSecurity(raw.ticker, raw.cusip, raw.isin, raw.name, cash ? 'cash' : assetClassOf(raw.assetClass), securityTypeOf(raw.productType, cash));
  if (!security) return undefined;
  return { platformRecordId, platformAccountId, security, quantity, price, marketValue, costBasis: costBasis ?? undefined, currency, asOf };
}

function fastTransaction(raw: Json): TransactionRecord | undefined {
  const kind = transactionKind(raw.financialType, raw.type);
  const status = typeof raw.status === 'string' ? TRANSACTION_STATUSES[raw.status] : undefined;
  const platformRecordId = fastId(raw.id);
  const platformAccountId = fastId(raw.accountId);
  const tradeDate = fastDate(raw.transDate);
  const settleDate = raw.settleDate == null ? null : fastDate(raw.settleDate);
  const amount = fastDecimal(raw.transAmount);
  const quantity = fastOptionalDecimal(raw.noUnits);
  const price = fastOptionalDecimal(raw.navPrice);
  const currency = fastCurrency(raw.currency);
  const description = optionalText(raw.transactionDescription);
  if (!kind || !status || !platformRecordId || !platformAccountId || !tradeDate || settleDate === undefined || !amount || quantity === undefined || price === undefined || !currency) return undefined;
  if (description !== undefined && typeof description !== 'string') return undefined;
  let security: Security | undefined;
  if (raw.ticker != null || raw.cusip != null || raw.isin != null) {
    const named = identifier(raw.ticker) ?? identifier(raw.cusip) ?? identifier(raw.isin);
    if (named !== undefined) {
      security = fastSecurity(raw.ticker, raw.cusip, raw.isin, String(named), 'other', 'other');
      if (!security) return undefined;
    }
  }
  const magnitude = amount.isNeg() ? amount.abs() : amount;
  return {
    platformRecordId,
    platformAccountId,
    type: kind.type,
    status,
    tradeDate,
    settleDate: settleDate ?? undefined,
    security,
    quantity: quantity === null ? undefined : quantity.isNeg() ? quantity.abs() : quantity,
    price: price ?? undefined,
    amount: kind.direction === -1 && !magnitude.isZero() ? magnitude.neg() : magnitude,
    currency,
    description,
  };
}
