import { sql, type Kysely, type Transaction } from 'kysely';
import type { EventData } from '../domain/events/catalogue.ts';
import type { SourceCursorAdvanced, SourceRecordChanged, SourceRecordObserved, SourceRecordRemoved } from '../domain/ingestion/events.ts';
import type { WireRecord } from '../domain/ingestion/source-records.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

export interface SourceRecordsTables {
  source_records: {
    connection_id: string;
    data_type: string;
    record_id: string;
    revision: number;
    content_hash: string;
    record: WireRecord;
    removed: boolean;
    last_operation_id: string;
    updated_at: Date;
  };
  source_cursors: {
    connection_id: string;
    data_type: string;
    platform_account_id: string;
    cursor: string;
    operation_id: string;
    updated_at: Date;
  };
}

type Observed = EventData<typeof SourceRecordObserved>;
type Changed = EventData<typeof SourceRecordChanged>;
type Removed = EventData<typeof SourceRecordRemoved>;
type CursorAdvanced = EventData<typeof SourceCursorAdvanced>;

/** A record's row after a batch: whole when the batch observed it, or a patch on the stored row. */
interface Folded {
  readonly connectionId: string;
  readonly dataType: string;
  readonly recordId: string;
  whole: boolean;
  /** The whole record, or the merged changes of the batch (null: the field is gone). */
  content: Record<string, unknown>;
  revision: number;
  hash: string | null;
  removed: boolean;
  operationId: string;
  at: Date;
}

/**
 * The last known version of every record each connection delivered, per data type: what the sync
 * engine diffs a pull against. Built from SourceRecord* events alone, so a rebuild gives the same
 * rows; a batch folds the events of each record in memory and writes each record once.
 */
export const sourceRecordsProjector: Projector<SourceRecordsTables> = {
  name: 'source_records',
  version: 1,
  handles: ['SourceRecordObserved', 'SourceRecordChanged', 'SourceRecordRemoved', 'SourceCursorAdvanced'],
  tables: ['source_records', 'source_cursors'],

  async createTables(trx) {
    await sql`
      CREATE TABLE source_records (
        connection_id text NOT NULL,
        data_type text NOT NULL,
        record_id text NOT NULL,
        revision integer NOT NULL,
        content_hash text NOT NULL,
        record jsonb NOT NULL,
        removed boolean NOT NULL,
        last_operation_id text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (connection_id, data_type, record_id)
      )`.execute(trx);
    await sql`
      CREATE TABLE source_cursors (
        connection_id text NOT NULL,
        data_type text NOT NULL,
        platform_account_id text NOT NULL,
        cursor text NOT NULL,
        operation_id text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (connection_id, data_type, platform_account_id)
      )`.execute(trx);
  },

  async apply(trx: Transaction<SourceRecordsTables>, events: readonly RecordedEvent[]) {
    const folded = new Map<string, Folded>();
    const cursors = new Map<string, { data: CursorAdvanced; at: Date }>();
    for (const event of events) {
      if (event.type === 'SourceCursorAdvanced') {
        const data = event.data as CursorAdvanced;
        cursors.set(`${data.connectionId}\u0000${data.dataType}\u0000${data.platformAccountId}`, { data, at: event.recordedAt });
        continue;
      }
      const data = event.data as Observed | Changed | Removed;
      const key = `${data.connectionId}\u0000${data.dataType}\u0000${data.recordId}`;
      const seen = folded.get(key);
      const row: Folded = seen ?? {
        connectionId: data.connectionId,
        dataType: data.dataType,
        recordId: data.recordId,
        whole: false,
        content: {},
        revision: data.revision,
        hash: null,
        removed: false,
        operationId: data.operationId,
        at: event.recordedAt,
      };
      if (event.type === 'SourceRecordObserved') {
        row.whole = true;
        row.content = { ...(data as Observed).record };
        row.hash = (data as Observed).contentHash;
        row.removed = false;
      } else if (event.type === 'SourceRecordChanged') {
        const { changes, contentHash } = data as Changed;
        for (const [field, value] of Object.entries(changes)) {
          if (row.whole && value === null) delete row.content[field];
          else row.content[field] = value;
        }
        row.hash = contentHash;
      } else {
        row.removed = true;
      }
      row.revision = data.revision;
      row.operationId = data.operationId;
      row.at = event.recordedAt;
      folded.set(key, row);
    }
    const rows = [...folded.values()];
    await writeWhole(trx, rows.filter((row) => row.whole));
    await writePatches(trx, rows.filter((row) => !row.whole));
    if (cursors.size > 0) {
      await trx
        .insertInto('source_cursors')
        .values(
          [...cursors.values()].map(({ data, at }) => ({
            connection_id: data.connectionId,
            data_type: data.dataType,
            platform_account_id: data.platformAccountId,
            cursor: data.cursor,
            operation_id: data.operationId,
            updated_at: at,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['connection_id', 'data_type', 'platform_account_id']).doUpdateSet({
            cursor: sql`excluded.cursor`,
            operation_id: sql`excluded.operation_id`,
            updated_at: sql`excluded.updated_at`,
          }),
        )
        .execute();
    }
  },
};

/** Rows as parallel arrays: one statement per batch, whatever its size. */
function columns(rows: readonly Folded[]) {
  return {
    connection: rows.map((r) => r.connectionId),
    dataType: rows.map((r) => r.dataType),
    record: rows.map((r) => r.recordId),
    revision: rows.map((r) => r.revision),
    hash: rows.map((r) => r.hash),
    content: rows.map((r) => JSON.stringify(r.content)),
    removed: rows.map((r) => r.removed),
    operation: rows.map((r) => r.operationId),
    at: rows.map((r) => r.at.toISOString()),
  };
}

async function writeWhole(trx: Transaction<SourceRecordsTables>, rows: readonly Folded[]): Promise<void> {
  if (rows.length === 0) return;
  const c = columns(rows);
  await sql`
    INSERT INTO source_records (connection_id, data_type, record_id, revision, content_hash, record, removed, last_operation_id, updated_at)
    SELECT connection_id, data_type, record_id, revision, content_hash, record::jsonb, removed, last_operation_id, updated_at
      FROM unnest(${c.connection}::text[], ${c.dataType}::text[], ${c.record}::text[], ${c.revision}::int[], ${c.hash}::text[],
                  ${c.content}::text[], ${c.removed}::boolean[], ${c.operation}::text[], ${c.at}::timestamptz[])
        AS r(connection_id, data_type, record_id, revision, content_hash, record, removed, last_operation_id, updated_at)
    ON CONFLICT (connection_id, data_type, record_id) DO UPDATE SET
      revision = excluded.revision, content_hash = excluded.content_hash, record = excluded.record, removed = excluded.removed,
      last_operation_id = excluded.last_operation_id, updated_at = excluded.updated_at`.execute(trx);
}

async function writePatches(trx: Transaction<SourceRecordsTables>, rows: readonly Folded[]): Promise<void> {
  if (rows.length === 0) return;
  const c = columns(rows);
  // A field whose change is null is gone from the record (see applyChanges).
  await sql`
    UPDATE source_records s SET
      record = (s.record || p.changes::jsonb) - ARRAY(SELECT key FROM jsonb_each(p.changes::jsonb) WHERE value = 'null'::jsonb),
      revision = p.revision, content_hash = coalesce(p.content_hash, s.content_hash), removed = p.removed,
      last_operation_id = p.last_operation_id, updated_at = p.updated_at
    FROM unnest(${c.connection}::text[], ${c.dataType}::text[], ${c.record}::text[], ${c.revision}::int[], ${c.hash}::text[],
                ${c.content}::text[], ${c.removed}::boolean[], ${c.operation}::text[], ${c.at}::timestamptz[])
      AS p(connection_id, data_type, record_id, revision, content_hash, changes, removed, last_operation_id, updated_at)
    WHERE s.connection_id = p.connection_id AND s.data_type = p.data_type AND s.record_id = p.record_id`.execute(trx);
}

/** What the sync engine knows of one record before a pull. */
export interface KnownRecord {
  revision: number;
  hash: string;
  removed: boolean;
  lastOperationId: string;
}

/** Every record of a connection's data type, without the records themselves: one query. */
export async function loadKnownRecords(db: Kysely<unknown>, connectionId: string, dataType: string): Promise<Map<string, KnownRecord>> {
  const result = await sql<{ record_id: string; revision: number; content_hash: string; removed: boolean; last_operation_id: string }>`
    SELECT record_id, revision, content_hash, removed, last_operation_id FROM source_records
     WHERE connection_id = ${connectionId} AND data_type = ${dataType}`.execute(db);
  const known = new Map<string, KnownRecord>();
  for (const row of result.rows) known.set(row.record_id, { revision: row.revision, hash: row.content_hash, removed: row.removed, lastOperationId: row.last_operation_id });
  return known;
}

/** The stored versions of some records (for diffing the ones whose content changed). */
export async function loadRecords(db: Kysely<unknown>, connectionId: string, dataType: string, recordIds: readonly string[]): Promise<Map<string, WireRecord>> {
  if (recordIds.length === 0) return new Map();
  const result = await sql<{ record_id: string; record: WireRecord }>`
    SELECT record_id, record FROM source_records
     WHERE connection_id = ${connectionId} AND data_type = ${dataType} AND record_id = ANY(${[...recordIds]}::text[])`.execute(db);
  return new Map(result.rows.map((row) => [row.record_id, row.record]));
}

/** Where each account's incremental fetch of a data type resumes. */
export async function loadCursors(db: Kysely<unknown>, connectionId: string, dataType: string): Promise<Map<string, string>> {
  const result = await sql<{ platform_account_id: string; cursor: string }>`
    SELECT platform_account_id, cursor FROM source_cursors WHERE connection_id = ${connectionId} AND data_type = ${dataType}`.execute(db);
  return new Map(result.rows.map((row) => [row.platform_account_id, row.cursor]));
}

