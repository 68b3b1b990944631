import { describe, expect, it } from 'vitest';
import { conflictDecider, type ConflictCommand } from '../../src/domain/conflicts/conflict.ts';
import { DEFAULT_TOLERANCES, detectConflicts, relativeDifference, type Observation } from '../../src/domain/conflicts/detection.ts';
import { resolveConflict, type ConflictVersion } from '../../src/domain/conflicts/resolution.ts';
import { Dec } from '../../src/domain/money/decimal.ts';
import { runCommands, violationCode } from '../support/decider.ts';

const hour = 3600_000;
const obs = (connectionId: string, quantity: string, value: string, observedAt = 0): Observation => ({
  connectionId,
  quantity: new Dec(quantity),
  value: new Dec(value),
  observedAt,
});

describe('conflict detection', () => {
  it('measures differences relative to the larger magnitude', () => {
    expect(relativeDifference(new Dec(100), new Dec(99)).toFixed()).toBe('0.01');
    expect(relativeDifference(new Dec(0), new Dec(0)).toFixed()).toBe('0');
  });

  it('finds a duplicate when two sources report the same position, and a value mismatch when they price it apart', () => {
    const same = detectConflicts([obs('b', '100', '15000.00'), obs('a', '100.2', '15030.00')], DEFAULT_TOLERANCES);
    expect(same.map((c) => c.type)).toEqual(['DUPLICATE']);
    expect(same[0]!.observations.map((o) => o.connectionId)).toEqual(['a', 'b']);
    const priced = detectConflicts([obs('a', '100', '15000.00'), obs('b', '100', '15400.00')], DEFAULT_TOLERANCES);
    expect(priced.map((c) => c.type)).toEqual(['DUPLICATE', 'VALUE_MISMATCH']);
  });

  it('finds a quantity mismatch beyond tolerance, and nothing between stale observations or within one source', () => {
    expect(detectConflicts([obs('a', '100', '1'), obs('b', '90', '1')], DEFAULT_TOLERANCES).map((c) => c.type)).toEqual(['QUANTITY_MISMATCH']);
    expect(detectConflicts([obs('a', '100', '1', 0), obs('b', '90', '1', 25 * hour)], DEFAULT_TOLERANCES)).toEqual([]);
    expect(detectConflicts([obs('a', '100', '1'), obs('a', '90', '1')], DEFAULT_TOLERANCES)).toEqual([]);
  });

  it('honours per-portfolio tolerances', () => {
    const loose = { ...DEFAULT_TOLERANCES, quantity: new Dec('0.2') };
    expect(detectConflicts([obs('a', '100', '1'), obs('b', '90', '1')], loose).map((c) => c.type)).toEqual(['DUPLICATE']);
  });
});

const versions: ConflictVersion[] = [
  { version: 1, connectionId: 'orion', value: new Dec('100'), observedAt: 3 * hour },
  { version: 2, connectionId: 'addepar', value: new Dec('104'), observedAt: 1 * hour },
  { version: 3, connectionId: 'orion', value: new Dec('101'), observedAt: 2 * hour },
];

describe('conflict resolution strategies', () => {
  it('settles on the value each strategy names', () => {
    expect(resolveConflict(versions, { strategy: 'CLEARWAY_WINS' })).toEqual({ value: new Dec('100'), version: 1 });
    expect(resolveConflict(versions, { strategy: 'PLATFORM_WINS' })).toEqual({ value: new Dec('101'), version: 3 });
    expect(resolveConflict(versions, { strategy: 'TIMESTAMP' })).toEqual({ value: new Dec('100'), version: 1 });
    expect(resolveConflict(versions, { strategy: 'VERSION_CONTROL', version: 2 })).toEqual({ value: new Dec('104'), version: 2 });
    expect(resolveConflict(versions, { strategy: 'MANUAL_REVIEW' })).toBeNull();
  });

  it('merges to the given value or to the average of each source\'s latest value', () => {
    expect(resolveConflict(versions, { strategy: 'MERGE', mergedValue: new Dec('102.5') })!.value.toFixed()).toBe('102.5');
    expect(resolveConflict(versions, { strategy: 'MERGE' })!.value.toFixed()).toBe('102.5');
    const thirds: ConflictVersion[] = [versions[0]!, versions[1]!, { version: 3, connectionId: 'bd', value: new Dec('100'), observedAt: 0 }];
    expect(resolveConflict(thirds, { strategy: 'MERGE' })!.value.toFixed()).toBe('101.3333333333');
  });

  it('refuses a version that does not exist', () => {
    expect(() => resolveConflict(versions, { strategy: 'VERSION_CONTROL', version: 9 })).toThrow(/version 9 does not exist/);
  });
});

describe('conflict decider', () => {
  const detect: ConflictCommand = {
    kind: 'DetectConflict',
    conflictId: 'k1',
    portfolioId: 'p1',
    securityKey: 'US0378331005',
    conflictType: 'QUANTITY_MISMATCH',
    field: 'quantity',
    versions: [
      { version: 1, connectionId: 'orion', value: '100', observedAt: '2026-11-20T10:00:00.000Z' },
      { version: 2, connectionId: 'addepar', value: '90', observedAt: '2026-11-20T11:00:00.000Z' },
    ],
  };
  const run = (commands: ConflictCommand[]) => runCommands(conflictDecider, commands);
  const code = violationCode;

  it('detects once, resolves automatically per strategy and names strategy, value and resolver', () => {
    const { events, state } = run([detect, detect, { kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'PLATFORM_WINS' }, resolvedBy: 'system', automatic: true }]);
    expect(events.map((e) => e.type)).toEqual(['ConflictDetected', 'ConflictResolved']);
    expect(events[1]!.data).toEqual({ conflictId: 'k1', strategy: 'PLATFORM_WINS', value: '90', chosenVersion: 2, resolvedBy: 'system', automatic: true });
    expect(state.status).toBe('resolved');
  });

  it('leaves MANUAL_REVIEW conflicts pending and lets a person resolve them', () => {
    const { events, state } = run([detect, { kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'MANUAL_REVIEW' }, resolvedBy: 'system', automatic: true }]);
    expect(events.map((e) => e.type)).toEqual(['ConflictDetected']);
    expect(state.status).toBe('open');
    expect(code(() => conflictDecider.decide({ kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'MANUAL_REVIEW' }, resolvedBy: 'u1', automatic: false }, state))).toBe(
      'MANUAL_REVIEW_IS_NOT_A_RESOLUTION',
    );
  });

  it('under VERSION_CONTROL picks an earlier version after later ones arrived', () => {
    const { events, state } = run([
      detect,
      { kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'VERSION_CONTROL', version: 2 }, resolvedBy: 'system', automatic: true },
      { kind: 'ObserveConflictVersion', conflictId: 'k1', connectionId: 'addepar', value: '95', observedAt: '2026-11-21T11:00:00.000Z' },
      { kind: 'ObserveConflictVersion', conflictId: 'k1', connectionId: 'addepar', value: '95.0', observedAt: '2026-11-21T12:00:00.000Z' },
      { kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'VERSION_CONTROL', version: 1 }, resolvedBy: 'u1', automatic: false },
    ]);
    expect(events.map((e) => e.type)).toEqual(['ConflictDetected', 'ConflictResolved', 'ConflictVersionObserved', 'ConflictResolved']);
    expect(state.status === 'resolved' && state.versions.length).toBe(3);
    expect(events[3]!.data).toMatchObject({ value: '100', chosenVersion: 1, resolvedBy: 'u1' });
  });

  it('settles other strategies once, and refuses to resolve an ignored or missing conflict', () => {
    const resolved = run([detect, { kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'CLEARWAY_WINS' }, resolvedBy: 'system', automatic: true }]).state;
    expect(code(() => conflictDecider.decide({ kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'TIMESTAMP' }, resolvedBy: 'u1', automatic: false }, resolved))).toBe(
      'CONFLICT_ALREADY_RESOLVED',
    );
    const ignored = run([detect, { kind: 'IgnoreConflict', conflictId: 'k1', ignoredBy: 'u1', reason: 'known custodian lag' }]).state;
    expect(code(() => conflictDecider.decide({ kind: 'ResolveConflict', conflictId: 'k1', resolution: { strategy: 'MERGE' }, resolvedBy: 'u1', automatic: false }, ignored))).toBe('CONFLICT_IGNORED');
    expect(code(() => conflictDecider.decide({ kind: 'IgnoreConflict', conflictId: 'k9', ignoredBy: 'u1' }, conflictDecider.initialState()))).toBe('CONFLICT_NOT_FOUND');
  });
});
