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
  type SecurityType,
  type TaxLotRecord,
  type TransactionRecord,
} from '../../../domain/platforms/records.ts';
import type { SyncError, SyncErrorCode } from '../../../domain/platforms/sync-error.ts';
import type { Fetched } from '../../../ports/platform-adapter.ts';
import {
  OrionAccountSchema,
  OrionAssetSchema,
  OrionPerformanceSchema,
  OrionTaxLotSchema,
  OrionTransactionSchema,
  OrionVerboseAssetSchema,
  type OrionNumber,
  type OrionProductType,
  type OrionTransactionStatus,
} from './wire.ts';

/**
 * Orion records -> canonical records. Pure: each function takes one record as it came off the
 * wire and answers the canonical record or the SyncError that names why it could not be taken.
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
  const wire = OrionAccountSchema.safeParse(raw);
  if (!wire.success) return failure(rawRecordId(raw, fallbackId), 'account', wire.error);
  const a = wire.data;
  const mapped = AccountRecordSchema.safeParse({
    platformAccountId: a.id,
    name: a.name,
    number: text(a.number),
    accountType: text(a.accountType),
    custodian: text(a.custodian),
    currency: a.currency ?? DEFAULT_CURRENCY,
    status: a.isActive ? 'open' : 'closed',
    openedOn: a.accountStartDate ? dateOnly(a.accountStartDate) : undefined,
    marketValue: a.currentValue === null || a.currentValue === undefined ? undefined : decimalInput(a.currentValue),
  });
  return mapped.success ? { kind: 'record', record: mapped.data } : failure(a.id, 'account', mapped.error);
}

export function mapAsset(raw: unknown, fallbackId = 'asset'): Mapped<HoldingRecord> {
  const wire = OrionAssetSchema.safeParse(raw);
  if (!wire.success) return failure(rawRecordId(raw, fallbackId), 'asset', wire.error);
  const a = wire.data;
  const mapped = HoldingRecordSchema.safeParse({
    platformRecordId: a.id,
    platformAccountId: a.accountId,
    security: assetSecurity(a),
    quantity: decimalInput(a.currentShares),
    price: decimalInput(a.currentPrice),
    marketValue: decimalInput(a.currentValue),
    costBasis: a.costBasis === null || a.costBasis === undefined ? undefined : decimalInput(a.costBasis),
    currency: a.currency ?? DEFAULT_CURRENCY,
    asOf: dateOnly(a.asOfDate),
  });
  return mapped.success ? { kind: 'record', record: mapped.data } : failure(a.id, 'asset', mapped.error);
}

/**
 * A verbose asset -> its open tax lots (a lot with a sell date has been sold and is not held).
 * The asset's own failure is one error; a bad lot is an error of its own and its siblings still map.
 */
export function mapVerboseAsset(raw: unknown, fallbackId = 'asset'): Mapped<TaxLotRecord>[] {
  const wire = OrionVerboseAssetSchema.safeParse(raw);
  if (!wire.success) return [failure(rawRecordId(raw, fallbackId), 'asset', wire.error)];
  const asset = wire.data;
  const security = assetSecurity(asset);
  const asOf = dateOnly(asset.asOfDate);
  const currency = asset.currency ?? DEFAULT_CURRENCY;
  const results: Mapped<TaxLotRecord>[] = [];
  for (const [index, rawLot] of asset.taxLots.entries()) {
    const lotId = rawRecordId(rawLot, `${asset.id}/lot-${index}`);
    const lot = OrionTaxLotSchema.safeParse(rawLot);
    if (!lot.success) {
      results.push(failure(lotId, 'tax lot', lot.error));
      continue;
    }
    const l = lot.data;
    if (l.sellDate) continue;
    const mapped = TaxLotRecordSchema.safeParse({
      platformRecordId: l.id,
      platformAccountId: asset.accountId,
      holdingRecordId: asset.id,
      security,
      acquiredOn: dateOnly(l.acquiredDate),
      quantity: decimalInput(l.numberOfUnits),
      costBasis: decimalInput(l.costAmount),
      method: LOT_METHODS[l.method],
      term: lotTerm(dateOnly(l.holdingPeriodDate ?? l.acquiredDate), asOf),
      currency,
    });
    results.push(mapped.success ? { kind: 'record', record: mapped.data } : failure(l.id, 'tax lot', mapped.error));
  }
  return results;
}

export function mapTransaction(raw: unknown, fallbackId = 'transaction'): Mapped<TransactionRecord> {
  const wire = OrionTransactionSchema.safeParse(raw);
  if (!wire.success) return failure(rawRecordId(raw, fallbackId), 'transaction', wire.error);
  const t = wire.data;
  const kind = transactionKind(t.financialType, t.type);
  if (kind === undefined) {
    return {
      kind: 'error',
      error: recordError(t.id, 'RECORD_INVALID', `Orion transaction ${t.id}: financialType "${t.financialType ?? ''}" / type "${t.type ?? ''}" is not a kind of transaction the ledger knows`),
    };
  }
  const ticker = identifier(t.ticker);
  const cusip = identifier(t.cusip);
  const isin = identifier(t.isin);
  const named = ticker ?? cusip ?? isin;
  const mapped = TransactionRecordSchema.safeParse({
    platformRecordId: t.id,
    platformAccountId: t.accountId,
    type: kind.type,
    status: TRANSACTION_STATUSES[t.status],
    tradeDate: dateOnly(t.transDate),
    settleDate: t.settleDate ? dateOnly(t.settleDate) : undefined,
    // A transaction names its security only by identifiers; its class and type live on the asset.
    security: named === undefined ? undefined : { ticker, cusip, isin, name: named, assetClass: 'other', securityType: 'other' },
    quantity: t.noUnits === null || t.noUnits === undefined ? undefined : absolute(decimalInput(t.noUnits)),
    price: t.navPrice === null || t.navPrice === undefined ? undefined : decimalInput(t.navPrice),
    amount: signed(decimalInput(t.transAmount), kind.direction),
    currency: t.currency ?? DEFAULT_CURRENCY,
    description: text(t.transactionDescription),
  });
  return mapped.success ? { kind: 'record', record: mapped.data } : failure(t.id, 'transaction', mapped.error);
}

export function mapPerformance(raw: unknown, fallbackId = 'performance'): Mapped<PerformanceRecord> {
  const wire = OrionPerformanceSchema.safeParse(raw);
  if (!wire.success) return failure(rawRecordId(raw, fallbackId), 'performance', wire.error);
  const p = wire.data;
  const recordId = `${p.accountId}/${p.period}`;
  const period = PERFORMANCE_PERIODS[p.period];
  if (period === undefined) {
    return { kind: 'error', error: recordError(recordId, 'RECORD_INVALID', `Orion performance ${recordId}: period "${p.period}" is not one the ledger keeps`) };
  }
  const twr = decimalInput(p.twr);
  const mapped = PerformanceRecordSchema.safeParse({
    platformAccountId: p.accountId,
    period,
    startDate: dateOnly(p.startDate),
    endDate: dateOnly(p.endDate),
    // Orion reports percent; the ledger keeps a fraction.
    returnRate: DECIMAL_TEXT.test(twr) ? new Dec(twr).div(100).toFixed() : twr,
    beginningValue: decimalInput(p.beginningValue),
    endingValue: decimalInput(p.endingValue),
    netFlows: decimalInput(p.netContributions),
    currency: p.currency ?? DEFAULT_CURRENCY,
  });
  return mapped.success ? { kind: 'record', record: mapped.data } : failure(recordId, 'performance', mapped.error);
}

// ---- vocabularies -------------------------------------------------------------------------------

const TRANSACTION_STATUSES: Record<OrionTransactionStatus, TransactionRecord['status']> = {
  Complete: 'COMPLETED',
  Pending: 'PENDING',
  PendingCorpAction: 'PENDING',
  Rejected: 'FAILED',
  Reversed: 'CANCELLED',
  Inactive: 'CANCELLED',
};

type Direction = 1 | -1;
type TransactionKind = { readonly type: TransactionRecord['type']; readonly direction: Direction };

/** financialType (and, when it is missing, the plainer `type`) -> the ledger's type and which way the cash went. */
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

function transactionKind(financialType: string | null | undefined, type: string | null | undefined): TransactionKind | undefined {
  return (financialType ? TRANSACTION_KINDS.get(financialType.toLowerCase()) : undefined) ?? (type ? TRANSACTION_KINDS.get(type.toLowerCase()) : undefined);
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

export function assetClassOf(name: string | null | undefined): AssetClass {
  if (!name) return 'other';
  for (const [words, assetClass] of ASSET_CLASS_WORDS) if (words.test(name)) return assetClass;
  return 'other';
}

/** Orion's productType does not tell a stock from an ETF; both come out as 'stock'. */
const PRODUCT_TYPES: Record<OrionProductType, SecurityType> = {
  StockOrETF: 'stock',
  MutualFund: 'mutual_fund',
  Bond: 'bond',
  Option: 'option',
  CD: 'cd',
  Annuity: 'annuity',
};

export function securityTypeOf(productType: OrionProductType | null | undefined, isCustodialCash: boolean | null | undefined): SecurityType {
  if (isCustodialCash) return 'cash';
  return productType ? PRODUCT_TYPES[productType] : 'other';
}

function assetSecurity(a: z.output<typeof OrionAssetSchema>) {
  return {
    ticker: identifier(a.ticker),
    cusip: identifier(a.cusip),
    isin: identifier(a.isin),
    name: a.name,
    assetClass: a.isCustodialCash ? 'cash' : assetClassOf(a.assetClass),
    securityType: securityTypeOf(a.productType, a.isCustodialCash),
  };
}

/** US rule: a lot held more than one year (from its holding-period date) is long term. */
export function lotTerm(holdingPeriodDate: string, asOf: string): TaxLotRecord['term'] {
  const start = holdingPeriodDate.slice(0, 10);
  const year = Number(start.slice(0, 4));
  if (!Number.isInteger(year)) return 'SHORT';
  const oneYearOn = `${String(year + 1).padStart(4, '0')}${start.slice(4)}`;
  return asOf > oneYearOn ? 'LONG' : 'SHORT';
}

// ---- small conversions -------------------------------------------------------------------------

const DECIMAL_TEXT = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const ZERO = /^-?0(\.0+)?$/;

/**
 * A JSON number as decimal text: its shortest round-trip form, which is what Orion wrote for any
 * value a double carries exactly; exponent forms (1e-7) are written out. Strings pass through for
 * the canonical schema to judge.
 */
export function decimalInput(value: OrionNumber): string {
  if (typeof value === 'string') return value.trim();
  const written = String(value);
  return written.includes('e') ? new Dec(value).toFixed() : written;
}

function absolute(value: string): string {
  return value.startsWith('-') ? value.slice(1) : value;
}

function signed(value: string, direction: Direction): string {
  const magnitude = absolute(value);
  return direction === -1 && !ZERO.test(magnitude) ? `-${magnitude}` : magnitude;
}

/** "2024-03-28T00:00:00" -> "2024-03-28"; anything else is left for the schema to refuse. */
export function dateOnly(value: string): string {
  return value.length > 10 && value[10] === 'T' ? value.slice(0, 10) : value;
}

function text(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function identifier(value: string | null | undefined): string | undefined {
  return text(value)?.toUpperCase();
}

function recordError(recordId: string, code: SyncErrorCode, message: string): SyncError {
  return { recordId, code, message, severity: 'error', retryable: false };
}

function failure(recordId: string, what: string, error: z.ZodError): { kind: 'error'; error: SyncError } {
  const paths = error.issues.map((issue) => issue.path.map(String).join('.'));
  const code: SyncErrorCode = paths.some((p) => /(^|\.)(cusip|isin)$/.test(p))
    ? 'IDENTIFIER_INVALID'
    : paths.some((p) => /(^|\.)currency$/.test(p))
      ? 'CURRENCY_NOT_SUPPORTED'
      : 'RECORD_INVALID';
  const detail = error.issues.map((issue, i) => `${paths[i] || '(record)'} ${issue.message}`).join('; ');
  return { kind: 'error', error: recordError(recordId, code, `Orion ${what} ${recordId}: ${detail}`) };
}
