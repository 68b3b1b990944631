import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { z } from 'zod';
import { EventCatalogue } from '../../domain/events/catalogue.ts';
import { chainHash } from '../../domain/events/hash-chain.ts';
import type { EventMetadata } from '../../domain/events/metadata.ts';
import { StreamIdSchema } from '../../domain/streams.ts';
import { parseField, ValidationError } from '../../domain/validation.ts';
import {
  EventIdConflictError,
  WrongExpectedVersionError,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  type LogCursor,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
} from '../../ports/event-store.ts';
import { monotonicUlids } from './event-ids.ts';
import type { AppendSignal, LogNotifier } from './log-notifier.ts';
import { PreparedBatch } from './prepared-batch.ts';

const ExpectedVersionSchema = z.union([
  z.number().int().nonnegative(),
  z.enum(['no_stream', 'stream_exists', 'any']),
]);
/** How often a subscriber re-reads while committed events wait behind an older open transaction. */
const HORIZON_RECHECK_MS = 50;
const MaxCountSchema = z.number().int().positive().max(100_000);

const EXPECTED_CODES: Record<Exclude<ExpectedVersion, number>, number> = { any: -1, no_stream: -2, stream_exists: -3 };

// recorded_at travels as epoch milliseconds (the store writes millisecond times): a number is far
// cheaper to turn into a Date than timestamp text.
const COLUMNS = `global_position, transaction_id, stream_id, stream_version, event_id, event_type, schema_version, data, metadata,
  (extract(epoch FROM recorded_at) * 1000)::int8 AS recorded_at_ms, hash`;

/** event id, stream version, global position, transaction id, already stored */
type AppendRow = [string, number, number, string, boolean];

/** Batches at least this large go in with COPY; smaller ones in one ledger_append round trip. */
const COPY_THRESHOLD = 64;
/** How many groups of single-event appends may be in flight at once, and how large one may be. */
const GROUP_FLUSHES = 2;
const GROUP_MAX = 64;

interface PendingSingle {
  readonly claim: Claim;
  readonly batch: PreparedBatch;
  resolve(rows: AppendRow[]): void;
  reject(error: unknown): void;
}

/** Rows per chunk handed to COPY; the first is small, so that COPY starts soon after the claim. */
const COPY_CHUNK = 100;
const FIRST_COPY_CHUNK = 25;

interface Claim {
  readonly streamId: string;
  readonly expected: ExpectedVersion;
  readonly expectedCode: number;
  readonly count: number;
}

type EventRow = [number, string, string, number, string, string, number, unknown, EventMetadata, number, string];

export interface PostgresEventStoreOptions {
  readonly catalogue: EventCatalogue;
  readonly notifier?: LogNotifier;
  readonly appendSignal?: AppendSignal;
  /** How long a subscriber waits for a notification before it polls anyway. */
  readonly pollIntervalMs?: number;
}

export class PostgresEventStore implements EventStore {
  private readonly newId = monotonicUlids();
  private readonly waiting: PendingSingle[] = [];
  private flushing = 0;
  private readonly catalogue: EventCatalogue;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresEventStoreOptions,
  ) {
    this.catalogue = options.catalogue;
  }

  async append(
    streamId: string,
    events: readonly NewEvent[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    parseField(StreamIdSchema, streamId, 'streamId');
    const expected = parseField(ExpectedVersionSchema, options.expectedVersion ?? 'any', 'expectedVersion');
    if (events.length === 0) throw new ValidationError([{ path: 'events', message: 'must hold at least one event' }]);

    const callerIds = events.some((event) => event.id !== undefined);
    const batch = new PreparedBatch(streamId, new Date().toISOString(), callerIds, this.catalogue, this.newId);
    const claim: Claim = { streamId, expected, expectedCode: typeof expected === 'number' ? expected : EXPECTED_CODES[expected], count: events.length };
    let rows: AppendRow[];
    try {
      // The COPY path validates as it writes (on a copy of the list, which it reads over several
      // turns of the event loop); every other path before it sends anything. A batch with caller
      // ids any of which is stored already goes to ledger_append, which says whether it is a repeat.
      const copied = events.length >= COPY_THRESHOLD ? await this.appendByCopy(claim, batch, [...events]) : null;
      if (copied) rows = copied;
      else {
        batch.addUpTo(events, events.length);
        if (callerIds) rows = await this.appendWithFunction(claim, true, batch);
        else if (events.length === 1) rows = await this.appendSingle(claim, batch);
        else rows = await this.appendWithFunction(claim, false, batch);
      }
    } catch (error) {
      throw translateAppendError(error, streamId, expected, batch.ids);
    }

    const alreadyStored = rows[0]![4];
    if (!alreadyStored) this.options.appendSignal?.appended();
    const last = rows[rows.length - 1]!;
    return {
      streamId,
      nextExpectedVersion: last[1],
      events: rows.map(([id, streamVersion, globalPosition]) => ({ id, streamVersion, globalPosition })),
      lastCursor: { transactionId: last[3], position: last[2] },
      alreadyStored,
    };
  }

  /** Any batch: ledger_append does everything, including the idempotency lookup for caller ids. */
  private async appendWithFunction(claim: Claim, checkIds: boolean, batch: PreparedBatch): Promise<AppendRow[]> {
    const result = await this.pool.query<AppendRow>({
      name: 'ledger_append',
      text: 'SELECT * FROM ledger_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
      values: [
        claim.streamId,
        claim.expectedCode,
        checkIds,
        batch.recordedAt,
        batch.ids,
        batch.types,
        batch.schemaVersions,
        batch.data,
        batch.metadata,
        batch.contentHashes,
      ],
      rowMode: 'array',
    });
    return result.rows;
  }

  /**
   * Group commit for single events: an append that arrives while GROUP_FLUSHES groups are being
   * written waits for the next group, so concurrent callers share one round trip and one commit
   * (each still resolves only after its own event is durable). A caller alone goes straight through.
   */
  private appendSingle(claim: Claim, batch: PreparedBatch): Promise<AppendRow[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ claim, batch, resolve, reject });
      this.flushGroups();
    });
  }

  private flushGroups(): void {
    while (this.flushing < GROUP_FLUSHES && this.waiting.length > 0) {
      const group = this.waiting.splice(0, GROUP_MAX);
      this.flushing++;
      void this.flushGroup(group).finally(() => {
        this.flushing--;
        this.flushGroups();
      });
    }
  }

  private async flushGroup(group: PendingSingle[]): Promise<void> {
    if (group.length === 1) {
      const [only] = group as [PendingSingle];
      await this.appendOne(only.claim, only.batch).then(only.resolve, only.reject);
      return;
    }
    let rows: [number, number | null, number | null, string | null, number | null][];
    try {
      const result = await this.pool.query<[number, number | null, number | null, string | null, number | null]>({
        name: 'ledger_append_group',
        text: 'SELECT * FROM ledger_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        values: [
          group.map((p) => p.claim.streamId),
          group.map((p) => p.claim.expectedCode),
          group.map((p) => p.batch.recordedAt),
          group.map((p) => p.batch.ids[0]),
          group.map((p) => p.batch.types[0]),
          group.map((p) => p.batch.schemaVersions[0]),
          group.map((p) => p.batch.data[0]),
          group.map((p) => p.batch.metadata[0]),
          group.map((p) => p.batch.contentHashes[0]),
        ],
        rowMode: 'array',
      });
      rows = result.rows;
    } catch (error) {
      for (const pending of group) pending.reject(error);
      return;
    }
    for (const [index, streamVersion, globalPosition, transactionId, actual] of rows) {
      const pending = group[index - 1]!;
      if (streamVersion === null) pending.reject(new WrongExpectedVersionError(pending.claim.streamId, pending.claim.expected, actual!));
      else pending.resolve([[pending.batch.ids[0]!, streamVersion, globalPosition!, transactionId!, false]]);
    }
  }

  /**
   * One event with a store-generated id (so no idempotency lookup), the common case, as a single
   * statement: no PL/pgSQL set-up per transaction. It claims the next version exactly as
   * ledger_append does (see CLAIM) and inserts the event with the chain hash the claim computed.
   */
  private async appendOne(claim: Claim, batch: PreparedBatch): Promise<AppendRow[]> {
    return this.claimed(claim, async () => {
      const result = await this.pool.query<AppendRow>({
        name: 'ledger_append_one',
        text: `
          WITH ${CLAIM('ledger_chain_hash(s.last_hash, s.version + 1, $8)', 'ledger_chain_hash(NULL, 1, $8)')}
          INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
          SELECT $1, claimed.version_before + 1, $4, $5, $6, $7, $9, $10, claimed.last_hash FROM claimed
          RETURNING event_id, stream_version, global_position, transaction_id, false`,
        values: [claim.streamId, claim.expectedCode, 1, batch.ids[0], batch.types[0], batch.schemaVersions[0], batch.data[0], batch.contentHashes[0], batch.metadata[0], batch.recordedAt],
        rowMode: 'array',
      });
      return result.rows.length > 0 ? result.rows : null;
    });
  }

  /**
   * A large batch of store-generated events streams in with COPY, PostgreSQL's fastest way in, in
   * one transaction: claim the versions and positions (CLAIM, which returns the previous hash),
   * extend the hash chain here, COPY the rows, then record the stream's last hash and commit. The
   * events are prepared (validated, serialised, content-hashed) chunk by chunk, the first while the
   * claim is in flight and each next one while the server ingests the previous one; an invalid
   * event aborts the COPY, and the transaction is rolled back. With caller ids, the stream's lock
   * is taken first and the ids looked up under it: if any is stored already, nothing is written
   * and null says so (ledger_append then decides between a repeat and a conflict); otherwise a
   * concurrent append of one of the ids elsewhere still meets the unique index.
   */
  private async appendByCopy(claim: Claim, batch: PreparedBatch, events: readonly NewEvent[]): Promise<AppendRow[] | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      if (batch.callerIds) {
        // Two statements: the lookup's snapshot must be taken after the lock is held.
        await client.query({ name: 'ledger_lock_stream', text: 'SELECT pg_advisory_xact_lock(1279524867, hashtext($1))', values: [claim.streamId] });
        const stored = await client.query<[boolean]>({
          name: 'ledger_find_ids',
          text: 'SELECT EXISTS (SELECT 1 FROM events WHERE event_id = ANY($1::text[]))',
          values: [events.flatMap((event) => (typeof event.id === 'string' ? [event.id] : []))],
          rowMode: 'array',
        });
        if (stored.rows[0]![0]) {
          await client.query('ROLLBACK');
          return null;
        }
      }
      // The claim also reserves the batch's global positions, in order, so that nothing needs to
      // be read back after COPY. (The sequence is named directly: looking it up per row cost more
      // than the nextval.)
      const claiming = this.claimed(claim, async () => {
        const result = await client.query<[number, string | null, string[], string]>({
          name: 'ledger_claim',
          text: `WITH ${CLAIM('s.last_hash', 'NULL')}
                 SELECT version_before, last_hash,
                        ARRAY(SELECT nextval('events_global_position_seq'::regclass) FROM generate_series(1, $3::int)),
                        pg_current_xact_id()::text
                   FROM claimed`,
          values: [claim.streamId, claim.expectedCode, claim.count],
          rowMode: 'array',
        });
        return result.rows[0] ?? null;
      }, client);
      let head: [number, string | null, string[], string];
      try {
        batch.addUpTo(events, Math.min(FIRST_COPY_CHUNK, claim.count));
        head = await claiming;
      } catch (error) {
        await claiming.catch(() => {});
        // An invalid event is reported before a wrong expected version, as on the other paths.
        batch.addUpTo(events, claim.count);
        throw error;
      }
      const [versionBefore, , reserved, transactionId] = head;
      // int8[] arrives as strings; positions stay far below 2^53.
      const positions = reserved.map(Number);
      let hash = head[1];
      function* rows(): Generator<string> {
        for (let start = 0, end = 0; start < claim.count; start = end) {
          end = Math.min(start === 0 ? FIRST_COPY_CHUNK : start + COPY_CHUNK, claim.count);
          batch.addUpTo(events, end);
          let chunk = '';
          for (let i = start; i < end; i++) {
            hash = chainHash(hash, versionBefore + i + 1, batch.contentHashes[i]!);
            // Only the JSON columns can hold characters COPY escapes; the rest are validated ids and names.
            chunk += `${positions[i]}\t${claim.streamId}\t${versionBefore + i + 1}\t${batch.ids[i]}\t${batch.types[i]}\t${batch.schemaVersions[i]}\t${copyJson(batch.data[i]!)}\t${copyJson(batch.metadata[i]!)}\t${batch.recordedAt}\t${hash}\n`;
          }
          yield chunk;
        }
      }
      await pipeline(
        Readable.from(rows(), { highWaterMark: 1 }),
        client.query(copyFrom('COPY events (global_position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash) FROM STDIN')),
      );
      // One simple-protocol round trip for both; the stream id is validated and the hash is hex.
      await client.query(`UPDATE streams SET last_hash = ${client.escapeLiteral(hash!)} WHERE stream_id = ${client.escapeLiteral(claim.streamId)}; COMMIT`);
      return batch.ids.map((id, i) => [id, versionBefore + i + 1, positions[i]!, transactionId, false]);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * Runs a CLAIM statement. Only CLAIM's guard against creating a stream under an exact or
   * `stream_exists` expectation reads the statement's snapshot, taken before the lock; so when no
   * row comes back, the stream's current version decides between trying again (the expectation
   * holds after all) and WrongExpectedVersion.
   */
  private async claimed<T>(claim: Claim, attempt: () => Promise<T | null>, client: pg.ClientBase | pg.Pool = this.pool): Promise<T> {
    for (;;) {
      const result = await attempt();
      if (result !== null) return result;
      const actual = await this.streamVersion(claim.streamId, client);
      if (!expectationHolds(claim.expected, actual)) throw new WrongExpectedVersionError(claim.streamId, claim.expected, actual);
    }
  }

  private async streamVersion(streamId: string, client: pg.ClientBase | pg.Pool): Promise<number> {
    const result = await client.query<[number]>({
      name: 'ledger_stream_version',
      text: 'SELECT version FROM streams WHERE stream_id = $1',
      values: [streamId],
      rowMode: 'array',
    });
    return result.rows[0]?.[0] ?? 0;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    parseField(StreamIdSchema, streamId, 'streamId');
    const maxCount = parseField(MaxCountSchema, options.maxCount ?? 100_000, 'maxCount');
    const backwards = options.direction === 'backwards';
    const from = options.fromVersion ?? (backwards ? Number.MAX_SAFE_INTEGER : 1);
    parseField(z.number().int().nonnegative(), from, 'fromVersion');
    const result = await this.pool.query<EventRow>({
      name: backwards ? 'ledger_read_stream_backwards' : 'ledger_read_stream',
      text: backwards
        ? `SELECT ${COLUMNS} FROM events WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version DESC LIMIT $3`
        : `SELECT ${COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`,
      values: [streamId, from, maxCount],
      rowMode: 'array',
    });
    return result.rows.map((row) => this.decode(row));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const maxCount = parseField(MaxCountSchema, options.maxCount ?? 1000, 'maxCount');
    const rows = await this.fetchLogPage(options.after ?? null, maxCount);
    return rows.map((row) => this.decode(row));
  }

  async *readAllPages(options: ReadAllOptions = {}): AsyncGenerator<RecordedEvent[]> {
    const maxCount = parseField(MaxCountSchema, options.maxCount ?? 1000, 'maxCount');
    let pending: Promise<EventRow[]> | null = this.fetchLogPage(options.after ?? null, maxCount);
    try {
      while (pending) {
        const rows: EventRow[] = await pending;
        const last = rows[rows.length - 1];
        // The next page's query runs on the server while this one is decoded and consumed.
        pending = last && rows.length === maxCount ? this.fetchLogPage({ transactionId: last[1], position: last[0] }, maxCount) : null;
        if (rows.length > 0) yield rows.map((row) => this.decode(row));
      }
    } finally {
      // A consumer that stops early leaves a prefetch in flight: let it settle quietly.
      await pending?.catch(() => {});
    }
  }

  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<RecordedEvent> {
    const { notifier, pollIntervalMs = 500 } = this.options;
    const maxCount = options.maxCount ?? 500;
    let after = options.after ?? null;
    while (!options.signal?.aborted) {
      const mark = notifier?.mark() ?? 0;
      const page = await this.readAll({ after, maxCount });
      for (const event of page) {
        if (options.signal?.aborted) return;
        yield event;
        after = { transactionId: event.transactionId, position: event.globalPosition };
      }
      if (page.length < maxCount) {
        // A notification can arrive while its events are still behind the horizon, held back by an
        // older transaction (of any database in the cluster) that nothing will notify about when it
        // ends: then re-read soon instead of waiting out the poll interval.
        const waitMs = (await this.committedBeyondHorizon()) ? Math.min(pollIntervalMs, HORIZON_RECHECK_MS) : pollIntervalMs;
        if (notifier) await notifier.wait(waitMs, mark, options.signal);
        else await sleep(waitMs, options.signal);
      }
    }
  }

  /**
   * Global order without skips. global_position comes from a sequence, so a transaction can commit
   * a lower position after a reader has already seen a higher one; reading by position alone would
   * skip it forever. Instead (as Emmett does) every event stores its writer's transaction id, and a
   * reader sees only events whose transaction id is below the oldest transaction still running
   * (pg_snapshot_xmin of the current snapshot): that prefix of the log is final, nothing can be
   * added to it any more. Within it the order is (transaction_id, global_position), and the
   * cursor is that same pair; ordering by one key and continuing from another would lose events.
   * Transaction ids are server-wide: a long-running writing transaction in any database of the
   * server delays readers (never makes them skip); keep transactions short.
   */
  private async fetchLogPage(after: LogCursor | null, maxCount: number): Promise<EventRow[]> {
    const result = await this.pool.query<EventRow>({
      name: 'ledger_read_all',
      text: `SELECT ${COLUMNS} FROM events
              WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id, global_position
              LIMIT $3`,
      values: [after?.transactionId ?? '0', after?.position ?? 0, maxCount],
      rowMode: 'array',
    });
    return result.rows;
  }

  private async committedBeyondHorizon(): Promise<boolean> {
    const result = await this.pool.query<[boolean]>({
      name: 'ledger_committed_beyond_horizon',
      text: `SELECT EXISTS (SELECT 1 FROM events WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))`,
      rowMode: 'array',
    });
    return result.rows[0]![0];
  }

  async head(): Promise<LogCursor | null> {
    const result = await this.pool.query<[string, number]>({
      name: 'ledger_head',
      text: `SELECT transaction_id, global_position FROM events
              WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id DESC, global_position DESC LIMIT 1`,
      rowMode: 'array',
    });
    const row = result.rows[0];
    return row ? { transactionId: row[0], position: row[1] } : null;
  }

  private decode(row: EventRow): RecordedEvent {
    const [globalPosition, transactionId, streamId, streamVersion, id, type, storedVersion, data, metadata, recordedAtMs, hash] = row;
    const valid = this.catalogue.upcast(type, storedVersion, data, () => `stream ${streamId} version ${streamVersion}`);
    return {
      id,
      streamId,
      streamVersion,
      globalPosition,
      transactionId,
      type,
      schemaVersion: valid.schemaVersion,
      data: valid.data,
      metadata,
      recordedAt: new Date(recordedAtMs),
      hash,
    };
  }
}

/**
 * Claims `$3` versions of stream `$1` under expectation code `$2`, as ledger_append does: the
 * per-stream lock first (before the transaction has an id, see ledger_append), then one upsert that
 * checks the expected version against the stream's latest committed row and moves it on. The CTE
 * `claimed` yields (version_before, last_hash) with last_hash set by the given expressions.
 */
function CLAIM(lastHashOnUpdate: string, lastHashOnCreate: string): string {
  return `locked AS (SELECT pg_advisory_xact_lock(1279524867, hashtext($1))),
          claimed AS (
            INSERT INTO streams AS s (stream_id, version, last_hash)
            SELECT $1, $3, ${lastHashOnCreate} FROM locked
             WHERE $2 IN (-1, -2, 0) OR EXISTS (SELECT 1 FROM streams WHERE stream_id = $1)
            ON CONFLICT (stream_id) DO UPDATE
              SET version = s.version + $3, updated_at = now(), last_hash = ${lastHashOnUpdate}
              WHERE $2 = -1 OR ($2 = -3 AND s.version > 0) OR s.version = $2
            RETURNING s.version - $3 AS version_before, s.last_hash
          )`;
}

/**
 * JSON in COPY's text format. JSON.stringify output holds no raw tab, newline or carriage return
 * (strings escape them), so only its backslashes need escaping.
 */
function copyJson(json: string): string {
  return json.includes('\\') ? json.replaceAll('\\', '\\\\') : json;
}

function expectationHolds(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === 0;
  if (expected === 'stream_exists') return actual > 0;
  return actual === expected;
}

function translateAppendError(error: unknown, streamId: string, expected: ExpectedVersion, ids: string[]): unknown {
  const pgError = error as { code?: string; detail?: string; message?: string; constraint?: string };
  if (pgError.code === 'LD001') return new WrongExpectedVersionError(streamId, expected, Number(pgError.detail));
  if (pgError.code === 'LD002') return new EventIdConflictError(streamId, ids, pgError.message ?? '');
  if (pgError.code === '23505' && pgError.constraint === 'events_event_id_key') {
    return new EventIdConflictError(streamId, ids, 'an event id was stored concurrently in another stream');
  }
  return error;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
