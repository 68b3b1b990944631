import type { Decimal } from 'decimal.js';
import { DomainRuleViolation } from '../decider.ts';
import { Dec } from '../money/decimal.ts';

export const RESOLUTION_STRATEGIES = ['CLEARWAY_WINS', 'PLATFORM_WINS', 'MANUAL_REVIEW', 'MERGE', 'TIMESTAMP', 'VERSION_CONTROL'] as const;
export type ResolutionStrategy = (typeof RESOLUTION_STRATEGIES)[number];

/** One value a source reported for the disputed field; versions count up as observations arrive. */
export interface ConflictVersion {
  readonly version: number;
  readonly connectionId: string;
  readonly value: Decimal;
  /** When the platform observed it (epoch ms). */
  readonly observedAt: number;
}

export type ResolutionInput =
  | { readonly strategy: 'CLEARWAY_WINS' | 'PLATFORM_WINS' | 'TIMESTAMP' | 'MANUAL_REVIEW' }
  | { readonly strategy: 'MERGE'; readonly mergedValue?: Decimal }
  | { readonly strategy: 'VERSION_CONTROL'; readonly version: number };

export interface Resolution {
  readonly value: Decimal;
  /** The version whose value stands; absent for a merged value. */
  readonly version?: number;
}

/** Merged averages keep the precision the read models store (NUMERIC with 10 decimal places). */
const MERGE_SCALE = 10;

/**
 * The value a strategy settles on, or null for MANUAL_REVIEW (pending until a person decides).
 * CLEARWAY_WINS keeps what the ledger held before the dispute: the first version it accepted.
 */
export function resolveConflict(versions: readonly ConflictVersion[], input: ResolutionInput): Resolution | null {
  if (versions.length === 0) throw new DomainRuleViolation('CONFLICT_HAS_NO_VERSIONS', 'a conflict needs at least one observed value to resolve');
  switch (input.strategy) {
    case 'MANUAL_REVIEW':
      return null;
    case 'CLEARWAY_WINS':
      return pick(versions.reduce((a, b) => (b.version < a.version ? b : a)));
    case 'PLATFORM_WINS':
      return pick(versions.reduce((a, b) => (b.version > a.version ? b : a)));
    case 'TIMESTAMP':
      return pick(versions.reduce((a, b) => (b.observedAt > a.observedAt || (b.observedAt === a.observedAt && b.version > a.version) ? b : a)));
    case 'VERSION_CONTROL': {
      const chosen = versions.find((v) => v.version === input.version);
      if (!chosen) {
        throw new DomainRuleViolation('CONFLICT_VERSION_NOT_FOUND', `version ${input.version} does not exist; versions are 1 to ${versions.length}`);
      }
      return pick(chosen);
    }
    case 'MERGE': {
      if (input.mergedValue) return { value: input.mergedValue };
      const latestPerSource = new Map<string, ConflictVersion>();
      for (const v of versions) {
        const held = latestPerSource.get(v.connectionId);
        if (!held || v.version > held.version) latestPerSource.set(v.connectionId, v);
      }
      const values = [...latestPerSource.values()].map((v) => v.value);
      return { value: Dec.sum(...values).div(values.length).toDecimalPlaces(MERGE_SCALE) };
    }
  }
}

function pick(version: ConflictVersion): Resolution {
  return { value: version.value, version: version.version };
}
