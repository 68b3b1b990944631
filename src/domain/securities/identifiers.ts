/**
 * Security identifiers and their check digits. CUSIP: 9 characters, the last a modulus-10
 * "double-add-double" digit over the first 8. ISIN: 12 characters, a 2-letter country code, a
 * 9-character national number and a Luhn digit over the letters expanded to numbers.
 */

const CUSIP_BODY = /^[0-9A-Z*@#]{8}$/;
const ISIN_BODY = /^[A-Z]{2}[0-9A-Z]{9}$/;

function cusipCharValue(char: string): number {
  const code = char.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 90) return code - 55;
  if (char === '*') return 36;
  if (char === '@') return 37;
  return 38; // '#'
}

export function cusipCheckDigit(body: string): string {
  if (!CUSIP_BODY.test(body)) throw new Error(`CUSIP body "${body}" must be 8 characters of 0-9, A-Z, *, @, #`);
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    let value = cusipCharValue(body[i]!);
    if (i % 2 === 1) value *= 2;
    sum += Math.floor(value / 10) + (value % 10);
  }
  return String((10 - (sum % 10)) % 10);
}

export function isValidCusip(value: string): boolean {
  return value.length === 9 && CUSIP_BODY.test(value.slice(0, 8)) && cusipCheckDigit(value.slice(0, 8)) === value[8];
}

export function isinCheckDigit(body: string): string {
  if (!ISIN_BODY.test(body)) throw new Error(`ISIN body "${body}" must be a 2-letter country code and 9 letters or digits`);
  let digits = '';
  for (const char of body) {
    const code = char.charCodeAt(0);
    digits += code >= 65 ? String(code - 55) : char;
  }
  // Luhn: double every second digit from the right, counting the check digit's place as first.
  let sum = 0;
  for (let i = digits.length - 1, double = true; i >= 0; i--, double = !double) {
    let value = digits.charCodeAt(i) - 48;
    if (double) {
      value *= 2;
      if (value > 9) value -= 9;
    }
    sum += value;
  }
  return String((10 - (sum % 10)) % 10);
}

export function isValidIsin(value: string): boolean {
  return value.length === 12 && ISIN_BODY.test(value.slice(0, 11)) && /[0-9]/.test(value[11]!) && isinCheckDigit(value.slice(0, 11)) === value[11];
}

/** The ISIN of a US or Canadian security is its country code, its CUSIP and a check digit. */
export function isinFromCusip(country: 'US' | 'CA', cusip: string): string {
  if (!isValidCusip(cusip)) throw new Error(`"${cusip}" is not a valid CUSIP`);
  const body = `${country}${cusip}`;
  return body + isinCheckDigit(body);
}
