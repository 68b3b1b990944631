import type { Decimal } from 'decimal.js';
import { DomainRuleViolation } from '../decider.ts';
import { Dec } from '../money/decimal.ts';

/** A dated rate: one unit of `currency` is worth `rate` units of `quote`. */
export interface FxRate {
  readonly currency: string;
  readonly quote: string;
  /** YYYY-MM-DD */
  readonly asOf: string;
  readonly rate: Decimal;
}

export class CurrencyNotSupportedError extends DomainRuleViolation {
  constructor(readonly currency: string, readonly base: string, readonly onDate: string) {
    super('CURRENCY_NOT_SUPPORTED', `no ${currency}/${base} rate on or before ${onDate}`);
  }
}

/**
 * Rates by pair, each pair's dates sorted, looked up as the latest rate on or before a date. The
 * inverse of a pair is used when only the other direction is known.
 */
export class FxRateTable {
  private readonly byPair = new Map<string, { asOf: string; rate: Decimal }[]>();

  constructor(rates: Iterable<FxRate>) {
    for (const r of rates) {
      const key = `${r.currency}/${r.quote}`;
      const list = this.byPair.get(key) ?? [];
      list.push({ asOf: r.asOf, rate: r.rate });
      this.byPair.set(key, list);
    }
    for (const list of this.byPair.values()) list.sort((a, b) => (a.asOf < b.asOf ? -1 : a.asOf > b.asOf ? 1 : 0));
  }

  /** The rate turning `currency` into `base` on `onDate`; throws CURRENCY_NOT_SUPPORTED when none is known. */
  rate(currency: string, base: string, onDate: string): Decimal {
    if (currency === base) return new Dec(1);
    const direct = latestOnOrBefore(this.byPair.get(`${currency}/${base}`), onDate);
    if (direct) return direct;
    const inverse = latestOnOrBefore(this.byPair.get(`${base}/${currency}`), onDate);
    if (inverse && !inverse.isZero()) return new Dec(1).div(inverse);
    throw new CurrencyNotSupportedError(currency, base, onDate);
  }

  convert(amount: Decimal, currency: string, base: string, onDate: string): Decimal {
    return amount.times(this.rate(currency, base, onDate));
  }
}

function latestOnOrBefore(list: readonly { asOf: string; rate: Decimal }[] | undefined, onDate: string): Decimal | undefined {
  if (!list) return undefined;
  let found: Decimal | undefined;
  for (const entry of list) {
    if (entry.asOf > onDate) break;
    found = entry.rate;
  }
  return found;
}
