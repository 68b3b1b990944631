import type pg from 'pg';
import type { Logger } from 'pino';
import { ulid } from 'ulid';
import { requestSync, retrySync, loadConnection } from '../../commands/sync-requests.ts';
import { runSync, type SyncOutcome } from '../../commands/sync-run.ts';
import type { SyncServices } from '../../commands/sync-services.ts';
import type { DataType } from '../../domain/platforms/records.ts';
import { nextRunAfter, scheduleOf, type Schedule } from './schedules.ts';

/** Serialises claims across worker processes, so that the global bound holds. */
const CLAIM_LOCK = 0x4c44_0010;

/** One sync a worker runs: a scheduled data type, or a requested operation holding the rows of all its data types. */
export interface QueuedSync {
  readonly connectionId: string;
  /** The rows the sync holds, each a data type on its own schedule. */
  readonly rows: readonly { readonly dataType: DataType; readonly schedule: Schedule }[];
  readonly trigger: 'manual' | 'schedule' | 'webhook' | 'retry';
  readonly requestedBy: string;
  readonly force: boolean;
  readonly operationId: string | null;
}

/** A requested operation whose data types are syncing, or queued for another operation, already. */
export class SyncBusyError extends Error {
  override readonly name = 'SyncBusyError';
  constructor(
    readonly connectionId: string,
    readonly holders: readonly { readonly dataType: DataType; readonly operationId: string | null; readonly running: boolean }[],
  ) {
    super(
      `connection ${connectionId}: ${holders
        .map((h) => `${h.dataType} is ${h.running ? 'syncing' : 'queued'}${h.operationId ? ` in operation ${h.operationId}` : ''}`)
        .join('; ')}`,
    );
  }
}

export interface SyncWorkerOptions {
  /** Syncs this worker runs at once. */
  readonly concurrency?: number;
  /** Syncs running at once across every worker. */
  readonly globalConcurrency?: number;
  readonly pollMs?: number;
  readonly heartbeatMs?: number;
  /** A running sync whose heartbeat is older than this belongs to a dead worker. */
  readonly staleAfterMs?: number;
  readonly logger?: Logger;
  /** Told of every finished sync (tests, metrics). */
  readonly onFinished?: (job: QueuedSync, outcome: SyncOutcome) => void;
}

/**
 * The durable sync queue: one row per connection and data type holding its schedule, when it is
 * next due and whether it is running. One row per pair makes "never two syncs of one connection
 * and data type at once" a property of the table; a claim takes due rows with SKIP LOCKED under a
 * lock that also enforces the global bound. A running row names its worker and is touched by that
 * worker's heartbeat; a row whose heartbeat stopped (the worker was killed) is given back and its
 * operation runs again, which resumes it without appending anything twice.
 * An operation requested for several data types (a person's sync, a retry) is written on the row of
 * each, and a claim takes all of them together: it runs once and holds every pair it touches.
 * The table is made by migration 0004.
 */
export class SyncQueue {
  constructor(
    private readonly pool: pg.Pool,
    private readonly services: SyncServices,
  ) {}

  /**
   * Puts a connection's data types on their schedules (the platform's, or the connection's own
   * frequency), first due now. Re-scheduling keeps when each is next due unless the schedule changed.
   * `db`: a transaction's client, to schedule within it.
   */
  async schedule(connectionId: string, dataTypes?: readonly DataType[], db: Pick<pg.Pool, 'query'> = this.pool): Promise<number> {
    const connection = await loadConnection(this.services.store, connectionId);
    if (connection.status === 'absent') throw new Error(`connection ${connectionId} does not exist`);
    const types = dataTypes ?? this.services.adapterFor(connection.platform).capabilities;
    const autoSync = connection.status !== 'disconnected' && connection.settings.autoSync;
    const schedules = types.map((type) => JSON.stringify(scheduleOf(connection.platform, type, connection.settings.syncFrequencyMinutes)));
    const result = await db.query(
      `INSERT INTO sync_queue (connection_id, data_type, schedule, auto_sync, next_run_at)
       SELECT $1, t, s::jsonb, $4, now() FROM unnest($2::text[], $3::text[]) AS q(t, s)
       ON CONFLICT (connection_id, data_type) DO UPDATE SET schedule = excluded.schedule, auto_sync = excluded.auto_sync,
         next_run_at = CASE WHEN sync_queue.schedule = excluded.schedule THEN sync_queue.next_run_at ELSE now() END`,
      [connectionId, [...types], schedules, autoSync],
    );
    return result.rowCount ?? 0;
  }

  /** A sync wanted now (a person, or a webhook): due at once, or right after the one running. */
  async trigger(connectionId: string, dataType: DataType, trigger: 'manual' | 'webhook', requestedBy: string, force = false): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE sync_queue SET next_run_at = now(), trigger = $3, requested_by = $4, force = force OR $5
        WHERE connection_id = $1 AND data_type = $2`,
      [connectionId, dataType, trigger, requestedBy, force],
    );
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * Queues a requested operation, due now, on the rows of its data types. `record` appends the
   * operation to the log while those rows are locked, so a refused request leaves the queue as it was
   * and a worker never claims an operation before it exists. Rows syncing, or holding another
   * operation, refuse it (SyncBusyError) before anything is recorded; an operation already queued
   * there is left as it is.
   */
  async enqueue(
    request: { connectionId: string; dataTypes: readonly DataType[]; operationId: string; trigger: 'manual' | 'retry'; requestedBy: string; force: boolean },
    record: () => Promise<unknown>,
  ): Promise<void> {
    const { connectionId, dataTypes, operationId } = request;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Under the claims' lock: a claim locks an operation's rows in its own order, which could deadlock with ours.
      await client.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
      // A connection never scheduled (made outside the API) gets its rows here, locked with the others.
      await this.schedule(connectionId, dataTypes, client);
      const rows = await client.query<{ data_type: DataType; running: boolean; operation_id: string | null }>(
        'SELECT data_type, running, operation_id FROM sync_queue WHERE connection_id = $1 AND data_type = ANY($2::text[]) ORDER BY data_type FOR UPDATE',
        [connectionId, [...dataTypes]],
      );
      if (rows.rows.every((row) => row.operation_id === operationId)) {
        // Queued already (a retry the scheduler made, say): due now rather than when it was planned.
        await client.query('UPDATE sync_queue SET next_run_at = now() WHERE connection_id = $1 AND data_type = ANY($2::text[]) AND NOT running', [connectionId, [...dataTypes]]);
        await client.query('COMMIT');
        return;
      }
      const busy = rows.rows.filter((row) => row.running || (row.operation_id !== null && row.operation_id !== operationId));
      if (busy.length > 0) throw new SyncBusyError(connectionId, busy.map((row) => ({ dataType: row.data_type, operationId: row.operation_id, running: row.running })));
      await record();
      await client.query(
        `UPDATE sync_queue SET operation_id = $3, next_run_at = now(), trigger = $4, requested_by = $5, force = $6
          WHERE connection_id = $1 AND data_type = ANY($2::text[])`,
        [connectionId, [...dataTypes], operationId, request.trigger, request.requestedBy, request.force],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /** Starts a worker in this process; stop() ends it after the syncs it is running. */
  startWorker(options: SyncWorkerOptions = {}): SyncWorker {
    const worker = new SyncWorker(this.pool, this.services, options);
    worker.start();
    return worker;
  }
}

export class SyncWorker {
  readonly id = `worker-${ulid()}`;
  private readonly abort = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly services: SyncServices,
    private readonly options: SyncWorkerOptions,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.loop;
    await Promise.allSettled(this.running);
  }

  private get concurrency(): number {
    return this.options.concurrency ?? 4;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const pollMs = this.options.pollMs ?? 1000;
    const heartbeatMs = this.options.heartbeatMs ?? 5000;
    let lastBeat = 0;
    while (!signal.aborted) {
      try {
        if (Date.now() - lastBeat >= heartbeatMs) {
          await this.heartbeat();
          lastBeat = Date.now();
        }
        const free = this.concurrency - this.running.size;
        const jobs = free > 0 ? await this.claim(free) : [];
        for (const job of jobs) {
          const task = this.execute(job).finally(() => {
            this.running.delete(task);
            this.wake?.();
          });
          this.running.add(task);
        }
        if (jobs.length === 0 || this.running.size >= this.concurrency) await this.idle(Math.min(pollMs, heartbeatMs));
      } catch (error) {
        this.options.logger?.warn({ err: error }, 'sync worker could not reach the queue');
        await this.idle(pollMs);
      }
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Keeps this worker's running rows alive and gives back those of workers that stopped beating. */
  private async heartbeat(): Promise<void> {
    await this.pool.query('UPDATE sync_queue SET heartbeat_at = now() WHERE running AND locked_by = $1', [this.id]);
    const stale = await this.pool.query(
      `UPDATE sync_queue SET running = false, locked_by = NULL, heartbeat_at = NULL, next_run_at = now()
        WHERE running AND locked_by <> $2 AND heartbeat_at < now() - make_interval(secs => $1) RETURNING connection_id, data_type, locked_by`,
      [(this.options.staleAfterMs ?? 30_000) / 1000, this.id],
    );
    for (const row of stale.rows) this.options.logger?.warn({ connectionId: row.connection_id, dataType: row.data_type }, 'sync of a dead worker given back');
  }

  private async claim(free: number): Promise<QueuedSync[]> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
      const global = this.options.globalConcurrency ?? Number.MAX_SAFE_INTEGER;
      const result = await client.query<{ connection_id: string; data_type: DataType; trigger: QueuedSync['trigger']; requested_by: string; force: boolean; operation_id: string | null; schedule: Schedule }>(
        `WITH due AS (
           SELECT connection_id, data_type, operation_id FROM sync_queue
            WHERE NOT running AND next_run_at <= now() AND (auto_sync OR trigger <> 'schedule' OR operation_id IS NOT NULL)
            ORDER BY next_run_at
            LIMIT greatest(0, least($2::bigint, $3::bigint - (SELECT count(*) FROM sync_queue WHERE running)))
            FOR UPDATE SKIP LOCKED)
         UPDATE sync_queue q SET running = true, locked_by = $1, heartbeat_at = now(), runs = runs + 1
          WHERE NOT q.running
            AND ((q.connection_id, q.data_type) IN (SELECT connection_id, data_type FROM due)
                 -- An operation's other rows come with it, so that it runs once holding all of them.
                 OR q.operation_id IN (SELECT operation_id FROM due))
        RETURNING q.connection_id, q.data_type, q.trigger, q.requested_by, q.force, q.operation_id, q.schedule`,
        [this.id, free, global],
      );
      await client.query('COMMIT');
      const jobs = new Map<string, QueuedSync>();
      for (const row of result.rows) {
        const key = row.operation_id ?? `${row.connection_id}\u0000${row.data_type}`;
        const held = jobs.get(key);
        const entry = { dataType: row.data_type, schedule: row.schedule };
        if (held) jobs.set(key, { ...held, rows: [...held.rows, entry] });
        else jobs.set(key, { connectionId: row.connection_id, rows: [entry], trigger: row.trigger, requestedBy: row.requested_by, force: row.force, operationId: row.operation_id });
      }
      return [...jobs.values()];
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  private async execute(job: QueuedSync): Promise<void> {
    const dataTypes = job.rows.map((row) => row.dataType);
    const log = this.options.logger?.child({ connectionId: job.connectionId, dataTypes });
    try {
      let operationId = job.operationId;
      if (operationId === null) {
        // The operation is named in the row before it runs: a worker that dies mid-sync leaves it there to be resumed.
        operationId = ulid();
        await requestSync(this.services, { connectionId: job.connectionId, dataTypes, force: job.force, trigger: job.trigger, requestedBy: job.requestedBy, operationId });
        await this.pool.query('UPDATE sync_queue SET operation_id = $3 WHERE connection_id = $1 AND data_type = ANY($2::text[]) AND locked_by = $4', [job.connectionId, dataTypes, operationId, this.id]);
      }
      const outcome = await runSync(this.services, operationId);
      await this.finish(job, outcome);
      this.options.onFinished?.(job, outcome);
    } catch (error) {
      log?.error({ err: error }, 'sync could not run; it is tried again later');
      await this.release(job, Date.now() + (this.options.pollMs ?? 1000) * 10).catch(() => {});
    }
  }

  /** Back on the schedule; a failed sync that the retry rule retries is queued as its retry, due when the rule says. */
  private async finish(job: QueuedSync, outcome: SyncOutcome): Promise<void> {
    let retryOperationId: string | null = null;
    if (outcome.status === 'failed' && outcome.retryAt) {
      retryOperationId = (await retrySync(this.services, { operationId: outcome.operationId, failedOnly: false, requestedBy: 'scheduler' })).operationId;
    }
    for (const { dataType, schedule } of job.rows) {
      const next = retryOperationId !== null && outcome.retryAt ? Date.parse(outcome.retryAt) : nextRunAfter(schedule, Date.now());
      await this.pool.query(
        `UPDATE sync_queue SET running = false, locked_by = NULL, heartbeat_at = NULL, operation_id = $3, last_operation_id = $4,
           last_status = $5, last_finished_at = now(), force = false, trigger = CASE WHEN $3::text IS NULL THEN 'schedule' ELSE 'retry' END,
           requested_by = 'scheduler',
           -- A trigger that arrived while this sync ran stays due now.
           next_run_at = CASE WHEN trigger <> $7 AND next_run_at <= now() THEN next_run_at ELSE to_timestamp($6 / 1000.0) END
         WHERE connection_id = $1 AND data_type = $2 AND locked_by = $8`,
        [job.connectionId, dataType, retryOperationId, outcome.operationId, outcome.status, next, job.trigger, this.id],
      );
    }
  }

  private async release(job: QueuedSync, at: number): Promise<void> {
    await this.pool.query(
      `UPDATE sync_queue SET running = false, locked_by = NULL, heartbeat_at = NULL, next_run_at = to_timestamp($3 / 1000.0)
        WHERE connection_id = $1 AND data_type = ANY($2::text[]) AND locked_by = $4`,
      [job.connectionId, job.rows.map((row) => row.dataType), at, this.id],
    );
  }
}
