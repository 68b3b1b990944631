import type { FastifyPluginAsync } from 'fastify';
import type pg from 'pg';
import { PlatformSchema, type DataType, type Platform } from '../../domain/platforms/records.ts';
import { PlatformError, type PlatformAdapter } from '../../ports/platform-adapter.ts';

export interface WebhookDependencies {
  readonly pool: pg.Pool;
  readonly adapterFor: (platform: Platform) => PlatformAdapter;
  /** Makes the connection's sync of that data type due now; false when it has no schedule. */
  readonly trigger: (connectionId: string, dataType: DataType) => Promise<boolean>;
}

/**
 * `POST /webhooks/:platform`: a platform's data-change notification. The adapter verifies the
 * signature over the raw body; a delivery already acted on is acknowledged and ignored; otherwise
 * every connection to that platform account gets the matching sync made due now.
 */
export function webhookRoutes(deps: WebhookDependencies): FastifyPluginAsync {
  return async (scope) => {
    // The signature covers the exact bytes sent, so the body stays text here.
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));

    scope.post<{ Params: { platform: string } }>('/webhooks/:platform', async (request, reply) => {
      const platform = PlatformSchema.safeParse(request.params.platform);
      if (!platform.success) return reply.code(404).send({ error: 'not_found', message: `no webhooks are received for "${request.params.platform}"` });
      if (typeof request.body !== 'string') return reply.code(415).send({ error: 'unsupported_media_type', message: 'body: must be application/json' });
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value]));
      let notice;
      try {
        notice = deps.adapterFor(platform.data).parseWebhook(request.body, headers);
      } catch (error) {
        if (!(error instanceof PlatformError)) throw error;
        const status = error.syncError.code === 'UNSUPPORTED' ? 404 : 401;
        return reply.code(status).send({ error: status === 404 ? 'not_found' : 'invalid_signature', message: error.syncError.message });
      }
      const first = await deps.pool.query(
        `INSERT INTO webhook_deliveries (platform, delivery_id, platform_account_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
        [platform.data, notice.deliveryId, notice.platformAccountId],
      );
      if (first.rowCount === 0) return reply.code(200).send({ status: 'duplicate', deliveryId: notice.deliveryId });
      const connections = await deps.pool.query<{ connection_id: string }>(
        `SELECT connection_id FROM connections WHERE platform = $1 AND platform_account_id = $2 AND status <> 'disconnected'`,
        [platform.data, notice.platformAccountId],
      );
      let triggered = 0;
      for (const { connection_id } of connections.rows) if (await deps.trigger(connection_id, notice.dataType)) triggered++;
      request.log.info({ platform: platform.data, deliveryId: notice.deliveryId, triggered }, 'webhook received');
      return reply.code(202).send({ status: 'accepted', deliveryId: notice.deliveryId, triggered });
    });
  };
}
