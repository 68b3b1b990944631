import type { z } from 'zod';
import type { Decimal } from 'decimal.js';
import { Dec } from '../../../domain/money/decimal.ts';
import {
  AccountRecordSchema,
  HoldingRecordSchema,
  PerformanceRecordSchema,
  TransactionRecordSchema,
  type AccountRecord,
  type HoldingRecord,
  type PerformancePeriod,
  type PerformanceRecord,
  type Security,
  type TransactionRecord,
} from '../../../domain/platforms/records.ts';
import type { SyncError, SyncErrorCode } from '../../../domain/platforms/sync-error.ts';
import type { Fetched } from '../../../ports/platform-adapter.ts';
import { DECIMAL_TEXT, TICKER, currencies, cusips, dates, fastDecimal, isIdText, isObject, isins, type Json } from '../fast-path.ts';
import {
  ASSET_CLASS_NAMES,
  BatchAccountSchema,
  BdPerformanceSchema,
  BdTransactionSchema,
  HoldingDetailSchema,
  PERIOD_NAME_OF,
  SECURITY_TYPE_NAMES,
  TRANSACTION_STATUS_NAMES,
  TRANSACTION_TYPE_NAMES,
  inverse,
  type Asset,
} from './wire.ts';

/**
 * Black Diamond payload rows -> canonical records. Pure: a row either maps to a record that the
 * canonical schema accepted, or to one SyncError naming the row, so a bad row never stops a fetch.
 */

/** Prices derived from market value / units keep this many decimals (the platform prices to 4). */
export const PRICE_DECIMALS = 6;

const ASSET_CLASS_OF = inverse(ASSET_CLASS_NAMES);
const SECURITY_TYPE_OF = inverse(SECURITY_TYPE_NAMES);
const TRANSACTION_TYPE_OF = inverse(TRANSACTION_TYPE_NAMES);
const TRANSACTION_STATUS_OF = inverse(TRANSACTION_STATUS_NAMES);
const PERIOD_OF = inverse(PERIOD_NAME_OF);
const ISIN_SHAPE = /^[A-Z]{2}[0-9A-Z]{9}[0-9]$/;

type Mapped<T> = Extract<Fetched<T>, { kind: 'record' | 'error' }>;

export function mapAccount(row: unknown, position: string): Mapped<AccountRecord> {
  const wire = BatchAccountSchema.safeParse(row);
  if (!wire.success) return failure(rowId(row, 'AccountID', position), wire.error);
  const a = wire.data;
  return accept(a.AccountID, AccountRecordSchema, {
    platformAccountId: a.AccountID,
    name: a.Name,
    number: a.LongNumber ?? undefined,
    accountType: a.AccountType ?? undefined,
    custodian: a.Custodian ?? undefined,
    currency: a.CurrencyCode,
    status: a.IsClosed ? 'closed' : 'open',
    openedOn: a.StartDate === null ? undefined : datePart(a.StartDate),
    marketValue: a.MarketValue === null ? undefined : decimalText(a.MarketValue),
  });
}

/** HoldingDetailSearch gives units and market value; the price is their quotient. */
export function mapHolding(row: unknown, position: string): Mapped<HoldingRecord> {
  const record = fastHolding(row);
  return record === undefined ? checkedHolding(row, position) : { kind: 'record', record };
}

/** MarketValue is unsigned: buys and fees take cash out, transfers follow ExternalFlowAffect. */
export function mapTransaction(row: unknown, position: string): Mapped<TransactionRecord> {
  const record = fastTransaction(row);
  return record === undefined ? checkedTransaction(row, position) : { kind: 'record', record };
}

/** The schema path: slower, and the one that names what is wrong with a row. */
export function checkedHolding(row: unknown, position: string): Mapped<HoldingRecord> {
  const wire = HoldingDetailSchema.safeParse(row);
  if (!wire.success) return failure(rowId(row, 'holdingId', position), wire.error);
  const h = wire.data;
  const units = arithmetic(h.returnInfo.units);
  const emv = arithmetic(h.returnInfo.emv);
  if (units === undefined || emv === undefined) return invalid(h.holdingId, 'returnInfo: units and emv must be decimal numbers');
  const price = priceOf(new Dec(emv), new Dec(units)).toFixed();
  return accept(h.holdingId, HoldingRecordSchema, {
    platformRecordId: h.holdingId,
    platformAccountId: h.accountID,
    security: security(h.asset),
    quantity: units,
    price,
    marketValue: emv,
    costBasis: h.costBasis == null ? undefined : decimalText(h.costBasis.totalCost),
    currency: h.asset.currencyCode,
    asOf: datePart(h.returnInfo.returnDate),
  });
}

export function checkedTransaction(row: unknown, position: string): Mapped<TransactionRecord> {
  const wire = BdTransactionSchema.safeParse(row);
  if (!wire.success) return failure(rowId(row, 'TransactionID', position), wire.error);
  const t = wire.data;
  const type = TRANSACTION_TYPE_OF.get(t.TransactionType);
  if (type === undefined) return invalid(t.TransactionID, `TransactionType: "${t.TransactionType}" is not a known transaction type`);
  const status = TRANSACTION_STATUS_OF.get(t.Status);
  if (status === undefined) return invalid(t.TransactionID, `Status: "${t.Status}" is not a known status`);
  const value = arithmetic(t.MarketValue);
  if (value === undefined) return invalid(t.TransactionID, 'MarketValue: must be a decimal number');
  const outflow = isOutflow(type, t.ExternalFlowAffect);
  const magnitude = value.startsWith('-') ? value.slice(1) : value;
  const hasSecurity = t.Ticker !== null || t.Cusip !== null || t.Identifier !== null;
  return accept(t.TransactionID, TransactionRecordSchema, {
    platformRecordId: t.TransactionID,
    platformAccountId: t.AccountID,
    type,
    status,
    tradeDate: datePart(t.TradeDate),
    settleDate: t.SettleDate === null ? undefined : datePart(t.SettleDate),
    security: hasSecurity
      ? securityOf(t.Ticker, t.Cusip, t.Identifier, t.AssetName ?? t.AssetID ?? '', t.AssetClass, t.SecurityType)
      : undefined,
    quantity: t.Units === null ? undefined : decimalText(t.Units),
    price: t.Price === null ? undefined : decimalText(t.Price),
    amount: outflow && !/^0(\.0+)?$/.test(magnitude) ? `-${magnitude}` : magnitude,
    currency: t.CurrencyCode,
    description: t.Description ?? undefined,
  });
}

/** Black Diamond reports returns in percent; the canonical record keeps a fraction. */
export function mapPerformance(row: unknown, position: string): Mapped<PerformanceRecord> {
  const wire = BdPerformanceSchema.safeParse(row);
  if (!wire.success) return failure(position, wire.error);
  const p = wire.data;
  const id = `${p.accountID}:${p.period}`;
  const period: PerformancePeriod | undefined = PERIOD_OF.get(p.period);
  if (period === undefined) return invalid(id, `period: "${p.period}" is not a known period`);
  const percent = arithmetic(p.twrPercent);
  if (percent === undefined) return invalid(id, 'twrPercent: must be a decimal number');
  return accept(id, PerformanceRecordSchema, {
    platformAccountId: p.accountID,
    period,
    startDate: datePart(p.startDate),
    endDate: datePart(p.endDate),
    returnRate: new Dec(percent).div(100).toFixed(),
    beginningValue: decimalText(p.bmv),
    endingValue: decimalText(p.emv),
    netFlows: decimalText(p.netFlows),
    currency: p.currencyCode,
  });
}

// ---- the fast path ----
//
// Mapping is the adapter's per-record cost, and a full fetch maps hundreds of thousands of rows.
// The fast path builds the canonical record directly and accepts a row only when every check the
// canonical schema makes passes (identifiers by their check digits, currency and dates through the
// schemas themselves, cached); anything it does not accept goes the schema path, which either
// accepts it too or names the fault. So the fast path can only be stricter, never looser, than the
// schemas; a unit test holds the two to the same output.

/** Division needs far fewer digits than the 40 kept for sums: the quotient is rounded to 6 decimals. */
const Quotient = Dec.clone({ precision: 30, rounding: Dec.ROUND_HALF_EVEN });

function priceOf(marketValue: Decimal, units: Decimal): Decimal {
  if (units.isZero()) return new Dec(0);
  return new Dec(new Quotient(marketValue).div(units).toDecimalPlaces(PRICE_DECIMALS).toFixed());
}

function isOutflow(type: TransactionRecord['type'], flow: string): boolean {
  return type === 'BUY' || type === 'FEE' || (type === 'TRANSFER' && flow === 'Withdrawal');
}

function fastDate(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = datePart(value);
  return dates.ok(text) ? text : undefined;
}

function fastSecurity(ticker: unknown, cusip: unknown, identifier: unknown, name: unknown, assetClass: unknown, securityType: unknown): Security | undefined {
  if (ticker !== null && !(typeof ticker === 'string' && TICKER.test(ticker))) return undefined;
  if (cusip !== null && !(typeof cusip === 'string' && cusips.ok(cusip))) return undefined;
  if (identifier !== null && typeof identifier !== 'string') return undefined;
  const isin = identifier !== null && ISIN_SHAPE.test(identifier) ? identifier : null;
  if (isin !== null && !isins.ok(isin)) return undefined;
  if (ticker === null && cusip === null && isin === null) return undefined;
  if (typeof name !== 'string' || name.length === 0) return undefined;
  if ((assetClass !== null && typeof assetClass !== 'string') || (securityType !== null && typeof securityType !== 'string')) return undefined;
  // One object shape for every record (absent fields are undefined, as the schema path leaves them).
  return {
    ticker: ticker === null ? undefined : ticker,
    cusip: cusip === null ? undefined : cusip,
    isin: isin === null ? undefined : isin,
    name,
    assetClass: (assetClass === null ? undefined : ASSET_CLASS_OF.get(assetClass)) ?? 'other',
    securityType: (securityType === null ? undefined : SECURITY_TYPE_OF.get(securityType)) ?? 'other',
  };
}


function fastHolding(row: unknown): HoldingRecord | undefined {
  if (!isObject(row) || !isIdText(row.holdingId) || !isIdText(row.accountID)) return undefined;
  const { asset, returnInfo, costBasis } = row;
  if (!isObject(asset) || !isObject(returnInfo) || !isIdText(asset.assetId)) return undefined;
  // The holding's asset always carries its classification (a transaction's may be null).
  if (typeof asset.assetClass !== 'string' || typeof asset.securityType !== 'string') return undefined;
  const quantity = fastDecimal(returnInfo.units);
  const marketValue = fastDecimal(returnInfo.emv);
  const asOf = fastDate(returnInfo.returnDate);
  if (quantity === undefined || marketValue === undefined || asOf === undefined) return undefined;
  const currency = asset.currencyCode;
  if (typeof currency !== 'string' || !currencies.ok(currency)) return undefined;
  let cost: Decimal | undefined;
  if (costBasis !== undefined && costBasis !== null) {
    cost = isObject(costBasis) ? fastDecimal(costBasis.totalCost) : undefined;
    if (cost === undefined) return undefined;
  }
  const security = fastSecurity(asset.ticker, asset.cusip, asset.identifier, asset.name, asset.assetClass, asset.securityType);
  if (security === undefined) return undefined;
  return {
    platformRecordId: row.holdingId,
    platformAccountId: row.accountID,
    security,
    quantity,
    price: priceOf(marketValue, quantity),
    marketValue,
    costBasis: cost,
    currency,
    asOf,
  };
}

type SecurityFields = Partial<Pick<Json, 'Ticker' | 'Cusip' | 'Identifier' | 'AssetName' | 'AssetID' | 'AssetClass' | 'SecurityType'>>;

/**
 * A fetch's transactions name the same few thousand securities over and over: the security is
 * kept by asset id and served again only to a row whose security fields are all the same.
 */
const transactionSecurities = new Map<string, { readonly fields: SecurityFields; readonly security: Security }>();

function transactionSecurity(row: Json): Security | undefined {
  const key = typeof row.AssetID === 'string' ? row.AssetID : undefined;
  const cached = key === undefined ? undefined : transactionSecurities.get(key);
  if (cached !== undefined && sameSecurityFields(cached.fields, row)) return cached.security;
  const security = fastSecurity(row.Ticker, row.Cusip, row.Identifier, row.AssetName ?? row.AssetID ?? '', row.AssetClass, row.SecurityType);
  if (security !== undefined && key !== undefined) {
    if (transactionSecurities.size >= 10_000) transactionSecurities.clear();
    const { Ticker, Cusip, Identifier, AssetName, AssetID, AssetClass, SecurityType } = row;
    transactionSecurities.set(key, { fields: { Ticker, Cusip, Identifier, AssetName, AssetID, AssetClass, SecurityType }, security });
  }
  return security;
}

function sameSecurityFields(a: SecurityFields, b: SecurityFields): boolean {
  return a.Ticker === b.Ticker && a.Cusip === b.Cusip && a.Identifier === b.Identifier && a.AssetName === b.AssetName && a.AssetID === b.AssetID && a.AssetClass === b.AssetClass && a.SecurityType === b.SecurityType;
}

function fastTransaction(row: unknown): TransactionRecord | undefined {
  if (!isObject(row) || !isIdText(row.TransactionID) || !isIdText(row.AccountID)) return undefined;
  const type = typeof row.TransactionType === 'string' ? TRANSACTION_TYPE_OF.get(row.TransactionType) : undefined;
  const status = typeof row.Status === 'string' ? TRANSACTION_STATUS_OF.get(row.Status) : undefined;
  const flow = row.ExternalFlowAffect;
  if (type === undefined || status === undefined || (flow !== 'Contribution' && flow !== 'Withdrawal' && flow !== 'NotExternalFlow')) return undefined;
  const tradeDate = fastDate(row.TradeDate);
  const settleDate = row.SettleDate === null ? null : fastDate(row.SettleDate);
  const value = fastDecimal(row.MarketValue);
  const currency = row.CurrencyCode;
  if (tradeDate === undefined || settleDate === undefined || value === undefined || typeof currency !== 'string' || !currencies.ok(currency)) return undefined;
  const quantity = row.Units === null ? null : fastDecimal(row.Units);
  const price = row.Price === null ? null : fastDecimal(row.Price);
  if (quantity === undefined || price === undefined) return undefined;
  const description = row.Description;
  if (description !== null && typeof description !== 'string') return undefined;
  let security: Security | undefined;
  if (row.Ticker !== null || row.Cusip !== null || row.Identifier !== null) {
    security = transactionSecurity(row);
    if (security === undefined) return undefined;
  }
  const magnitude = value.isNeg() ? value.abs() : value;
  return {
    platformRecordId: row.TransactionID,
    platformAccountId: row.AccountID,
    type,
    status,
    tradeDate,
    settleDate: settleDate === null ? undefined : settleDate,
    security,
    quantity: quantity === null ? undefined : quantity,
    price: price === null ? undefined : price,
    amount: isOutflow(type, flow) && !magnitude.isZero() ? magnitude.neg() : magnitude,
    currency,
    description: description === null ? undefined : description,
  };
}

function security(asset: Asset): unknown {
  return securityOf(asset.ticker, asset.cusip, asset.identifier, asset.name, asset.assetClass, asset.securityType);
}

function securityOf(
  ticker: string | null,
  cusip: string | null,
  identifier: string | null,
  name: string,
  assetClass: string | null,
  securityType: string | null,
): unknown {
  return {
    ticker: ticker ?? undefined,
    cusip: cusip ?? undefined,
    // The identifier is free text on the platform; only an ISIN-shaped one is taken as the ISIN.
    isin: identifier !== null && ISIN_SHAPE.test(identifier) ? identifier : undefined,
    name,
    assetClass: (assetClass === null ? undefined : ASSET_CLASS_OF.get(assetClass)) ?? 'other',
    securityType: (securityType === null ? undefined : SECURITY_TYPE_OF.get(securityType)) ?? 'other',
  };
}

/**
 * A JSON number is read by its shortest round-trip text, in fixed notation; a string is passed on
 * as written, so the canonical schema refuses a malformed one by its field's name.
 */
function decimalText(value: number | string): string {
  if (typeof value === 'string') return value;
  return Number.isFinite(value) ? new Dec(String(value)).toFixed() : String(value);
}

/** The text, when it is a decimal that arithmetic can take. */
function arithmetic(value: number | string): string | undefined {
  const text = decimalText(value);
  return DECIMAL_TEXT.test(text) ? text : undefined;
}

/** "2024-03-31T00:00:00" -> "2024-03-31"; anything else is left for the schema to refuse. */
function datePart(value: string): string {
  return value.length > 10 && value[10] === 'T' ? value.slice(0, 10) : value;
}

function accept<S extends z.ZodType>(recordId: string, schema: S, candidate: unknown): Mapped<z.output<S>> {
  const parsed = schema.safeParse(candidate);
  return parsed.success ? { kind: 'record', record: parsed.data } : failure(recordId, parsed.error);
}

function rowId(row: unknown, key: string, position: string): string {
  const value = typeof row === 'object' && row !== null ? (row as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' && value.length > 0 ? value : position;
}

function invalid(recordId: string, message: string): { kind: 'error'; error: SyncError } {
  return { kind: 'error', error: { recordId, code: 'RECORD_INVALID', message, severity: 'error', retryable: false } };
}

/** The first issue names the field; values are not quoted, so nothing sensitive rides along. */
function failure(recordId: string, error: z.ZodError): { kind: 'error'; error: SyncError } {
  const issue = error.issues[0];
  const path = issue?.path.join('.') ?? '';
  const code: SyncErrorCode = /cusip|isin/i.test(path) ? 'IDENTIFIER_INVALID' : /currency/i.test(path) ? 'CURRENCY_NOT_SUPPORTED' : 'RECORD_INVALID';
  const message = `${path === '' ? 'record' : path}: ${issue?.message ?? 'invalid'}`;
  return { kind: 'error', error: { recordId, code, message, severity: code === 'RECORD_INVALID' ? 'error' : 'warning', retryable: false } };
}
