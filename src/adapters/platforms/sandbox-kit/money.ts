import { Decimal } from 'decimal.js';
import { DECIMAL_TEXT, Dec } from '../../../domain/money/decimal.ts';
import { SandboxInputError } from './input-error.ts';
import { minorUnits } from '../../../domain/money/minor-units.ts';

/** Decimal helpers for the sandbox: the platform rounds money half-up to the currency's minor unit. */

export function money(value: Decimal, currency: string): string {
  return value.toFixed(minorUnits(currency), Decimal.ROUND_HALF_UP);
}

/** Units of USD per unit of each currency: fixed, so converted values stay deterministic. */
export const SANDBOX_USD_PER_UNIT: Readonly<Record<string, string>> = { USD: '1', EUR: '1.08', GBP: '1.27', CAD: '0.73', CHF: '1.12', JPY: '0.0064' };

export function convert(value: Decimal, from: string, to: string): Decimal {
  if (from === to) return value;
  const fromRate = SANDBOX_USD_PER_UNIT[from];
  const toRate = SANDBOX_USD_PER_UNIT[to];
  if (fromRate === undefined || toRate === undefined) throw new Error(`no sandbox exchange rate between ${from} and ${to}`);
  return value.mul(fromRate).div(toRate);
}

export const SUPPORTED_CURRENCIES = Object.keys(SANDBOX_USD_PER_UNIT);


/** Parses a decimal string given by a caller of the world; names the field when it is not one. */
export function parseDecimal(field: string, text: string): Decimal {
  if (!DECIMAL_TEXT.test(text)) throw new SandboxInputError(field, `${field} must be a decimal number written as a string, e.g. "12.50"`);
  return new Dec(text);
}
