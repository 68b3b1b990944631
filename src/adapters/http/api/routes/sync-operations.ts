import { sql } from 'kysely';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { loadConnection, loadOperation, retryOperationId, retrySync } from '../../../../commands/sync-requests.ts';
import { DataTypeSchema, PlatformSchema, type DataType } from '../../../../domain/platforms/records.ts';
import { SyncErrorCodeSchema } from '../../../../domain/platforms/sync-error.ts';
import { retryRequest } from '../../../../domain/sync/sync-operation.ts';
import type { LogCursor } from '../../../../ports/event-store.ts';
import { SyncBusyError } from '../../../scheduler/sync-queue.ts';
import { principalOf, type ApiContext, type ApiRoutes } from '../context.ts';
import { ApiProblem, notFound } from '../problem.ts';
import { commonErrors, decodePageCursor, DecimalString, encodePageCursor, IdParamsSchema, IdSchema, instant, InstantSchema, PageQuerySchema, pageOf, PositionSchema, withPosition } from '../schemas.ts';
import { monitoredOwner, visibleSyncOperation } from '../tenancy.ts';

/** Sync monitoring: operations, their errors, the overall state, and retries. */

const OperationStatusSchema = z.enum(['requested', 'running', 'completed', 'partial', 'failed']);
/** Operations requested within this window count in /sync-status's metrics. */
const METRICS_WINDOW_HOURS = 24;
/** Record errors and warnings shown with one operation; the counts say how many there are in all. */
const ERRORS_SHOWN = 100;
/** Finished operations of a connection whose durations estimate the next one's. */
const ESTIMATE_SAMPLE = 10;

const StatisticsSchema = z.object({
  processed: z.number().int(),
  inserted: z.number().int(),
  updated: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
  pulled: z.record(z.string(), z.number().int()).meta({ description: 'Records pulled from the platform so far, per data type' }),
});

const OperationSummarySchema = z.object({
  operationId: z.string(),
  connectionId: z.string(),
  platform: PlatformSchema.nullable(),
  dataTypes: z.array(DataTypeSchema),
  trigger: z.enum(['manual', 'schedule', 'webhook', 'retry']),
  status: OperationStatusSchema,
  attempt: z.number().int(),
  retryOf: z.string().nullable(),
  retriedBy: z.string().nullable(),
  requestedAt: InstantSchema,
  startedAt: InstantSchema.nullable(),
  finishedAt: InstantSchema.nullable(),
  durationMs: z.number().int().nullable(),
  errorCount: z.number().int().meta({ description: 'Record-level errors and warnings recorded' }),
  statistics: StatisticsSchema,
});

const RecordErrorSchema = z.object({
  dataType: DataTypeSchema,
  recordId: z.string(),
  code: SyncErrorCodeSchema,
  message: z.string(),
  severity: z.enum(['warning', 'error', 'critical']),
  retryable: z.boolean(),
  recordedAt: InstantSchema,
});

const FailureSchema = z.object({ code: SyncErrorCodeSchema, message: z.string(), retryable: z.boolean() });

const OperationDetailSchema = OperationSummarySchema.extend({
  requestedBy: z.string(),
  force: z.boolean(),
  failure: FailureSchema.nullable().meta({ description: 'Why a failed operation failed' }),
  retryAt: InstantSchema.nullable().meta({ description: 'When the automatic retry of a failed operation is due' }),
  errors: z.array(RecordErrorSchema).meta({ description: `Record errors (severity error or critical), the first ${ERRORS_SHOWN}` }),
  warnings: z.array(RecordErrorSchema).meta({ description: `Record warnings, the first ${ERRORS_SHOWN}` }),
  warningCount: z.number().int(),
});

const ListQuery = PageQuerySchema.extend({
  connectionId: IdSchema.optional(),
  status: OperationStatusSchema.optional(),
  dataType: DataTypeSchema.optional(),
  hours: z.coerce.number().int().min(1).max(24 * 366).optional().meta({ description: 'Only operations requested within the last so many hours' }),
}).strict();

const ListCursor = z.tuple([z.string(), z.string()]);

const RetryBody = z
  .object({
    retryFailedOnly: z.boolean().default(false).meta({ description: 'Pull again only the records that failed (default: everything the operation pulled)' }),
  })
  .strict();

export const QueuedSyncSchema = z.object({
  syncOperationId: z.string(),
  status: OperationStatusSchema,
  dataTypes: z.array(DataTypeSchema),
  startedAt: InstantSchema.meta({ description: 'When the sync was queued; it starts as soon as a worker is free' }),
  estimatedCompletionTime: InstantSchema.nullable().meta({ description: "From the connection's recent syncs; null before its first" }),
  position: PositionSchema.nullable(),
});

const SyncStatusSchema = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']).meta({
    description: 'healthy: no live connection is failing; unhealthy: half of them or more are; degraded: some are',
  }),
  connections: z.object({
    total: z.number().int(),
    active: z.number().int(),
    pending: z.number().int(),
    error: z.number().int().meta({ description: 'Waiting for their owner to authorize them again' }),
    disconnected: z.number().int(),
    syncing: z.number().int(),
    failing: z.number().int().meta({ description: 'Live connections whose last sync failed, or that need authorizing again' }),
  }),
  syncMetrics: z.object({
    windowHours: z.number().int(),
    total: z.number().int(),
    requested: z.number().int(),
    running: z.number().int(),
    completed: z.number().int(),
    partial: z.number().int(),
    failed: z.number().int(),
    successRate: DecimalString.nullable().meta({ description: 'Completed or partial among finished, 0 to 1' }),
    averageDurationMs: z.number().int().nullable(),
    recordsProcessed: z.number().int(),
  }),
  currentErrors: z.array(
    z.object({
      connectionId: z.string(),
      platform: PlatformSchema,
      displayName: z.string(),
      operationId: z.string().nullable(),
      code: SyncErrorCodeSchema,
      message: z.string(),
      since: InstantSchema,
    }),
  ),
  generatedAt: InstantSchema,
});

interface OperationRow {
  operation_id: string;
  connection_id: string;
  platform: z.infer<typeof PlatformSchema> | null;
  data_types: DataType[];
  trigger: z.infer<typeof OperationSummarySchema>['trigger'];
  status: z.infer<typeof OperationStatusSchema>;
  attempt: number;
  retry_of: string | null;
  retried_by: string | null;
  requested_at: Date;
  requested_key: string;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: string | null;
  error_count: string;
  processed: string;
  inserted: string;
  updated: string;
  skipped: string;
  failed: string;
  pulled: Record<string, number>;
}

const OPERATION_COLUMNS = sql`o.operation_id, o.connection_id, c.platform, o.data_types, o.trigger, o.status, o.attempt, o.retry_of, o.retried_by,
  o.requested_at, o.requested_at::text AS requested_key, o.started_at, o.finished_at, o.duration_ms, o.error_count, o.processed, o.inserted,
  o.updated, o.skipped, o.failed, o.pulled`;

function summaryOf(row: OperationRow): z.infer<typeof OperationSummarySchema> {
  return {
    operationId: row.operation_id,
    connectionId: row.connection_id,
    platform: row.platform,
    dataTypes: row.data_types,
    trigger: row.trigger,
    status: row.status,
    attempt: row.attempt,
    retryOf: row.retry_of,
    retriedBy: row.retried_by,
    requestedAt: instant(row.requested_at)!,
    startedAt: instant(row.started_at),
    finishedAt: instant(row.finished_at),
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    errorCount: Number(row.error_count),
    statistics: {
      processed: Number(row.processed),
      inserted: Number(row.inserted),
      updated: Number(row.updated),
      skipped: Number(row.skipped),
      failed: Number(row.failed),
      pulled: row.pulled,
    },
  };
}

/** Operations of connections the caller watches (every connection for operations staff), as a condition on `o`. */
const ownedBy = (owner: string | null) => (owner === null ? sql`true` : sql`o.connection_id IN (SELECT connection_id FROM connections WHERE owner_id = ${owner})`);

/**
 * Queues a requested operation for the sync worker and records it in the log; a data type already
 * syncing, or queued for another operation, refuses it (409 SYNC_IN_PROGRESS) and nothing is written.
 */
export async function queueSync(
  context: ApiContext,
  request: FastifyRequest,
  reply: FastifyReply,
  operation: { connectionId: string; dataTypes: readonly DataType[]; operationId: string; trigger: 'manual' | 'retry'; force: boolean },
  record: () => Promise<{ lastCursor: LogCursor | null }>,
): Promise<z.infer<typeof QueuedSyncSchema>> {
  let cursor: LogCursor | null = null;
  try {
    await context.queue.enqueue({ ...operation, requestedBy: principalOf(request).userId }, async () => {
      cursor = (await record()).lastCursor;
    });
  } catch (error) {
    if (error instanceof SyncBusyError) throw new ApiProblem('rule-violation', error.message, { code: 'SYNC_IN_PROGRESS' });
    throw error;
  }
  const startedAt = new Date();
  const estimate = (await sql<{ average: string | null }>`
    SELECT avg(duration_ms)::bigint::text AS average FROM (
      SELECT duration_ms FROM sync_operations WHERE connection_id = ${operation.connectionId} AND status IN ('completed', 'partial') AND duration_ms IS NOT NULL
       ORDER BY requested_at DESC LIMIT ${ESTIMATE_SAMPLE}) recent`.execute(context.ledger.database.db)).rows[0]?.average;
  return {
    syncOperationId: operation.operationId,
    status: 'requested',
    dataTypes: [...operation.dataTypes],
    startedAt: startedAt.toISOString(),
    estimatedCompletionTime: estimate == null ? null : new Date(startedAt.getTime() + Number(estimate)).toISOString(),
    position: withPosition(reply, cursor),
  };
}

export const syncOperationRoutes: ApiRoutes = (app, context) => {
  const db = context.ledger.database.db;

  app.get(
    '/sync-operations',
    {
      schema: {
        tags: ['sync monitoring'],
        summary: 'Sync operations, newest first',
        description: 'Owners see the operations of their own connections; the operations role sees every user’s.',
        querystring: ListQuery,
        response: { 200: pageOf(OperationSummarySchema), ...commonErrors },
      },
    },
    async (request) => {
      const owner = monitoredOwner(request);
      const query = request.query;
      const after = decodePageCursor(ListCursor, query.cursor);
      const rows = (await sql<OperationRow>`
        SELECT ${OPERATION_COLUMNS} FROM sync_operations o LEFT JOIN connections c ON c.connection_id = o.connection_id
         WHERE ${ownedBy(owner)}
           AND (${query.connectionId ?? null}::text IS NULL OR o.connection_id = ${query.connectionId ?? null})
           AND (${query.status ?? null}::text IS NULL OR o.status = ${query.status ?? null})
           AND (${query.dataType ?? null}::text IS NULL OR ${query.dataType ?? null} = ANY(o.data_types))
           AND (${query.hours ?? null}::int IS NULL OR o.requested_at >= now() - make_interval(hours => ${query.hours ?? null}))
           AND (${after?.[0] ?? null}::timestamptz IS NULL OR (o.requested_at, o.operation_id) < (${after?.[0] ?? null}::timestamptz, ${after?.[1] ?? null}))
         ORDER BY o.requested_at DESC, o.operation_id DESC
         LIMIT ${query.limit + 1}`.execute(db)).rows;
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return { items: page.map(summaryOf), nextCursor: rows.length > query.limit && last ? encodePageCursor([last.requested_key, last.operation_id]) : null };
    },
  );

  app.get(
    '/sync-operations/:id',
    {
      schema: {
        tags: ['sync monitoring'],
        summary: 'One sync operation: statistics, failure, record errors and warnings, duration',
        params: IdParamsSchema,
        response: { 200: OperationDetailSchema, ...commonErrors },
      },
    },
    async (request) => {
      const owner = monitoredOwner(request);
      const { id } = request.params;
      const row = (await sql<OperationRow & { requested_by: string; force: boolean; error: z.infer<typeof FailureSchema> | null; retry_at: Date | null; owner_id: string | null }>`
        SELECT ${OPERATION_COLUMNS}, o.requested_by, o.force, o.error, o.retry_at, c.owner_id
          FROM sync_operations o LEFT JOIN connections c ON c.connection_id = o.connection_id
         WHERE o.operation_id = ${id}`.execute(db)).rows[0];
      if (!row || (owner !== null && row.owner_id !== owner)) throw notFound(`sync operation ${id}`);
      const recorded = async (warnings: boolean) =>
        (await sql<{ data_type: DataType; record_id: string; code: z.infer<typeof SyncErrorCodeSchema>; message: string; severity: 'warning' | 'error' | 'critical'; retryable: boolean; recorded_at: Date }>`
          SELECT data_type, record_id, code, message, severity, retryable, recorded_at FROM sync_errors
           WHERE operation_id = ${id} AND (severity = 'warning') = ${warnings}
           ORDER BY recorded_at, event_id, index LIMIT ${ERRORS_SHOWN}`.execute(db)).rows.map((e) => ({
          dataType: e.data_type,
          recordId: e.record_id,
          code: e.code,
          message: e.message,
          severity: e.severity,
          retryable: e.retryable,
          recordedAt: instant(e.recorded_at)!,
        }));
      const warningCount = (await sql<{ count: string }>`SELECT count(*) FROM sync_errors WHERE operation_id = ${id} AND severity = 'warning'`.execute(db)).rows[0]!.count;
      return {
        ...summaryOf(row),
        requestedBy: row.requested_by,
        force: row.force,
        failure: row.error ? { code: row.error.code, message: row.error.message, retryable: row.error.retryable } : null,
        retryAt: instant(row.retry_at),
        errors: await recorded(false),
        warnings: await recorded(true),
        warningCount: Number(warningCount),
      };
    },
  );

  app.get(
    '/sync-status',
    {
      schema: {
        tags: ['sync monitoring'],
        summary: 'Overall sync health: connection health counts, metrics of the last 24 hours, current errors',
        description: 'Over the caller’s own connections, or every user’s for the operations role.',
        response: { 200: SyncStatusSchema, ...commonErrors },
      },
    },
    async (request) => {
      const owner = monitoredOwner(request);
      const health = (await sql<{ total: string; active: string; pending: string; error: string; disconnected: string; syncing: string; failing: string }>`
        SELECT count(*) AS total, count(*) FILTER (WHERE status = 'active') AS active, count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'error') AS error, count(*) FILTER (WHERE status = 'disconnected') AS disconnected,
               count(*) FILTER (WHERE running_operation_id IS NOT NULL AND status <> 'disconnected') AS syncing,
               count(*) FILTER (WHERE status = 'error' OR (status = 'active' AND last_sync_status = 'failed')) AS failing
          FROM connections WHERE ${owner === null ? sql`true` : sql`owner_id = ${owner}`}`.execute(db)).rows[0]!;
      const metrics = (await sql<{ status: string; count: string; average: string | null; processed: string }>`
        SELECT status, count(*) AS count, avg(duration_ms)::bigint::text AS average, sum(processed)::text AS processed FROM sync_operations o
         WHERE requested_at >= now() - make_interval(hours => ${METRICS_WINDOW_HOURS}) AND ${ownedBy(owner)}
         GROUP BY status`.execute(db)).rows;
      const errors = (await sql<{ connection_id: string; platform: z.infer<typeof PlatformSchema>; display_name: string; operation_id: string | null; error: { code: z.infer<typeof SyncErrorCodeSchema>; message: string }; since: Date }>`
        SELECT c.connection_id, c.platform, c.display_name,
               CASE WHEN c.last_sync_status = 'failed' THEN c.last_sync_operation_id END AS operation_id,
               CASE WHEN c.status = 'error' OR o.error IS NULL THEN c.last_error ELSE o.error END AS error,
               CASE WHEN c.status = 'error' OR o.error IS NULL THEN c.updated_at ELSE coalesce(o.finished_at, c.last_sync_at) END AS since
          FROM connections c LEFT JOIN sync_operations o ON o.operation_id = c.last_sync_operation_id AND c.last_sync_status = 'failed'
         WHERE (c.status = 'error' OR (c.status = 'active' AND c.last_sync_status = 'failed'))
           AND ${owner === null ? sql`true` : sql`c.owner_id = ${owner}`}
         ORDER BY since DESC, c.connection_id LIMIT ${ERRORS_SHOWN}`.execute(db)).rows;
      const count = (status: string) => Number(metrics.find((m) => m.status === status)?.count ?? 0);
      const finished = metrics.filter((m) => m.status === 'completed' || m.status === 'partial' || m.status === 'failed');
      const finishedCount = finished.reduce((sum, m) => sum + Number(m.count), 0);
      const durations = finished.filter((m) => m.average !== null);
      const durationWeight = durations.reduce((sum, m) => sum + Number(m.count), 0);
      const live = Number(health.total) - Number(health.disconnected);
      const failing = Number(health.failing);
      const status: z.infer<typeof SyncStatusSchema>['status'] = failing === 0 ? 'healthy' : failing * 2 >= live ? 'unhealthy' : 'degraded';
      return {
        status,
        connections: {
          total: Number(health.total),
          active: Number(health.active),
          pending: Number(health.pending),
          error: Number(health.error),
          disconnected: Number(health.disconnected),
          syncing: Number(health.syncing),
          failing,
        },
        syncMetrics: {
          windowHours: METRICS_WINDOW_HOURS,
          total: metrics.reduce((sum, m) => sum + Number(m.count), 0),
          requested: count('requested'),
          running: count('running'),
          completed: count('completed'),
          partial: count('partial'),
          failed: count('failed'),
          successRate: finishedCount === 0 ? null : ((count('completed') + count('partial')) / finishedCount).toFixed(4),
          averageDurationMs: durationWeight === 0 ? null : Math.round(durations.reduce((sum, m) => sum + Number(m.average) * Number(m.count), 0) / durationWeight),
          recordsProcessed: metrics.reduce((sum, m) => sum + Number(m.processed), 0),
        },
        currentErrors: errors
          .filter((e) => e.error !== null)
          .map((e) => ({
            connectionId: e.connection_id,
            platform: e.platform,
            displayName: e.display_name,
            operationId: e.operation_id,
            code: e.error.code,
            message: e.error.message,
            since: instant(e.since)!,
          })),
        generatedAt: new Date().toISOString(),
      };
    },
  );

  app.post(
    '/sync-operations/:id/retry',
    {
      config: { idempotent: true },
      schema: {
        tags: ['sync monitoring'],
        summary: 'Retry a failed or partial sync operation, now',
        description:
          'Queues the next attempt as a new operation (id `<id>.r<attempt>`), of everything or only of the records that failed. ' +
          'Asking again answers the same attempt; an attempt the scheduler had already queued is run now (as it was queued).',
        params: IdParamsSchema,
        body: RetryBody,
        response: { 202: QueuedSyncSchema.extend({ retryOf: z.string() }), ...commonErrors, 409: commonErrors[400] },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const operation = await visibleSyncOperation(context, request, id);
      if ((await loadConnection(context.ledger.store, operation.request.connectionId)).status === 'disconnected') {
        throw new ApiProblem('rule-violation', `connection ${operation.request.connectionId} is disconnected; its syncs are not retried`, { code: 'CONNECTION_DISCONNECTED' });
      }
      const requestedBy = principalOf(request).userId;
      const next = retryOperationId(id, operation.request.attempt + 1);
      const queued = await loadOperation(context.ledger.store, next);
      if (queued.status === 'completed' || queued.status === 'partial' || queued.status === 'failed') {
        // Retried and run already: the same attempt is the answer, and nothing is queued again.
        const times = (await sql<{ requested_at: Date; finished_at: Date | null }>`
          SELECT requested_at, finished_at FROM sync_operations WHERE operation_id = ${next}`.execute(db)).rows[0];
        return reply.code(202).send({
          syncOperationId: next,
          status: queued.status,
          dataTypes: queued.request.dataTypes,
          startedAt: instant(times?.requested_at ?? new Date())!,
          estimatedCompletionTime: instant(times?.finished_at),
          position: null,
          retryOf: id,
        });
      }
      const dataTypes = queued.status !== 'absent' ? queued.request.dataTypes : retryRequest(operation, next, request.body.retryFailedOnly, requestedBy).dataTypes;
      const answer = await queueSync(context, request, reply, { connectionId: operation.request.connectionId, dataTypes, operationId: next, trigger: 'retry', force: operation.request.force }, () =>
        retrySync(context.sync, { operationId: id, failedOnly: request.body.retryFailedOnly, requestedBy }, { source: 'api' }),
      );
      return reply.code(202).send({ ...answer, ...(queued.status !== 'absent' ? { status: queued.status } : {}), retryOf: id });
    },
  );
};
