import type { Decimal } from 'decimal.js';

const digitsByCurrency = new Map<string, number>();

/** How many decimal places a currency's amounts carry (2 for USD, 0 for JPY), from ICU's ISO 4217 data. */
export function minorUnits(currency: string): number {
  let digits = digitsByCurrency.get(currency);
  if (digits === undefined) {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    digitsByCurrency.set(currency, digits);
  }
  return digits;
}

/** Rounds an amount to its currency's minor unit, half to even, as ledgers do. */
export function roundToMinorUnit(amount: Decimal, currency: string): Decimal {
  return amount.toDecimalPlaces(minorUnits(currency));
}
