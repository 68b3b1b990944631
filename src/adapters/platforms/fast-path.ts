import type { Decimal } from 'decimal.js';
import { CurrencySchema } from '../../domain/money/currency.ts';
import { DECIMAL_TEXT, Dec } from '../../domain/money/decimal.ts';
import { IsoDateSchema, TICKER } from '../../domain/platforms/records.ts';
import { isValidCusip, isValidIsin } from '../../domain/securities/identifiers.ts';

// The checks the adapters' mapping fast paths make before they take a record without the schemas
// (see each platform's mapping.ts): each is one the canonical schema makes, so a fast path can only
// be stricter than the schemas, never looser.

export type Json = Readonly<Record<string, unknown>>;

/** The schemas' own patterns, so the fast paths test exactly what they do. */
export { DECIMAL_TEXT, TICKER };
const MAX_ID_LENGTH = 200;

/** Schema verdicts on values that repeat from record to record, bounded. */
class VerdictCache {
  private readonly verdicts = new Map<string, boolean>();
  constructor(private readonly check: (value: string) => boolean) {}
  ok(value: string): boolean {
    let ok = this.verdicts.get(value);
    if (ok === undefined) {
      ok = this.check(value);
      if (this.verdicts.size >= 10_000) this.verdicts.clear();
      this.verdicts.set(value, ok);
    }
    return ok;
  }
}
export const dates = new VerdictCache((value) => IsoDateSchema.safeParse(value).success);
export const currencies = new VerdictCache((value) => CurrencySchema.safeParse(value).success);
// A fetch's transactions name the same few thousand securities over and over.
export const cusips = new VerdictCache(isValidCusip);
export const isins = new VerdictCache(isValidIsin);

export const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A record id as the canonical schema takes it. */
export function isIdText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

/** A JSON number or decimal text as the canonical schema takes it; undefined when not taken. */
export function fastDecimal(value: unknown): Decimal | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? new Dec(value) : undefined;
  return typeof value === 'string' && DECIMAL_TEXT.test(value) ? new Dec(value) : undefined;
}
