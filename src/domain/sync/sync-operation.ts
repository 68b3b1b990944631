import { DomainRuleViolation, type Decider, type DomainEvent } from '../decider.ts';
import type { EventData } from '../events/catalogue.ts';
import type { DataType } from '../platforms/records.ts';
import type { SyncError } from '../platforms/sync-error.ts';
import type { SyncCompleted, SyncCounts, SyncErrorsRecorded, SyncFailed, SyncProgressed, SyncRequested, SyncRetried, SyncStarted } from './events.ts';

type Request = EventData<typeof SyncRequested>;

export type SyncOperationEvent =
  | DomainEvent<'SyncRequested', Request>
  | DomainEvent<'SyncStarted', EventData<typeof SyncStarted>>
  | DomainEvent<'SyncProgressed', EventData<typeof SyncProgressed>>
  | DomainEvent<'SyncErrorsRecorded', EventData<typeof SyncErrorsRecorded>>
  | DomainEvent<'SyncCompleted', EventData<typeof SyncCompleted>>
  | DomainEvent<'SyncFailed', EventData<typeof SyncFailed>>
  | DomainEvent<'SyncRetried', EventData<typeof SyncRetried>>;

export type SyncOperationCommand =
  | ({ readonly kind: 'RequestSync' } & Request)
  | { readonly kind: 'StartSync'; readonly operationId: string }
  | { readonly kind: 'RecordSyncProgress'; readonly operationId: string; readonly dataType: DataType; readonly pulled: number }
  | { readonly kind: 'RecordSyncErrors'; readonly operationId: string; readonly dataType: DataType; readonly errors: readonly SyncError[] }
  | { readonly kind: 'CompleteSync'; readonly operationId: string; readonly counts: SyncCounts }
  | { readonly kind: 'FailSync'; readonly operationId: string; readonly counts: SyncCounts; readonly error: SyncError; readonly now: number }
  | { readonly kind: 'RetrySync'; readonly operationId: string; readonly retryOperationId: string; readonly failedOnly: boolean };

export type SyncStatus = 'requested' | 'running' | 'completed' | 'partial' | 'failed';

export type SyncOperationState =
  | { readonly status: 'absent' }
  | {
      readonly status: SyncStatus;
      readonly request: Request;
      readonly counts?: SyncCounts;
      /** Ids of the records that failed, per data type: what a failed-only retry pulls again. */
      readonly failedRecords: Readonly<Record<string, readonly string[]>>;
      readonly retriedBy?: string;
    };

/** A failed operation is retried at most this many times, each wait twice the one before. */
export const MAX_RETRIES = 3;
export const FIRST_RETRY_DELAY_MS = 60_000;

export function retryDelayMs(attempt: number): number {
  return FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1);
}

export const syncOperationStreamId = (operationId: string) => `sync-${operationId}`;

export const syncOperationDecider: Decider<SyncOperationState, SyncOperationCommand, SyncOperationEvent> = {
  initialState: () => ({ status: 'absent' }),

  decide(command, state) {
    const { operationId } = command;
    switch (command.kind) {
      case 'RequestSync': {
        if (state.status !== 'absent') return [];
        if (command.attempt > MAX_RETRIES) throw new DomainRuleViolation('SYNC_RETRIES_EXHAUSTED', `a sync is retried at most ${MAX_RETRIES} times`);
        const { kind: _kind, ...request } = command;
        return [{ type: 'SyncRequested', data: request }];
      }
      case 'StartSync': {
        const current = requireOperation(state, operationId);
        if (current.status === 'running') return [];
        if (current.status !== 'requested') throw new DomainRuleViolation('SYNC_FINISHED', `sync ${operationId} has already finished`);
        return [{ type: 'SyncStarted', data: { operationId } }];
      }
      case 'RecordSyncProgress':
        requireRunning(state, operationId);
        return [{ type: 'SyncProgressed', data: { operationId, dataType: command.dataType, pulled: command.pulled } }];
      case 'RecordSyncErrors':
        requireRunning(state, operationId);
        return command.errors.length === 0 ? [] : [{ type: 'SyncErrorsRecorded', data: { operationId, dataType: command.dataType, errors: [...command.errors] } }];
      case 'CompleteSync': {
        requireRunning(state, operationId);
        checkCounts(command.counts);
        return [{ type: 'SyncCompleted', data: { operationId, outcome: command.counts.failed > 0 ? 'partial' : 'completed', counts: command.counts } }];
      }
      case 'FailSync': {
        const current = requireOperation(state, operationId);
        if (current.status !== 'requested' && current.status !== 'running') throw new DomainRuleViolation('SYNC_FINISHED', `sync ${operationId} has already finished`);
        checkCounts(command.counts);
        const attempt = current.request.attempt + 1;
        const retryAt = command.error.retryable && attempt <= MAX_RETRIES ? new Date(command.now + retryDelayMs(attempt)).toISOString() : undefined;
        return [{ type: 'SyncFailed', data: { operationId, counts: command.counts, error: command.error, ...(retryAt ? { retryAt } : {}) } }];
      }
      case 'RetrySync': {
        const current = requireOperation(state, operationId);
        if (current.retriedBy === command.retryOperationId) return [];
        if (current.retriedBy) throw new DomainRuleViolation('SYNC_ALREADY_RETRIED', `sync ${operationId} was already retried as ${current.retriedBy}`);
        if (current.status !== 'failed' && current.status !== 'partial') {
          throw new DomainRuleViolation('SYNC_NOT_RETRYABLE', `sync ${operationId} is ${current.status}; only failed or partial syncs are retried`);
        }
        if (current.request.attempt >= MAX_RETRIES) throw new DomainRuleViolation('SYNC_RETRIES_EXHAUSTED', `sync ${operationId} was already retried ${MAX_RETRIES} times`);
        return [{ type: 'SyncRetried', data: { operationId, retryOperationId: command.retryOperationId, failedOnly: command.failedOnly } }];
      }
    }
  },

  evolve(state, event) {
    if (event.type === 'SyncRequested') return { status: 'requested', request: event.data, failedRecords: {} };
    if (state.status === 'absent') return state;
    switch (event.type) {
      case 'SyncStarted':
        return { ...state, status: 'running' };
      case 'SyncProgressed':
        return state;
      case 'SyncErrorsRecorded': {
        const ids = event.data.errors.map((e) => e.recordId);
        const held = state.failedRecords[event.data.dataType] ?? [];
        return { ...state, failedRecords: { ...state.failedRecords, [event.data.dataType]: [...held, ...ids] } };
      }
      case 'SyncCompleted':
        return { ...state, status: event.data.outcome, counts: event.data.counts };
      case 'SyncFailed':
        return { ...state, status: 'failed', counts: event.data.counts };
      case 'SyncRetried':
        return { ...state, retriedBy: event.data.retryOperationId };
    }
  },
};

/** The request of the operation that retries `state`: the next attempt, of everything or of the failed records only. */
export function retryRequest(state: SyncOperationState, retryOperationId: string, failedOnly: boolean, requestedBy: string): SyncOperationCommand & { kind: 'RequestSync' } {
  if (state.status === 'absent') throw new DomainRuleViolation('SYNC_NOT_FOUND', 'the sync to retry does not exist');
  const { request } = state;
  const dataTypes = failedOnly ? request.dataTypes.filter((type) => (state.failedRecords[type]?.length ?? 0) > 0) : request.dataTypes;
  return {
    kind: 'RequestSync',
    operationId: retryOperationId,
    connectionId: request.connectionId,
    dataTypes: dataTypes.length > 0 ? dataTypes : request.dataTypes,
    force: request.force,
    trigger: 'retry',
    requestedBy,
    attempt: request.attempt + 1,
    retryOf: request.operationId,
    ...(failedOnly ? { onlyRecords: Object.fromEntries(Object.entries(state.failedRecords).map(([type, ids]) => [type, [...new Set(ids)]])) } : {}),
  };
}

function requireOperation(state: SyncOperationState, operationId: string): Exclude<SyncOperationState, { status: 'absent' }> {
  if (state.status === 'absent') throw new DomainRuleViolation('SYNC_NOT_FOUND', `sync ${operationId} does not exist`);
  return state;
}

function requireRunning(state: SyncOperationState, operationId: string): void {
  const current = requireOperation(state, operationId);
  if (current.status !== 'running') throw new DomainRuleViolation('SYNC_NOT_RUNNING', `sync ${operationId} is ${current.status}, not running`);
}

function checkCounts(counts: SyncCounts): void {
  const parts = counts.inserted + counts.updated + counts.skipped + counts.failed;
  if (parts !== counts.processed) {
    throw new DomainRuleViolation('SYNC_COUNTS_INCONSISTENT', `processed (${counts.processed}) must equal inserted + updated + skipped + failed (${parts})`);
  }
}
