import { DomainRuleViolation, type Decider, type DomainEvent } from '../decider.ts';
import type { EventData } from '../events/catalogue.ts';
import { Dec } from '../money/decimal.ts';
import type { ConflictDetected, ConflictIgnored, ConflictResolved, ConflictVersionObserved } from './events.ts';
import { resolveConflict, type ConflictVersion, type ResolutionInput } from './resolution.ts';

type VersionData = EventData<typeof ConflictVersionObserved>['version'];

export type ConflictEvent =
  | DomainEvent<'ConflictDetected', EventData<typeof ConflictDetected>>
  | DomainEvent<'ConflictVersionObserved', EventData<typeof ConflictVersionObserved>>
  | DomainEvent<'ConflictResolved', EventData<typeof ConflictResolved>>
  | DomainEvent<'ConflictIgnored', EventData<typeof ConflictIgnored>>;

export type ConflictCommand =
  | ({ readonly kind: 'DetectConflict' } & EventData<typeof ConflictDetected>)
  | { readonly kind: 'ObserveConflictVersion'; readonly conflictId: string; readonly connectionId: string; readonly value: string; readonly observedAt: string }
  | { readonly kind: 'ResolveConflict'; readonly conflictId: string; readonly resolution: ResolutionInput; readonly resolvedBy: string; readonly automatic: boolean }
  | { readonly kind: 'IgnoreConflict'; readonly conflictId: string; readonly ignoredBy: string; readonly reason?: string };

export type ConflictState =
  | { readonly status: 'absent' }
  | {
      readonly status: 'open' | 'resolved' | 'ignored';
      readonly detected: EventData<typeof ConflictDetected>;
      readonly versions: readonly VersionData[];
      readonly resolution?: EventData<typeof ConflictResolved>;
    };

export const conflictStreamId = (conflictId: string) => `conflict-${conflictId}`;

function toDomainVersion(v: VersionData): ConflictVersion {
  return { version: v.version, connectionId: v.connectionId, value: new Dec(v.value), observedAt: Date.parse(v.observedAt) };
}

export const conflictDecider: Decider<ConflictState, ConflictCommand, ConflictEvent> = {
  initialState: () => ({ status: 'absent' }),

  decide(command, state) {
    switch (command.kind) {
      case 'DetectConflict': {
        const { kind: _kind, ...data } = command;
        // Detection runs after every sync: finding the same conflict again changes nothing.
        return state.status === 'absent' ? [{ type: 'ConflictDetected', data }] : [];
      }
      case 'ObserveConflictVersion': {
        const current = requireConflict(state, command.conflictId);
        const latest = current.versions.filter((v) => v.connectionId === command.connectionId).at(-1);
        if (latest && new Dec(latest.value).eq(command.value)) return [];
        const version = { version: current.versions.length + 1, connectionId: command.connectionId, value: command.value, observedAt: command.observedAt };
        return [{ type: 'ConflictVersionObserved', data: { conflictId: command.conflictId, version } }];
      }
      case 'ResolveConflict': {
        const current = requireConflict(state, command.conflictId);
        if (current.status === 'ignored') throw new DomainRuleViolation('CONFLICT_IGNORED', `conflict ${command.conflictId} was ignored`);
        // Under version control every version stays choosable; other strategies settle a conflict once.
        if (current.status === 'resolved' && command.resolution.strategy !== 'VERSION_CONTROL') {
          throw new DomainRuleViolation('CONFLICT_ALREADY_RESOLVED', `conflict ${command.conflictId} is already resolved`);
        }
        const resolution = resolveConflict(current.versions.map(toDomainVersion), command.resolution);
        if (!resolution) {
          if (command.automatic) return [];
          throw new DomainRuleViolation('MANUAL_REVIEW_IS_NOT_A_RESOLUTION', 'MANUAL_REVIEW leaves a conflict pending; resolve it with another strategy');
        }
        const strategy = command.resolution.strategy as Exclude<ResolutionInput['strategy'], 'MANUAL_REVIEW'>;
        return [
          {
            type: 'ConflictResolved',
            data: {
              conflictId: command.conflictId,
              strategy,
              value: resolution.value.toFixed(),
              ...(resolution.version !== undefined ? { chosenVersion: resolution.version } : {}),
              resolvedBy: command.resolvedBy,
              automatic: command.automatic,
            },
          },
        ];
      }
      case 'IgnoreConflict': {
        const current = requireConflict(state, command.conflictId);
        if (current.status === 'ignored') return [];
        if (current.status === 'resolved') throw new DomainRuleViolation('CONFLICT_ALREADY_RESOLVED', `conflict ${command.conflictId} is already resolved`);
        return [{ type: 'ConflictIgnored', data: { conflictId: command.conflictId, ignoredBy: command.ignoredBy, ...(command.reason ? { reason: command.reason } : {}) } }];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'ConflictDetected':
        return { status: 'open', detected: event.data, versions: event.data.versions };
      case 'ConflictVersionObserved':
        // A new value from a source reopens a settled conflict: the dispute is not the one that was settled.
        return state.status === 'absent' ? state : { ...state, status: state.status === 'ignored' ? 'ignored' : 'open', versions: [...state.versions, event.data.version] };
      case 'ConflictResolved':
        return state.status === 'absent' ? state : { ...state, status: 'resolved', resolution: event.data };
      case 'ConflictIgnored':
        return state.status === 'absent' ? state : { ...state, status: 'ignored' };
    }
  },
};

function requireConflict(state: ConflictState, conflictId: string): Exclude<ConflictState, { status: 'absent' }> {
  if (state.status === 'absent') throw new DomainRuleViolation('CONFLICT_NOT_FOUND', `conflict ${conflictId} does not exist`);
  return state;
}
