import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { ulid } from 'ulid';
import { z } from 'zod';
import type { Ledger } from '../../composition.ts';
import { pendingMigrations } from '../postgres/migrator.ts';
import type { ProjectionWorker } from '../postgres/projection-worker.ts';
import type { ApiContext } from './api/context.ts';
import { registerApi } from './api/plugin.ts';
import { sendProblem } from './api/problem.ts';
import { apiRouteGroups } from './api/routes/index.ts';
import { webhookRoutes, type WebhookDependencies } from './webhooks.ts';

const Check = z.object({ ok: z.boolean(), detail: z.unknown().optional() });
const Readiness = z.object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.string(), Check) });

export interface ServerOptions {
  /** /readyz fails when any projector is further behind the log than this many events. */
  readonly maxLagEvents: number;
  readonly worker?: ProjectionWorker;
  /** Platforms' data-change notifications, when this process schedules syncs. */
  readonly webhooks?: WebhookDependencies;
  readonly api: ApiContext;
}

export async function buildServer(ledger: Ledger, logger: Logger, options: ServerOptions) {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: 1_048_576,
    genReqId: () => ulid(),
    // Ids are checked by each route's schema (which names the field); the router only stops absurd lengths.
    maxParamLength: 1000,
    frameworkErrors: (error, _request, reply) => void sendProblem(reply, error),
  });
  await registerApi(app, options.api, apiRouteGroups);

  app.get('/healthz', { schema: { tags: ['health'], summary: 'The process is up', security: [], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({
    status: 'ok' as const,
  }));

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'The database is reachable, migrations are applied and every projector is within the lag threshold',
        security: [],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
    const checks: Record<string, { ok: boolean; detail?: unknown }> = {};
    try {
      await ledger.database.pool.query('SELECT 1');
      checks.database = { ok: true };
      const pending = await pendingMigrations(ledger.database.db);
      checks.migrations = pending.length === 0 ? { ok: true } : { ok: false, detail: { pending } };
      const status = await ledger.engine.status();
      const running = new Map((options.worker?.state() ?? []).map((s) => [s.projector, s]));
      checks.projections = {
        ok: status.every((s) => s.eventsBehind <= options.maxLagEvents && !running.get(s.projector)?.lastError),
        detail: status.map((s) => ({
          projector: s.projector,
          eventsBehind: s.eventsBehind,
          oldestUnprocessedAgeSeconds: Math.round(s.oldestUnprocessedAgeSeconds),
          lastError: running.get(s.projector)?.lastError ?? null,
        })),
      };
    } catch (error) {
      checks.database ??= { ok: false, detail: error instanceof Error ? error.message : String(error) };
      if (checks.database.ok) checks.projections = { ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
    const ready = Object.values(checks).every((check) => check.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );

  if (options.webhooks) app.register(webhookRoutes(options.webhooks));

  return app;
}
