import { Decimal } from 'decimal.js';
import { z } from 'zod';

/**
 * Amounts, quantities and prices: never a JS number. 40 significant digits covers NUMERIC(38, 10)
 * and more; the exponent limits keep toString and JSON in fixed notation.
 */
export const Dec = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -9e15, toExpPos: 9e15 });
export type Dec = Decimal;

/** A plain decimal: optional minus, no leading zeros, no exponent. */
export const DECIMAL_TEXT = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** A decimal as it travels in JSON: a plain string such as "-1234.5600", never an exponent. */
export const DecimalStringSchema = z.string().regex(DECIMAL_TEXT, 'must be a decimal number written as a string, e.g. "1234.56"');

/** Parses a decimal string into a Decimal. */
export const DecimalSchema = DecimalStringSchema.transform((text) => new Dec(text));

/** The JSON form of a Decimal: fixed notation, never an exponent. */
export function decimalText(value: Decimal): string {
  return value.toFixed();
}
