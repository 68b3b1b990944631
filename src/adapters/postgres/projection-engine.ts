import { sql, type Kysely, type Transaction } from 'kysely';
import { ulid } from 'ulid';
import { cursorReached, type EventStore, type LogCursor, type RecordedEvent } from '../../ports/event-store.ts';
import { PROJECTOR_NAME, type Projector } from '../../projections/projector.ts';

/**
 * Advisory-lock namespaces: one for applying a batch (per transaction), one for worker leadership.
 * 0x4c44_0003 is ledger_append's per-stream lock (in the event-store migration); REBUILD_LOCK
 * allows one rebuild per projector at a time.
 */
export const APPLY_LOCK = 0x4c44_0001;
export const LEADER_LOCK = 0x4c44_0002;
export const REBUILD_LOCK = 0x4c44_0004;

const START: LogCursor = { transactionId: '0', position: 0 };

export interface ProjectionStatus {
  readonly projector: string;
  readonly version: number;
  readonly checkpoint: LogCursor;
  readonly headPosition: number;
  /** Events in the log after the checkpoint (capped at 1,000,000). */
  readonly eventsBehind: number;
  /** Seconds since the oldest event the projector has not applied was recorded; 0 when caught up. */
  readonly oldestUnprocessedAgeSeconds: number;
  readonly updatedAt: Date | null;
  readonly rebuiltAt: Date | null;
}

export interface RebuildProgress {
  readonly applied: number;
  readonly total: number;
}

/**
 * Applies a projector's events in log order with its checkpoint written in the same transaction,
 * rebuilds it into fresh tables swapped in atomically, and reports its lag.
 */
export class ProjectionEngine {
  constructor(
    private readonly db: Kysely<unknown>,
    private readonly store: EventStore,
    readonly projectors: readonly Projector[],
    private readonly options: { batchSize?: number } = {},
  ) {
    const names = new Set<string>();
    for (const projector of projectors) {
      if (!PROJECTOR_NAME.test(projector.name)) throw new Error(`projector name "${projector.name}" must match ${PROJECTOR_NAME}`);
      if (names.has(projector.name)) throw new Error(`projector ${projector.name} is registered twice`);
      names.add(projector.name);
    }
  }

  private get batchSize(): number {
    return this.options.batchSize ?? 500;
  }

  projector(name: string): Projector {
    const projector = this.projectors.find((p) => p.name === name);
    if (!projector) throw new Error(`unknown projector "${name}" (known: ${this.projectors.map((p) => p.name).join(', ')})`);
    return projector;
  }

  /**
   * Creates a projector's tables and checkpoint on first use. Returns 'rebuild' when the stored
   * tables were made by another version of the projector (or have gone missing).
   */
  async ensure(projector: Projector): Promise<'ready' | 'rebuild'> {
    return this.db.transaction().execute(async (trx) => {
      await lockApply(trx, projector);
      const checkpoint = await readCheckpoint(trx, projector.name);
      const present = await tablesPresent(trx, 'public', projector.tables);
      if (!checkpoint && present === 0) {
        await projector.createTables(trx);
        await sql`INSERT INTO projection_checkpoints (projector, projector_version) VALUES (${projector.name}, ${projector.version})`.execute(trx);
        return 'ready';
      }
      return checkpoint?.projector_version === projector.version && present === projector.tables.length ? 'ready' : 'rebuild';
    });
  }

  /**
   * Applies the next batch after the checkpoint. Events are read outside the transaction; inside
   * it, under the projector's apply lock, the checkpoint is checked again so that a batch another
   * worker (or a rebuild's swap) has already applied is dropped, never applied twice.
   * Returns how many events the checkpoint moved past (0 when caught up).
   */
  async applyNextBatch(projector: Projector): Promise<number> {
    const from = await this.checkpointOf(projector.name);
    const events = await this.store.readAll({ after: from, maxCount: this.batchSize });
    if (events.length === 0) return 0;
    return this.db.transaction().execute(async (trx) => {
      await lockApply(trx, projector);
      const current = (await readCheckpoint(trx, projector.name)) ?? START;
      if (current.transactionId !== from.transactionId || current.position !== from.position) return 0;
      await applyEvents(trx, projector, events);
      await writeCheckpoint(trx, projector, events[events.length - 1]!);
      return events.length;
    });
  }

  /** Applies batches until no further event is visible to readers (see readAll's horizon). */
  async catchUp(projector: Projector): Promise<number> {
    let total = 0;
    for (let applied = await this.applyNextBatch(projector); applied > 0; applied = await this.applyNextBatch(projector)) {
      total += applied;
    }
    return total;
  }

  /**
   * Applies until the projector holds every event committed before the call (or up to `target`).
   * Unlike catchUp, it waits out transactions anywhere on the server that hold the read horizon
   * back, so what it returns after is a read model a caller can check against the log.
   */
  async catchUpTo(projector: Projector, target?: LogCursor, pollMs = 10): Promise<void> {
    const goal = target ?? (await this.headCursor());
    if (!goal) return;
    for (;;) {
      await this.catchUp(projector);
      if (cursorReached(await this.checkpointOf(projector.name), goal)) return;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /** Whether every projector has applied the log up to `target`: what a read-your-writes query waits for. */
  async projectedTo(target: LogCursor): Promise<boolean> {
    const result = await sql<{ behind: number }>`
      SELECT count(*)::int AS behind FROM projection_checkpoints
       WHERE projector = ANY(${this.projectors.map((p) => p.name)}) AND (transaction_id, position) < (${target.transactionId}::xid8, ${target.position})`.execute(this.db);
    return result.rows[0]?.behind === 0;
  }

  /** The last committed event's place in the log order, or null for an empty log. */
  async headCursor(): Promise<LogCursor | null> {
    const result = await sql<{ transaction_id: string; global_position: number }>`
      SELECT transaction_id::text, global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1`.execute(this.db);
    const row = result.rows[0];
    return row ? { transactionId: row.transaction_id, position: row.global_position } : null;
  }

  /**
   * Replays the whole log into fresh tables in a schema of their own (committed page by page, so
   * no long transaction holds back log readers), then, under the apply lock, applies the tail and
   * swaps the fresh tables in for the live ones in one transaction. Readers see the old tables
   * until that commit and the new ones after it: never an empty or half-built read model.
   */
  async rebuild(projector: Projector, onProgress?: (progress: RebuildProgress) => void): Promise<number> {
    // One rebuild of a projector at a time, held by a session lock on a connection of its own; the
    // holder may clear fresh-table schemas that a crashed rebuild left behind.
    return this.db.connection().execute(async (connection) => {
      const locked = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${REBUILD_LOCK}, hashtext(${projector.name})) AS locked`.execute(connection);
      if (!locked.rows[0]?.locked) throw new Error(`a rebuild of ${projector.name} is already running`);
      try {
        await this.dropLeftoverSchemas(projector);
        return await this.replayIntoFreshTables(projector, onProgress);
      } finally {
        await sql`SELECT pg_advisory_unlock(${REBUILD_LOCK}, hashtext(${projector.name}))`.execute(connection);
      }
    });
  }

  private async dropLeftoverSchemas(projector: Projector): Promise<void> {
    const leftovers = await sql<{ nspname: string }>`
      SELECT nspname FROM pg_namespace WHERE nspname ~ ${`^rebuild_${projector.name}_[0-9a-z]{26}$`}`.execute(this.db);
    for (const { nspname } of leftovers.rows) await sql`DROP SCHEMA ${sql.id(nspname)} CASCADE`.execute(this.db);
  }

  private async replayIntoFreshTables(projector: Projector, onProgress?: (progress: RebuildProgress) => void): Promise<number> {
    const schema = `rebuild_${projector.name}_${ulid().toLowerCase()}`;
    const total = await this.countEvents();
    let applied = 0;
    let cursor: LogCursor = START;
    await this.db.transaction().execute(async (trx) => {
      await sql`CREATE SCHEMA ${sql.id(schema)}`.execute(trx);
      await useSchema(trx, schema);
      await projector.createTables(trx);
    });
    try {
      const replayPage = async (trx: Transaction<unknown>, events: readonly RecordedEvent[]) => {
        await useSchema(trx, schema);
        await applyEvents(trx, projector, events);
        cursor = cursorOf(events[events.length - 1]!);
        applied += events.length;
        onProgress?.({ applied, total: Math.max(total, applied) });
      };
      for await (const page of this.store.readAllPages({ after: cursor, maxCount: this.batchSize })) {
        await this.db.transaction().execute((trx) => replayPage(trx, page));
      }
      await this.db.transaction().execute(async (trx) => {
        await lockApply(trx, projector);
        for await (const page of this.store.readAllPages({ after: cursor, maxCount: this.batchSize })) await replayPage(trx, page);
        await sql`SET LOCAL search_path TO public`.execute(trx);
        for (const table of projector.tables) {
          await sql`DROP TABLE IF EXISTS public.${sql.id(table)}`.execute(trx);
          await sql`ALTER TABLE ${sql.id(schema, table)} SET SCHEMA public`.execute(trx);
        }
        await sql`DROP SCHEMA ${sql.id(schema)}`.execute(trx);
        await sql`
          INSERT INTO projection_checkpoints (projector, projector_version, transaction_id, position, updated_at, rebuilt_at)
          VALUES (${projector.name}, ${projector.version}, ${cursor.transactionId}::xid8, ${cursor.position}, now(), now())
          ON CONFLICT (projector) DO UPDATE SET projector_version = excluded.projector_version,
            transaction_id = excluded.transaction_id, position = excluded.position, updated_at = now(), rebuilt_at = now()`.execute(trx);
      });
    } catch (error) {
      await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(this.db).catch(() => {});
      throw error;
    }
    return applied;
  }

  async status(): Promise<ProjectionStatus[]> {
    const result = await sql<{
      projector: string;
      projector_version: number;
      transaction_id: string;
      position: number;
      updated_at: Date;
      rebuilt_at: Date | null;
      head_position: number | null;
      events_behind: number;
      oldest_unprocessed_at: Date | null;
    }>`
      SELECT c.projector, c.projector_version, c.transaction_id::text, c.position, c.updated_at, c.rebuilt_at,
             (SELECT max(global_position) FROM events) AS head_position,
             (SELECT count(*) FROM (SELECT 1 FROM events e
                 WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.position) LIMIT 1000000) behind)::bigint AS events_behind,
             (SELECT e.recorded_at FROM events e
                 WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.position)
                 ORDER BY e.transaction_id, e.global_position LIMIT 1) AS oldest_unprocessed_at
        FROM projection_checkpoints c`.execute(this.db);
    const byName = new Map(result.rows.map((row) => [row.projector, row]));
    return this.projectors.map((projector) => {
      const row = byName.get(projector.name);
      return {
        projector: projector.name,
        version: row?.projector_version ?? projector.version,
        checkpoint: row ? { transactionId: row.transaction_id, position: row.position } : START,
        headPosition: row?.head_position ?? 0,
        eventsBehind: row?.events_behind ?? 0,
        oldestUnprocessedAgeSeconds: row?.oldest_unprocessed_at ? Math.max(0, (Date.now() - row.oldest_unprocessed_at.getTime()) / 1000) : 0,
        updatedAt: row?.updated_at ?? null,
        rebuiltAt: row?.rebuilt_at ?? null,
      };
    });
  }

  private async checkpointOf(name: string): Promise<LogCursor> {
    return (await readCheckpoint(this.db, name)) ?? START;
  }

  private async countEvents(): Promise<number> {
    const result = await sql<{ count: number }>`SELECT count(*)::bigint AS count FROM events`.execute(this.db);
    return result.rows[0]?.count ?? 0;
  }
}

async function applyEvents(trx: Transaction<unknown>, projector: Projector, events: readonly RecordedEvent[]): Promise<void> {
  const handled = projector.handles === 'all' ? events : events.filter((event) => (projector.handles as readonly string[]).includes(event.type));
  if (handled.length > 0) await projector.apply(trx, handled);
}

function lockApply(trx: Transaction<unknown>, projector: Projector) {
  return sql`SELECT pg_advisory_xact_lock(${APPLY_LOCK}, hashtext(${projector.name}))`.execute(trx);
}

function useSchema(trx: Transaction<unknown>, schema: string) {
  return sql`SELECT set_config('search_path', ${sql.lit(schema)}, true)`.execute(trx);
}

async function readCheckpoint(
  db: Kysely<unknown> | Transaction<unknown>,
  name: string,
): Promise<(LogCursor & { projector_version: number }) | null> {
  const result = await sql<{ transaction_id: string; position: number; projector_version: number }>`
    SELECT transaction_id::text, position, projector_version FROM projection_checkpoints WHERE projector = ${name}`.execute(db);
  const row = result.rows[0];
  return row ? { transactionId: row.transaction_id, position: row.position, projector_version: row.projector_version } : null;
}

async function writeCheckpoint(trx: Transaction<unknown>, projector: Projector, last: RecordedEvent): Promise<void> {
  await sql`
    UPDATE projection_checkpoints SET transaction_id = ${last.transactionId}::xid8, position = ${last.globalPosition}, updated_at = now()
     WHERE projector = ${projector.name}`.execute(trx);
}

async function tablesPresent(trx: Transaction<unknown>, schema: string, tables: readonly string[]): Promise<number> {
  const result = await sql<{ count: number }>`
    SELECT count(*)::bigint AS count FROM pg_tables WHERE schemaname = ${schema} AND tablename = ANY(${[...tables]})`.execute(trx);
  return result.rows[0]?.count ?? 0;
}

function cursorOf(event: RecordedEvent): LogCursor {
  return { transactionId: event.transactionId, position: event.globalPosition };
}
