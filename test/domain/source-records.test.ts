import { describe, expect, it } from 'vitest';
import { applyChanges, contentHash, deterministicEventId, diffRecord, observationEventId, removedIds, toWire } from '../../src/domain/ingestion/source-records.ts';
import { Dec } from '../../src/domain/money/decimal.ts';
import { HoldingRecordSchema } from '../../src/domain/platforms/records.ts';

const holding = HoldingRecordSchema.parse({
  platformRecordId: 'h-1',
  platformAccountId: 'a-1',
  security: { ticker: 'AAPL', cusip: '037833100', isin: 'US0378331005', name: 'Apple Inc.', assetClass: 'equity', securityType: 'stock' },
  quantity: '100',
  price: '189.2500',
  marketValue: '18925.00',
  currency: 'USD',
  asOf: '2026-11-20',
});

describe('deterministic ingestion', () => {
  it('writes decimals as fixed-notation strings and hashes content independently of key order', () => {
    const wire = toWire({ ...holding, price: new Dec('0.00000001') });
    expect(wire.price).toBe('0.00000001');
    expect(wire.quantity).toBe('100');
    expect(contentHash({ b: 1, a: '2' })).toBe(contentHash({ a: '2', b: 1 }));
    expect(contentHash(toWire(holding))).not.toBe(contentHash(toWire({ ...holding, quantity: new Dec('101') })));
  });

  it('skips unchanged content, reports only the changed fields, and folds them back', () => {
    const before = toWire(holding);
    expect(diffRecord(undefined, before)).toEqual({ kind: 'inserted' });
    expect(diffRecord(before, toWire(holding))).toEqual({ kind: 'skipped' });
    const after = toWire({ ...holding, quantity: new Dec('150'), marketValue: new Dec('28387.5'), costBasis: new Dec('12000') });
    const change = diffRecord(before, after);
    expect(change).toEqual({ kind: 'updated', changes: { quantity: '150', marketValue: '28387.5', costBasis: '12000' } });
    expect(applyChanges(before, change.kind === 'updated' ? change.changes : {})).toEqual(after);
    const dropped = diffRecord(after, before);
    expect(dropped).toEqual({ kind: 'updated', changes: { quantity: '100', marketValue: '18925', costBasis: null } });
    expect(applyChanges(after, dropped.kind === 'updated' ? dropped.changes : {})).toEqual(before);
  });

  it('names the records a complete snapshot no longer holds', () => {
    expect([...removedIds(['h-1', 'h-2', 'h-3'], new Set(['h-1', 'h-3', 'h-4']))]).toEqual(['h-2']);
  });

  it('derives ULID-shaped event ids from identity and content', () => {
    const id = observationEventId('c1', 'holdings', 'h-1', 1, contentHash(toWire(holding)));
    expect(id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
    expect(observationEventId('c1', 'holdings', 'h-1', 1, contentHash(toWire(holding)))).toBe(id);
    expect(observationEventId('c2', 'holdings', 'h-1', 1, contentHash(toWire(holding)))).not.toBe(id);
    expect(observationEventId('c1', 'holdings', 'h-1', 3, contentHash(toWire(holding)))).not.toBe(id);
    expect(deterministicEventId('a', 'bc')).not.toBe(deterministicEventId('ab', 'c'));
  });
});
