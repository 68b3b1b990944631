import { describe, expect, it } from 'vitest';
import { cusipCheckDigit, isinCheckDigit, isinFromCusip, isValidCusip, isValidIsin } from '../../src/domain/securities/identifiers.ts';

describe('security identifiers', () => {
  it('accepts real CUSIPs and ISINs and refuses a wrong check digit', () => {
    for (const cusip of ['037833100', '38259P508', '594918104', '46625H100']) expect(isValidCusip(cusip), cusip).toBe(true);
    for (const isin of ['US0378331005', 'GB0002634946', 'DE000BAY0017', 'AU0000XVGZA3', 'CH0038863350', 'JP3633400001']) expect(isValidIsin(isin), isin).toBe(true);
    expect(isValidCusip('037833101')).toBe(false);
    expect(isValidIsin('US0378331006')).toBe(false);
  });

  it('refuses malformed identifiers rather than computing a digit for them', () => {
    for (const isin of ['US037833100', '1S0378331005', 'US037833100X', 'us0378331005', 'US03783310-5']) expect(isValidIsin(isin), isin).toBe(false);
    for (const cusip of ['03783310', '03783310A', '0378331!0']) expect(isValidCusip(cusip), cusip).toBe(false);
    expect(() => cusipCheckDigit('0378')).toThrow(/8 characters/);
    expect(() => isinCheckDigit('12345678901')).toThrow(/country code/);
  });

  it('derives a US ISIN from its CUSIP', () => {
    expect(isinFromCusip('US', '037833100')).toBe('US0378331005');
    expect(isinFromCusip('US', '38259P508')).toBe('US38259P5089');
  });
});
