import { sql, type Transaction } from 'kysely';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

export interface AuditLogTables {
  audit_log: {
    global_position: number;
    transaction_id: string;
    event_id: string;
    stream_id: string;
    stream_version: number;
    event_type: string;
    actor: string | null;
    source: string | null;
    correlation_id: string | null;
    causation_id: string | null;
    recorded_at: Date;
  };
}

/** Every event: which stream, what type, who (actor), from where (source), when, and why (correlation). */
export const auditLogProjector: Projector<AuditLogTables> = {
  name: 'audit_log',
  version: 1,
  handles: 'all',
  tables: ['audit_log'],

  async createTables(trx) {
    await sql`
      CREATE TABLE audit_log (
        global_position bigint PRIMARY KEY,
        transaction_id xid8 NOT NULL,
        event_id text NOT NULL,
        stream_id text NOT NULL,
        stream_version bigint NOT NULL,
        event_type text NOT NULL,
        actor text,
        source text,
        correlation_id text,
        causation_id text,
        recorded_at timestamptz NOT NULL
      )`.execute(trx);
    await sql`CREATE INDEX audit_log_stream ON audit_log (stream_id, stream_version)`.execute(trx);
    await sql`CREATE INDEX audit_log_recorded_at ON audit_log (recorded_at)`.execute(trx);
    await sql`CREATE INDEX audit_log_correlation ON audit_log (correlation_id) WHERE correlation_id IS NOT NULL`.execute(trx);
  },

  async apply(trx: Transaction<AuditLogTables>, events: readonly RecordedEvent[]) {
    await trx
      .insertInto('audit_log')
      .values(
        events.map((event) => ({
          global_position: event.globalPosition,
          transaction_id: event.transactionId,
          event_id: event.id,
          stream_id: event.streamId,
          stream_version: event.streamVersion,
          event_type: event.type,
          actor: event.metadata.actor ?? null,
          source: event.metadata.source ?? null,
          correlation_id: event.metadata.correlationId ?? null,
          causation_id: event.metadata.causationId ?? null,
          recorded_at: event.recordedAt,
        })),
      )
      .execute();
  },
};
