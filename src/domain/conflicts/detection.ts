import type { Decimal } from 'decimal.js';
import { Dec } from '../money/decimal.ts';

/** One source's view of one security in a portfolio, values already in the portfolio's base currency. */
export interface Observation {
  readonly connectionId: string;
  readonly quantity: Decimal;
  readonly value: Decimal;
  /** Epoch milliseconds. */
  readonly observedAt: number;
}

export interface ConflictTolerances {
  /** Relative quantity difference (0.01 = 1%) under which two sources are taken to report the same position. */
  readonly quantity: Decimal;
  /** Relative value difference above which two sources reporting the same position disagree on its value. */
  readonly value: Decimal;
  /** Two observations further apart than this (ms) are not compared: one of them is stale, not in conflict. */
  readonly windowMs: number;
}

export const DEFAULT_TOLERANCES: ConflictTolerances = { quantity: new Dec('0.005'), value: new Dec('0.01'), windowMs: 24 * 3600_000 };

export type ConflictType = 'DUPLICATE' | 'QUANTITY_MISMATCH' | 'VALUE_MISMATCH';

export interface DetectedConflict {
  readonly type: ConflictType;
  readonly field: 'quantity' | 'value';
  /** The pair, ordered by connection id so that detection is deterministic. */
  readonly observations: readonly [Observation, Observation];
}

/** |a - b| / max(|a|, |b|); 0 when both are 0. */
export function relativeDifference(a: Decimal, b: Decimal): Decimal {
  const scale = Dec.max(a.abs(), b.abs());
  return scale.isZero() ? new Dec(0) : a.minus(b).abs().div(scale);
}

/**
 * Compares every pair of sources reporting the same security. Quantities within tolerance mean
 * both report one position (a DUPLICATE that must not be counted twice), and then their values
 * may still disagree (VALUE_MISMATCH); quantities beyond tolerance are a QUANTITY_MISMATCH.
 */
export function detectConflicts(observations: readonly Observation[], tolerances: ConflictTolerances): DetectedConflict[] {
  const sorted = [...observations].sort((a, b) => (a.connectionId < b.connectionId ? -1 : a.connectionId > b.connectionId ? 1 : 0));
  const conflicts: DetectedConflict[] = [];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i]!;
      const b = sorted[j]!;
      if (a.connectionId === b.connectionId || Math.abs(a.observedAt - b.observedAt) > tolerances.windowMs) continue;
      if (relativeDifference(a.quantity, b.quantity).gt(tolerances.quantity)) {
        conflicts.push({ type: 'QUANTITY_MISMATCH', field: 'quantity', observations: [a, b] });
        continue;
      }
      conflicts.push({ type: 'DUPLICATE', field: 'quantity', observations: [a, b] });
      if (relativeDifference(a.value, b.value).gt(tolerances.value)) conflicts.push({ type: 'VALUE_MISMATCH', field: 'value', observations: [a, b] });
    }
  }
  return conflicts;
}
