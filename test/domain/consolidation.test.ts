import { describe, expect, it } from 'vitest';
import { consolidateHoldings, type PortfolioLink, type SourceHolding } from '../../src/domain/consolidation/consolidate.ts';
import { FxRateTable } from '../../src/domain/consolidation/fx.ts';
import { securityKey } from '../../src/domain/consolidation/security-identity.ts';
import { Dec } from '../../src/domain/money/decimal.ts';
import { HoldingRecordSchema } from '../../src/domain/platforms/records.ts';

const apple = { ticker: 'AAPL', cusip: '037833100', isin: 'US0378331005', name: 'Apple Inc.', assetClass: 'equity', securityType: 'stock' } as const;
const nestle = { ticker: 'NESN', isin: 'CH0038863350', name: 'Nestle SA', assetClass: 'equity', securityType: 'stock' } as const;
const bund = { isin: 'DE0001102580', name: 'Bund 2032', assetClass: 'fixed_income', securityType: 'bond' } as const;

function source(connectionId: string, id: string, security: object, quantity: string, marketValue: string, currency = 'USD'): SourceHolding {
  const holding = HoldingRecordSchema.parse({
    platformRecordId: id,
    platformAccountId: 'a1',
    security,
    quantity,
    price: new Dec(marketValue).div(quantity).toFixed(),
    marketValue,
    currency,
    asOf: '2026-11-20',
  });
  return { connectionId, holding, lastSyncedAt: 1 };
}

const link = (connectionId: string, extra: Partial<PortfolioLink> = {}): PortfolioLink => ({ connectionId, weight: new Dec(1), includeInTotals: true, filters: {}, ...extra });
const fx = new FxRateTable([
  { currency: 'CHF', quote: 'USD', asOf: '2026-11-01', rate: new Dec('1.1') },
  { currency: 'CHF', quote: 'USD', asOf: '2026-11-19', rate: new Dec('1.1333') },
  { currency: 'USD', quote: 'EUR', asOf: '2026-11-19', rate: new Dec('0.9') },
]);

describe('security identity', () => {
  it('meets a US ISIN and its CUSIP under one key, keeps other ISINs, falls back to the ticker', () => {
    expect(securityKey({ isin: 'US0378331005' })).toBe(securityKey({ cusip: '037833100' }));
    expect(securityKey({ isin: 'CH0038863350', ticker: 'NESN' })).toBe('ISIN:CH0038863350');
    expect(securityKey({ ticker: 'brk.b' })).toBe('TICKER:BRK.B');
    expect(securityKey({ isin: 'US0378331006' })).toBeNull();
  });
});

describe('FX rates', () => {
  it('uses the latest rate on or before the date, the inverse pair when needed, and refuses unknown currencies', () => {
    expect(fx.rate('CHF', 'USD', '2026-11-18').toFixed()).toBe('1.1');
    expect(fx.rate('CHF', 'USD', '2026-11-20').toFixed()).toBe('1.1333');
    expect(fx.rate('EUR', 'USD', '2026-11-20').toDecimalPlaces(6).toFixed()).toBe('1.111111');
    expect(() => fx.rate('JPY', 'USD', '2026-11-20')).toThrow(/no JPY\/USD rate/);
  });
});

describe('consolidation', () => {
  it('adds sources per security in the base currency with a per-source breakdown, and the total is the sum of the parts to the cent', () => {
    const result = consolidateHoldings(
      [
        source('orion', 'o1', apple, '10', '1892.505'),
        source('addepar', 'd1', { ...apple, ticker: undefined, cusip: undefined }, '5', '946.25'),
        source('orion', 'o2', nestle, '3', '333.333', 'CHF'),
      ],
      [link('orion'), link('addepar')],
      'USD',
      fx,
    );
    expect(result.errors).toEqual([]);
    const [aapl, nesn] = result.holdings;
    expect(aapl!.quantity.toFixed()).toBe('15');
    expect(aapl!.sources.map((s) => [s.connectionId, s.value.toFixed()])).toEqual([
      ['orion', '1892.5'],
      ['addepar', '946.25'],
    ]);
    expect(aapl!.value.toFixed()).toBe('2838.75');
    expect(nesn!.value.toFixed()).toBe('377.77');
    expect(result.totalValue.toFixed()).toBe('3216.52');
    expect(Dec.sum(...result.holdings.map((h) => h.value)).eq(result.totalValue)).toBe(true);
    expect(Dec.sum(...result.holdings.map((h) => h.percentOfPortfolio)).toDecimalPlaces(2).toFixed()).toBe('100');
  });

  it('lets a settled conflict decide the quantity of a position two sources report', () => {
    const result = consolidateHoldings(
      [source('orion', 'o1', apple, '100', '18900'), source('addepar', 'd1', apple, '90', '17010')],
      [link('orion'), link('addepar')],
      'USD',
      fx,
      new Map([[securityKey(apple)!, new Dec(100)]]),
    );
    expect(result.holdings[0]!.quantity.toFixed()).toBe('100');
    expect(result.holdings[0]!.value.toFixed()).toBe('18900');
    expect(result.holdings[0]!.sources.map((s) => s.confidence.toFixed())).toEqual(['1', '0.9']);
  });

  it('fails only the record with an unknown currency or identifier, and applies weights, filters and include-in-totals', () => {
    const result = consolidateHoldings(
      [
        source('orion', 'o1', apple, '10', '1890'),
        source('orion', 'o2', nestle, '1', '100', 'JPY'),
        source('orion', 'o3', bund, '1', '50', 'USD'),
        source('addepar', 'd1', apple, '10', '1890'),
        source('bd', 'b1', apple, '10', '1890'),
      ],
      [link('orion', { filters: { includedAssetClasses: ['equity'] } }), link('addepar', { weight: new Dec('0.5') }), link('bd', { includeInTotals: false })],
      'USD',
      fx,
    );
    expect(result.errors.map((e) => [e.recordId, e.code])).toEqual([['o2', 'CURRENCY_NOT_SUPPORTED']]);
    expect(result.holdings.map((h) => [h.securityKey, h.quantity.toFixed(), h.value.toFixed()])).toEqual([['CUSIP:037833100', '15', '2835']]);
    const filtered = consolidateHoldings([source('orion', 'o1', apple, '10', '1890')], [link('orion', { filters: { minimumValue: '2000' } })], 'USD', fx);
    expect(filtered.holdings).toEqual([]);
    expect(consolidateHoldings([source('orion', 'o1', apple, '10', '1890')], [link('orion', { filters: { excludedSecurities: ['AAPL'] } })], 'USD', fx).holdings).toEqual([]);
  });
});
