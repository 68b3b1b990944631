import type { Decimal } from 'decimal.js';
import type { DataFilters } from '../connections/events.ts';
import { relativeDifference } from '../conflicts/detection.ts';
import { DomainRuleViolation } from '../decider.ts';
import { Dec } from '../money/decimal.ts';
import { roundToMinorUnit } from '../money/minor-units.ts';
import type { HoldingRecord } from '../platforms/records.ts';
import type { SyncError } from '../platforms/sync-error.ts';
import type { FxRateTable } from './fx.ts';
import { securityKey, type SecurityKey } from './security-identity.ts';

export interface SourceHolding {
  readonly connectionId: string;
  readonly holding: HoldingRecord;
  /** Epoch ms of the sync that last saw it. */
  readonly lastSyncedAt: number;
}

export interface PortfolioLink {
  readonly connectionId: string;
  readonly weight: Decimal;
  readonly includeInTotals: boolean;
  readonly filters: DataFilters;
}

export interface SourceBreakdown {
  readonly connectionId: string;
  readonly platformRecordId: string;
  readonly quantity: Decimal;
  /** In the portfolio's base currency, rounded to its minor unit. */
  readonly value: Decimal;
  readonly lastSyncedAt: number;
  /** 1 when the source agrees with the consolidated quantity, falling towards 0 as it departs from it. */
  readonly confidence: Decimal;
}

export interface ConsolidatedHolding {
  readonly securityKey: SecurityKey;
  readonly name: string;
  readonly ticker?: string;
  readonly assetClass: HoldingRecord['security']['assetClass'];
  readonly quantity: Decimal;
  readonly value: Decimal;
  readonly percentOfPortfolio: Decimal;
  readonly sources: readonly SourceBreakdown[];
}

export interface Consolidation {
  readonly holdings: readonly ConsolidatedHolding[];
  /** Equals the sum of the holdings' values exactly. */
  readonly totalValue: Decimal;
  /** Records that could not be consolidated (unknown identifier or currency); the rest still are. */
  readonly errors: readonly SyncError[];
}

/** What settled conflicts decided for a security: the quantity that stands instead of the sum of sources. */
export type SettledQuantities = ReadonlyMap<SecurityKey, Decimal>;

const PERCENT_SCALE = 4;

/**
 * Folds every linked source's holdings into one view in the base currency. Sources reporting the
 * same security add up, unless a settled conflict decided the quantity (two sources reporting one
 * position); each value is rounded to the base currency's minor unit before it is added, so totals
 * are sums of exactly the parts shown.
 */
export function consolidateHoldings(
  sources: Iterable<SourceHolding>,
  links: readonly PortfolioLink[],
  baseCurrency: string,
  fx: FxRateTable,
  settled: SettledQuantities = new Map(),
): Consolidation {
  const linkByConnection = new Map(links.map((l) => [l.connectionId, l]));
  const groups = new Map<SecurityKey, { first: HoldingRecord; sources: SourceBreakdown[]; unitValue: Decimal }>();
  const errors: SyncError[] = [];

  for (const source of sources) {
    const link = linkByConnection.get(source.connectionId);
    if (!link || !link.includeInTotals) continue;
    const { holding } = source;
    const key = securityKey(holding.security);
    if (!key) {
      errors.push(recordError(holding, 'IDENTIFIER_INVALID', 'no valid ISIN, CUSIP or ticker identifies the security'));
      continue;
    }
    if (!passesFilters(key, holding, link.filters, 'security')) continue;
    let rate: Decimal;
    try {
      rate = fx.rate(holding.currency, baseCurrency, holding.asOf);
    } catch (error) {
      if (error instanceof DomainRuleViolation && error.code === 'CURRENCY_NOT_SUPPORTED') {
        errors.push(recordError(holding, 'CURRENCY_NOT_SUPPORTED', error.message));
        continue;
      }
      throw error;
    }
    const quantity = holding.quantity.times(link.weight);
    const value = roundToMinorUnit(holding.marketValue.times(link.weight).times(rate), baseCurrency);
    if (!passesFilters(key, holding, link.filters, 'value', value)) continue;
    const group = groups.get(key) ?? { first: holding, sources: [], unitValue: holding.quantity.isZero() ? new Dec(0) : holding.marketValue.times(rate).div(holding.quantity) };
    group.sources.push({ connectionId: source.connectionId, platformRecordId: holding.platformRecordId, quantity, value, lastSyncedAt: source.lastSyncedAt, confidence: new Dec(1) });
    groups.set(key, group);
  }

  const draft = [...groups.entries()].map(([key, group]) => {
    const summed = Dec.sum(...group.sources.map((s) => s.quantity));
    const quantity = settled.get(key) ?? summed;
    const value = settled.has(key) ? roundToMinorUnit(quantity.times(group.unitValue), baseCurrency) : Dec.sum(...group.sources.map((s) => s.value));
    const sources = group.sources.map((s) => ({ ...s, confidence: confidence(s.quantity, quantity, group.sources.length, settled.has(key)) }));
    return { key, group, quantity, value, sources };
  });
  const totalValue = draft.length === 0 ? new Dec(0) : Dec.sum(...draft.map((d) => d.value));
  const holdings = draft
    .map(({ key, group, quantity, value, sources }) => ({
      securityKey: key,
      name: group.first.security.name,
      ...(group.first.security.ticker ? { ticker: group.first.security.ticker } : {}),
      assetClass: group.first.security.assetClass,
      quantity,
      value,
      percentOfPortfolio: totalValue.isZero() ? new Dec(0) : value.div(totalValue).times(100).toDecimalPlaces(PERCENT_SCALE),
      sources,
    }))
    .sort((a, b) => b.value.comparedTo(a.value) || (a.securityKey < b.securityKey ? -1 : 1));
  return { holdings, totalValue, errors };
}

/** Settled quantities are what one position is; sources that add up are each fully believed. */
function confidence(sourceQuantity: Decimal, consolidated: Decimal, sourceCount: number, isSettled: boolean): Decimal {
  if (!isSettled || sourceCount === 1) return new Dec(1);
  return Dec.max(0, new Dec(1).minus(relativeDifference(sourceQuantity, consolidated))).toDecimalPlaces(4);
}

function passesFilters(key: SecurityKey, holding: HoldingRecord, filters: DataFilters, stage: 'security' | 'value', value?: Decimal): boolean {
  if (stage === 'security') {
    if (filters.includedAssetClasses && !filters.includedAssetClasses.includes(holding.security.assetClass)) return false;
    const excluded = filters.excludedSecurities;
    if (excluded) {
      const ids = [key, holding.security.isin, holding.security.cusip, holding.security.ticker];
      if (ids.some((id) => id !== undefined && excluded.includes(id))) return false;
    }
    return true;
  }
  return !(filters.minimumValue && value!.lt(filters.minimumValue));
}

function recordError(holding: HoldingRecord, code: SyncError['code'], message: string): SyncError {
  return { recordId: holding.platformRecordId, code, message, severity: 'error', retryable: false };
}
