import type { EventMetadata } from '../domain/events/metadata.ts';
import { sourceStreamId } from '../domain/ingestion/events.ts';
import { contentHash, deterministicEventId, diffRecord, observationEventId, toWire, type WireRecord } from '../domain/ingestion/source-records.ts';
import type { AnalyticsRecord, DataType, Platform } from '../domain/platforms/records.ts';
import type { SyncError } from '../domain/platforms/sync-error.ts';
import type { SyncCounts } from '../domain/sync/events.ts';
import type { EventStore, NewEvent } from '../ports/event-store.ts';
import type { Fetched, PlatformConnection } from '../ports/platform-adapter.ts';
import type { KnownSourceRecord, SourceState, SyncProgress } from './sync-services.ts';

/** Source events go to the store in batches of this many: one round trip each. */
export const APPEND_BATCH = 500;
/** A SyncProgressed event every this many pulled records (and one at the end of each data type). */
export const PROGRESS_EVERY = 5000;
/** Record errors are recorded on the operation in batches of at most this many. */
const ERROR_BATCH = 500;

/** Data types whose pull is a complete snapshot: a record it no longer holds has gone. Transactions are history. */
const SNAPSHOT_TYPES: ReadonlySet<DataType> = new Set(['accounts', 'holdings', 'performance', 'tax_lots', 'analytics']);

export type MutableCounts = { -readonly [K in keyof SyncCounts]: number };

export interface IngestContext {
  readonly store: EventStore;
  readonly sourceState: SourceState;
  readonly connection: PlatformConnection;
  readonly connectionId: string;
  readonly platform: Platform;
  readonly operationId: string;
  readonly force: boolean;
  /** A retry of failed records: only these ids are taken from the pull, and nothing is removed. */
  readonly onlyRecords?: ReadonlySet<string>;
  readonly metadata: EventMetadata;
  readonly counts: MutableCounts;
  recordProgress(dataType: DataType, pulled: number): Promise<void>;
  recordErrors(dataType: DataType, errors: readonly SyncError[], batch: number): Promise<void>;
  onProgress?(progress: SyncProgress): void;
}

/** The platform's id of a record, stable across pulls: its identity within the connection's data type. */
export function recordIdentity(dataType: DataType, record: Record<string, unknown>): string {
  switch (dataType) {
    case 'accounts':
      return String(record.platformAccountId);
    case 'performance':
      return `${String(record.platformAccountId)}:${String(record.period)}`;
    case 'analytics': {
      const analytics = record as AnalyticsRecord;
      if (analytics.kind === 'risk_metrics') return `${analytics.platformAccountId}:risk_metrics`;
      if (analytics.kind === 'attribution') return `${analytics.platformAccountId}:attribution:${analytics.segment}`;
      return `${analytics.platformAccountId}:benchmark_comparison:${analytics.benchmarkId}:${analytics.period}`;
    }
    default:
      return String(record.platformRecordId);
  }
}

function fetchOf(connection: PlatformConnection, dataType: DataType, accountId: string, cursor: string | undefined): AsyncIterable<Fetched<object>> {
  switch (dataType) {
    case 'accounts':
      return connection.accounts();
    case 'holdings':
      return connection.holdings(accountId);
    case 'transactions':
      return connection.transactions(accountId, cursor === undefined ? undefined : { since: cursor });
    case 'performance':
      return connection.performance(accountId);
    case 'tax_lots':
      return connection.taxLots(accountId);
    case 'analytics':
      return connection.analytics(accountId);
  }
}

interface Known extends KnownSourceRecord {
  seen: boolean;
}

/** A changed record waits in the batch until the batch's previous versions are loaded in one query. */
interface PendingChange {
  readonly recordId: string;
  readonly record: object;
  readonly hash: string;
  readonly revision: number;
}

/**
 * Appends a data type's source events in order, in batches, with at most one append in flight
 * while the next batch is being pulled.
 */
class SourceWriter {
  private slots: (NewEvent | PendingChange)[] = [];
  private inflight: Promise<void> | null = null;
  appended = 0;

  constructor(
    private readonly context: IngestContext,
    private readonly dataType: DataType,
    private version: number,
  ) {}

  get size(): number {
    return this.slots.length;
  }

  add(slot: NewEvent | PendingChange): Promise<void> | undefined {
    this.slots.push(slot);
    return this.slots.length >= APPEND_BATCH ? this.flush() : undefined;
  }

  async flush(): Promise<void> {
    if (this.slots.length === 0) return;
    const slots = this.slots;
    this.slots = [];
    const events = await this.resolve(slots);
    // The previous batch must land first: the source stream's versions follow the pull's order.
    await this.inflight;
    const append = this.context.store
      .append(sourceStreamId(this.context.connectionId, this.dataType), events, { expectedVersion: this.version === 0 ? 'no_stream' : this.version })
      .then((result) => {
        this.version = result.nextExpectedVersion;
        this.appended += events.length;
      });
    append.catch(() => {});
    this.inflight = append;
  }

  /** Waits for everything added so far to be stored. */
  async drain(): Promise<void> {
    await this.flush();
    await this.inflight;
  }

  /** Waits for the append in flight, if any, to land or fail: a run that stops leaves no write behind it. */
  async settle(): Promise<void> {
    await this.inflight?.catch(() => {});
  }

  private async resolve(slots: readonly (NewEvent | PendingChange)[]): Promise<NewEvent[]> {
    const changes = slots.filter((slot): slot is PendingChange => 'recordId' in slot);
    const { connectionId, operationId, platform, metadata } = this.context;
    const previous = changes.length === 0 ? new Map<string, WireRecord>() : await this.context.sourceState.records(connectionId, this.dataType, changes.map((c) => c.recordId));
    return slots.map((slot) => {
      if (!('recordId' in slot)) return slot;
      const before = previous.get(slot.recordId);
      const after = toWire(slot.record);
      const diff = diffRecord(before, after);
      const base = { connectionId, platform, dataType: this.dataType, recordId: slot.recordId, operationId, revision: slot.revision, contentHash: slot.hash };
      const id = observationEventId(connectionId, this.dataType, slot.recordId, slot.revision, slot.hash);
      // A stored version that cannot be found is observed whole again rather than diffed against nothing.
      return diff.kind === 'updated'
        ? { id, type: 'SourceRecordChanged', data: { ...base, changes: diff.changes }, metadata }
        : { id, type: 'SourceRecordObserved', data: { ...base, record: after }, metadata };
    });
  }
}

/**
 * Pulls one data type of a connection and appends what is new or changed (and, for a complete
 * snapshot, what has gone) to the connection's source stream for that type.
 */
export async function ingestDataType(context: IngestContext, dataType: DataType, accountIds: readonly string[]): Promise<void> {
  const { connectionId, operationId, platform, metadata, counts, sourceState, store } = context;
  const streamId = sourceStreamId(connectionId, dataType);
  await sourceState.caughtUp(streamId);
  const known = (await sourceState.known(connectionId, dataType)) as Map<string, Known>;
  const [last] = await store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
  const writer = new SourceWriter(context, dataType, last?.streamVersion ?? 0);
  const incremental = dataType === 'transactions' && !context.force && context.onlyRecords === undefined;
  const storedCursors = dataType === 'transactions' ? await sourceState.cursors(connectionId, dataType) : new Map<string, string>();
  const nextCursors = new Map<string, string>();
  let errors: SyncError[] = [];
  let errorBatches = 0;
  let pulled = 0;

  const progress = async () => {
    context.onProgress?.({ dataType, pulled, appended: writer.appended });
    if (pulled % PROGRESS_EVERY === 0) await context.recordProgress(dataType, pulled);
  };
  const flushErrors = async () => {
    if (errors.length === 0) return;
    const batch = errors;
    errors = [];
    await context.recordErrors(dataType, batch, errorBatches++);
  };

  const take = async (record: Record<string, unknown>) => {
    const recordId = recordIdentity(dataType, record);
    if (context.onlyRecords && !context.onlyRecords.has(recordId)) return;
    counts.processed++;
    // One canonical serialisation per record: the hash of the canonical record is the hash of its wire form.
    const hash = contentHash(record as WireRecord);
    const entry = known.get(recordId);
    if (entry && !entry.removed && entry.hash === hash) {
      entry.seen = true;
      // Stored by an earlier attempt of this same operation (a re-run after a crash): counted as that attempt wrote it.
      if (entry.lastOperationId === operationId) counts[entry.revision === 1 ? 'inserted' : 'updated']++;
      else counts.skipped++;
      return;
    }
    const revision = (entry?.revision ?? 0) + 1;
    known.set(recordId, { revision, hash, removed: false, lastOperationId: operationId, seen: true });
    if (entry && !entry.removed) {
      counts.updated++;
      await writer.add({ recordId, record, hash, revision });
    } else {
      counts.inserted++;
      // The canonical record (Decimals included) serialises to its wire form when the store writes it.
      const data = { connectionId, platform, dataType, recordId, operationId, revision, record, contentHash: hash };
      await writer.add({ id: observationEventId(connectionId, dataType, recordId, revision, hash), type: 'SourceRecordObserved', data, metadata });
    }
  };

  try {
    await pullAndAppend();
  } catch (error) {
    await writer.settle();
    throw error;
  }
  await flushErrors();
  context.onProgress?.({ dataType, pulled, appended: writer.appended });
  await context.recordProgress(dataType, pulled);

  async function pullAndAppend(): Promise<void> {
    const accounts = dataType === 'accounts' ? [''] : accountIds;
    const onlyAccounts = new Set(accountIds);
    for (const accountId of accounts) {
      const since = incremental ? storedCursors.get(accountId) : undefined;
      for await (const item of fetchOf(context.connection, dataType, accountId, since)) {
        if (item.kind === 'cursor') {
          nextCursors.set(accountId, item.cursor);
          continue;
        }
        pulled++;
        if (item.kind === 'record') {
          const record = item.record as Record<string, unknown>;
          // A connection bound to some accounts keeps only theirs from the platform's account list.
          if (dataType !== 'accounts' || onlyAccounts.has(String(record.platformAccountId))) await take(record);
        } else {
          const entry = known.get(item.error.recordId);
          if (entry) entry.seen = true;
          if (!context.onlyRecords || context.onlyRecords.has(item.error.recordId)) {
            counts.processed++;
            counts.failed++;
            errors.push(item.error);
            if (errors.length >= ERROR_BATCH) await flushErrors();
          }
        }
        if (pulled % PROGRESS_EVERY === 0 || pulled % APPEND_BATCH === 0) await progress();
      }
    }

    if (SNAPSHOT_TYPES.has(dataType) && context.onlyRecords === undefined) {
      for (const [recordId, entry] of known) {
        if (entry.seen || entry.removed) continue;
        const revision = entry.revision + 1;
        await writer.add({
          id: observationEventId(connectionId, dataType, recordId, revision, 'removed'),
          type: 'SourceRecordRemoved',
          data: { connectionId, platform, dataType, recordId, operationId, revision },
          metadata,
        });
      }
    }
    for (const [platformAccountId, cursor] of nextCursors) {
      if (storedCursors.get(platformAccountId) === cursor) continue;
      await writer.add({
        id: deterministicEventId(connectionId, dataType, 'cursor', platformAccountId, cursor),
        type: 'SourceCursorAdvanced',
        data: { connectionId, dataType, platformAccountId, operationId, cursor },
        metadata,
      });
    }
    await writer.drain();
  }
}
