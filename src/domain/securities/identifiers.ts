/**
 * Security identifiers and their check digits. CUSIP: 9 characters, the last a modulus-10
 * "double-add-double" digit over the first 8. ISIN: 12 characters, a 2-letter country code, a
 * 9-character national number and a Luhn digit over the letters expanded to numbers.
 * Written as character-code loops: adapters check every record they map.
 */

/** 0-9, A-Z as 10-35, then * @ # as 36-38 (CUSIP); -1 for anything else. */
function cusipCharValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 90) return code - 55;
  if (code === 42) return 36;
  if (code === 64) return 37;
  if (code === 35) return 38;
  return -1;
}

/** The check digit of an 8-character CUSIP body, or -1 when the body has a character CUSIPs cannot hold. */
function cusipDigit(value: string): number {
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    let v = cusipCharValue(value.charCodeAt(i));
    if (v < 0) return -1;
    if (i % 2 === 1) v *= 2;
    sum += Math.floor(v / 10) + (v % 10);
  }
  return (10 - (sum % 10)) % 10;
}

export function cusipCheckDigit(body: string): string {
  const digit = body.length === 8 ? cusipDigit(body) : -1;
  if (digit < 0) throw new Error(`CUSIP body "${body}" must be 8 characters of 0-9, A-Z, *, @, #`);
  return String(digit);
}

export function isValidCusip(value: string): boolean {
  return value.length === 9 && cusipDigit(value) === value.charCodeAt(8) - 48;
}

/**
 * The Luhn digit over an 11-character ISIN body, letters expanded to two digits each, or -1 when
 * the body is not a country code and 9 letters or digits.
 */
function isinDigit(value: string): number {
  let sum = 0;
  // Walk the expanded digits from the right; the rightmost is doubled (the check digit's place counts first).
  let double = true;
  for (let i = 10; i >= 0; i--) {
    const code = value.charCodeAt(i);
    const isDigit = code >= 48 && code <= 57;
    const isLetter = code >= 65 && code <= 90;
    if (!(isLetter || (isDigit && i >= 2))) return -1;
    const expanded = isDigit ? code - 48 : code - 55;
    // A letter is two digits (A = 10): its low digit stands to the right of its high one.
    sum += luhn(expanded % 10, double);
    double = !double;
    if (expanded >= 10) {
      sum += luhn(Math.floor(expanded / 10), double);
      double = !double;
    }
  }
  return (10 - (sum % 10)) % 10;
}

function luhn(digit: number, double: boolean): number {
  if (!double) return digit;
  return digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
}

export function isinCheckDigit(body: string): string {
  const digit = body.length === 11 ? isinDigit(body) : -1;
  if (digit < 0) throw new Error(`ISIN body "${body}" must be a 2-letter country code and 9 letters or digits`);
  return String(digit);
}

export function isValidIsin(value: string): boolean {
  return value.length === 12 && isinDigit(value) === value.charCodeAt(11) - 48;
}

/** The ISIN of a US or Canadian security is its country code, its CUSIP and a check digit. */
export function isinFromCusip(country: 'US' | 'CA', cusip: string): string {
  if (!isValidCusip(cusip)) throw new Error(`"${cusip}" is not a valid CUSIP`);
  const body = `${country}${cusip}`;
  return body + isinCheckDigit(body);
}
