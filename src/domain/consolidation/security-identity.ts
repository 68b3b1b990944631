import type { Security } from '../platforms/records.ts';
import { isValidCusip, isValidIsin } from '../securities/identifiers.ts';

/**
 * One key per security across platforms. A US or Canadian ISIN embeds the CUSIP, so both resolve
 * to the CUSIP key and a source that sends only one of them still meets the others; other ISINs
 * are their own key; a ticker is the last resort.
 */
export type SecurityKey = string;

export function securityKey(security: Pick<Security, 'ticker' | 'cusip' | 'isin'>): SecurityKey | null {
  if (security.isin && isValidIsin(security.isin)) {
    const country = security.isin.slice(0, 2);
    return country === 'US' || country === 'CA' ? `CUSIP:${security.isin.slice(2, 11)}` : `ISIN:${security.isin}`;
  }
  if (security.cusip && isValidCusip(security.cusip)) return `CUSIP:${security.cusip}`;
  if (security.ticker) return `TICKER:${security.ticker.toUpperCase()}`;
  return null;
}
