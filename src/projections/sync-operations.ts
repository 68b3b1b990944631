import { sql, type Transaction } from 'kysely';
import type { SyncError } from '../domain/platforms/sync-error.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

interface Counts {
  processed: number;
  inserted: number;
  updated: number;
  skipped: number;
  failed: number;
}

/**
 * Sync operations as operators watch them: status, counts, records pulled per data type, the
 * failure and its retry, and every record-level error in sync_errors.
 */
export const syncOperationsProjector: Projector = {
  name: 'sync_operations',
  version: 1,
  handles: ['SyncRequested', 'SyncStarted', 'SyncProgressed', 'SyncErrorsRecorded', 'SyncCompleted', 'SyncFailed', 'SyncRetried'],
  tables: ['sync_operations', 'sync_errors'],

  async createTables(trx) {
    await sql`
      CREATE TABLE sync_operations (
        operation_id text PRIMARY KEY,
        connection_id text NOT NULL,
        data_types text[] NOT NULL,
        trigger text NOT NULL,
        requested_by text NOT NULL,
        force boolean NOT NULL,
        attempt integer NOT NULL,
        retry_of text,
        status text NOT NULL,
        pulled jsonb NOT NULL DEFAULT '{}',
        processed bigint NOT NULL DEFAULT 0,
        inserted bigint NOT NULL DEFAULT 0,
        updated bigint NOT NULL DEFAULT 0,
        skipped bigint NOT NULL DEFAULT 0,
        failed bigint NOT NULL DEFAULT 0,
        error_count bigint NOT NULL DEFAULT 0,
        error jsonb,
        retry_at timestamptz,
        retried_by text,
        requested_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        duration_ms bigint,
        updated_at timestamptz NOT NULL
      )`.execute(trx);
    await sql`CREATE INDEX sync_operations_connection ON sync_operations (connection_id, requested_at DESC)`.execute(trx);
    await sql`CREATE INDEX sync_operations_status ON sync_operations (status, requested_at DESC)`.execute(trx);
    await sql`
      CREATE TABLE sync_errors (
        operation_id text NOT NULL,
        event_id text NOT NULL,
        index integer NOT NULL,
        data_type text NOT NULL,
        record_id text NOT NULL,
        code text NOT NULL,
        message text NOT NULL,
        severity text NOT NULL,
        retryable boolean NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (event_id, index)
      )`.execute(trx);
    await sql`CREATE INDEX sync_errors_operation ON sync_errors (operation_id, recorded_at)`.execute(trx);
  },

  async apply(trx: Transaction<unknown>, events: readonly RecordedEvent[]) {
    const errors: Record<string, unknown>[] = [];
    for (const event of events) {
      const at = event.recordedAt;
      const data = event.data as Record<string, unknown> & { operationId: string };
      switch (event.type) {
        case 'SyncRequested': {
          const d = data as unknown as { connectionId: string; dataTypes: string[]; trigger: string; requestedBy: string; force: boolean; attempt: number; retryOf?: string };
          await sql`
            INSERT INTO sync_operations (operation_id, connection_id, data_types, trigger, requested_by, force, attempt, retry_of, status, requested_at, updated_at)
            VALUES (${data.operationId}, ${d.connectionId}, ${d.dataTypes}, ${d.trigger}, ${d.requestedBy}, ${d.force}, ${d.attempt}, ${d.retryOf ?? null}, 'requested', ${at}, ${at})
            ON CONFLICT (operation_id) DO NOTHING`.execute(trx);
          break;
        }
        case 'SyncStarted':
          await sql`UPDATE sync_operations SET status = 'running', started_at = ${at}, updated_at = ${at} WHERE operation_id = ${data.operationId}`.execute(trx);
          break;
        case 'SyncProgressed':
          await sql`
            UPDATE sync_operations SET pulled = pulled || jsonb_build_object(${data.dataType as string}::text, ${data.pulled as number}::bigint), updated_at = ${at}
             WHERE operation_id = ${data.operationId}`.execute(trx);
          break;
        case 'SyncErrorsRecorded': {
          const list = data.errors as SyncError[];
          list.forEach((e, index) =>
            errors.push({ operation_id: data.operationId, event_id: event.id, index, data_type: data.dataType, ...e, record_id: e.recordId, recorded_at: at.toISOString() }),
          );
          await sql`UPDATE sync_operations SET error_count = error_count + ${list.length}, updated_at = ${at} WHERE operation_id = ${data.operationId}`.execute(trx);
          break;
        }
        case 'SyncCompleted':
        case 'SyncFailed': {
          const counts = data.counts as Counts;
          const status = event.type === 'SyncFailed' ? 'failed' : (data.outcome as string);
          await sql`
            UPDATE sync_operations SET status = ${status}, processed = ${counts.processed}, inserted = ${counts.inserted}, updated = ${counts.updated},
                   skipped = ${counts.skipped}, failed = ${counts.failed}, error = ${data.error ? JSON.stringify(data.error) : null}::jsonb,
                   retry_at = ${(data.retryAt as string | undefined) ?? null}::timestamptz, finished_at = ${at},
                   duration_ms = (extract(epoch FROM (${at}::timestamptz - coalesce(started_at, requested_at))) * 1000)::bigint, updated_at = ${at}
             WHERE operation_id = ${data.operationId}`.execute(trx);
          break;
        }
        case 'SyncRetried':
          await sql`UPDATE sync_operations SET retried_by = ${data.retryOperationId as string}, updated_at = ${at} WHERE operation_id = ${data.operationId}`.execute(trx);
          break;
      }
    }
    if (errors.length > 0) {
      await sql`
        INSERT INTO sync_errors (operation_id, event_id, index, data_type, record_id, code, message, severity, retryable, recorded_at)
        SELECT operation_id, event_id, index, data_type, record_id, code, message, severity, retryable, recorded_at
          FROM jsonb_to_recordset(${JSON.stringify(errors)}::jsonb)
            AS x(operation_id text, event_id text, index integer, data_type text, record_id text, code text, message text, severity text, retryable boolean, recorded_at timestamptz)
        ON CONFLICT DO NOTHING`.execute(trx);
    }
  },
};
