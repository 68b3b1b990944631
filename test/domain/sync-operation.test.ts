import { describe, expect, it } from 'vitest';
import type { SyncError } from '../../src/domain/platforms/sync-error.ts';
import {
  retryDelayMs,
  retryRequest,
  syncOperationDecider,
  type SyncOperationCommand,
  type SyncOperationState,
} from '../../src/domain/sync/sync-operation.ts';
import { runCommands, violationCode } from '../support/decider.ts';

const run = (commands: SyncOperationCommand[], from?: SyncOperationState) => runCommands(syncOperationDecider, commands, from);
const violation = (commands: SyncOperationCommand[], from?: SyncOperationState) => violationCode(() => run(commands, from));

const request: SyncOperationCommand = {
  kind: 'RequestSync',
  operationId: 's1',
  connectionId: 'c1',
  dataTypes: ['holdings', 'transactions'],
  force: false,
  trigger: 'manual',
  requestedBy: 'u1',
  attempt: 0,
};
const start: SyncOperationCommand = { kind: 'StartSync', operationId: 's1' };
const badRecord: SyncError = { recordId: 'h-7', code: 'CURRENCY_NOT_SUPPORTED', message: 'currency XXX is not supported', severity: 'error', retryable: false };
const outage: SyncError = { recordId: 'GET /v1/Portfolio/Assets', code: 'PLATFORM_UNAVAILABLE', message: '503 after 5 attempts', severity: 'error', retryable: true };
const counts = (processed: number, inserted: number, updated: number, skipped: number, failed: number) => ({ processed, inserted, updated, skipped, failed });

describe('sync operation decider', () => {
  it('runs from request to completion; a failed record makes it partial', () => {
    const clean = run([request, request, start, start, { kind: 'CompleteSync', operationId: 's1', counts: counts(10, 4, 1, 5, 0) }]);
    expect(clean.events.map((e) => e.type)).toEqual(['SyncRequested', 'SyncStarted', 'SyncCompleted']);
    expect(clean.state.status).toBe('completed');
    const partial = run([
      request,
      start,
      { kind: 'RecordSyncErrors', operationId: 's1', dataType: 'holdings', errors: [badRecord] },
      { kind: 'CompleteSync', operationId: 's1', counts: counts(10, 4, 1, 4, 1) },
    ]);
    expect(partial.state.status).toBe('partial');
  });

  it('refuses counts that do not add up, and work on an operation that is not running', () => {
    expect(violation([request, start, { kind: 'CompleteSync', operationId: 's1', counts: counts(10, 4, 1, 4, 0) }])).toBe('SYNC_COUNTS_INCONSISTENT');
    expect(violation([request, { kind: 'RecordSyncProgress', operationId: 's1', dataType: 'holdings', pulled: 5 }])).toBe('SYNC_NOT_RUNNING');
    expect(violation([request, start, { kind: 'CompleteSync', operationId: 's1', counts: counts(0, 0, 0, 0, 0) }, start])).toBe('SYNC_FINISHED');
  });

  it('schedules automatic retries of retryable failures with doubling waits, at most three', () => {
    expect([1, 2, 3].map(retryDelayMs)).toEqual([60_000, 120_000, 240_000]);
    const now = Date.parse('2026-11-22T00:00:00.000Z');
    const failed = run([request, start, { kind: 'FailSync', operationId: 's1', counts: counts(0, 0, 0, 0, 0), error: outage, now }]);
    expect(failed.events.at(-1)!.data).toMatchObject({ retryAt: '2026-11-22T00:01:00.000Z' });
    const third = run([{ ...request, attempt: 3 } as SyncOperationCommand, start, { kind: 'FailSync', operationId: 's1', counts: counts(0, 0, 0, 0, 0), error: outage, now }]);
    expect(third.events.at(-1)!.data).not.toHaveProperty('retryAt');
    expect(violation([{ kind: 'RetrySync', operationId: 's1', retryOperationId: 's2', failedOnly: false }], third.state)).toBe('SYNC_RETRIES_EXHAUSTED');
    const permanent = run([request, start, { kind: 'FailSync', operationId: 's1', counts: counts(0, 0, 0, 0, 0), error: { ...outage, retryable: false }, now }]);
    expect(permanent.events.at(-1)!.data).not.toHaveProperty('retryAt');
  });

  it('retries a partial sync once, of the failed records only when asked', () => {
    const partial = run([
      request,
      start,
      { kind: 'RecordSyncErrors', operationId: 's1', dataType: 'holdings', errors: [badRecord, badRecord] },
      { kind: 'CompleteSync', operationId: 's1', counts: counts(10, 8, 0, 0, 2) },
      { kind: 'RetrySync', operationId: 's1', retryOperationId: 's2', failedOnly: true },
      { kind: 'RetrySync', operationId: 's1', retryOperationId: 's2', failedOnly: true },
    ]);
    expect(partial.events.filter((e) => e.type === 'SyncRetried')).toHaveLength(1);
    expect(violation([{ kind: 'RetrySync', operationId: 's1', retryOperationId: 's3', failedOnly: false }], partial.state)).toBe('SYNC_ALREADY_RETRIED');
    expect(retryRequest(partial.state, 's2', true, 'u1')).toEqual({
      kind: 'RequestSync',
      operationId: 's2',
      connectionId: 'c1',
      dataTypes: ['holdings'],
      force: false,
      trigger: 'retry',
      requestedBy: 'u1',
      attempt: 1,
      retryOf: 's1',
      onlyRecords: { holdings: ['h-7'] },
    });
    const completed = run([request, start, { kind: 'CompleteSync', operationId: 's1', counts: counts(1, 1, 0, 0, 0) }]).state;
    expect(violation([{ kind: 'RetrySync', operationId: 's1', retryOperationId: 's2', failedOnly: false }], completed)).toBe('SYNC_NOT_RETRYABLE');
  });
});
