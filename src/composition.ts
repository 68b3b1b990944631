import pg from 'pg';
import type { Logger } from 'pino';
import { openCredentialVault } from './adapters/crypto/credential-keys.ts';
import { PostgresCredentialStore } from './adapters/postgres/credential-store.ts';
import { connect, type DatabaseHandle } from './adapters/postgres/database.ts';
import { startEmbeddedPostgres, type EmbeddedServer } from './adapters/postgres/embedded.ts';
import { PostgresEventStore } from './adapters/postgres/event-store.ts';
import { AppendSignal, LogNotifier } from './adapters/postgres/log-notifier.ts';
import { migrateToLatest } from './adapters/postgres/migrator.ts';
import { ProjectionEngine } from './adapters/postgres/projection-engine.ts';
import { ProjectionWorker } from './adapters/postgres/projection-worker.ts';
import type { Config } from './config.ts';
import type { EventCatalogue } from './domain/events/catalogue.ts';
import { ledgerCatalogue } from './domain/ledger-catalogue.ts';
import { auditLogProjector } from './projections/audit-log.ts';
import { consolidationProjector } from './projections/consolidation.ts';
import { fxRatesProjector } from './projections/fx-rates.ts';
import { portfolioConflictsProjector } from './projections/portfolio-conflicts.ts';
import { pushesProjector } from './projections/pushes.ts';
import type { Projector } from './projections/projector.ts';
import { performanceMetricsProjector, taxLotsProjector } from './projections/source-details.ts';
import { sourceRecordsProjector } from './projections/source-records.ts';
import { streamCatalogueProjector } from './projections/stream-catalogue.ts';
import { syncOperationsProjector } from './projections/sync-operations.ts';
import { transactionsProjector } from './projections/transactions.ts';

export const projectors: readonly Projector[] = [
  auditLogProjector,
  streamCatalogueProjector,
  sourceRecordsProjector,
  fxRatesProjector,
  syncOperationsProjector,
  consolidationProjector,
  transactionsProjector,
  performanceMetricsProjector,
  taxLotsProjector,
  portfolioConflictsProjector,
  pushesProjector,
];

/** The database the embedded server holds the ledger in (its `postgres` database stays for admin). */
const EMBEDDED_DATABASE = 'ledger';

export interface Ledger {
  readonly database: DatabaseHandle;
  readonly store: PostgresEventStore;
  readonly engine: ProjectionEngine;
  readonly notifier: LogNotifier;
  /** Connections' credentials, encrypted under the configured keys. */
  readonly credentials: PostgresCredentialStore;
  /** Starts the projection worker in this process; stopped by close(). */
  startWorker(): ProjectionWorker;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly migrate?: boolean;
  /** Connect to an embedded server another ledger process is running (the CLI does). */
  readonly attach?: boolean;
  readonly catalogue?: EventCatalogue;
}

/** The one composition root: the server and the CLI both open the ledger here. */
export async function openLedger(config: Config, logger: Logger, options: OpenOptions = {}): Promise<Ledger> {
  // Keys first: a missing or unreadable key must stop the start before anything is running.
  const vault = await openCredentialVault(config);
  let embedded: EmbeddedServer | null = null;
  let url = config.DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres({ dataDir: config.LEDGER_DATA_DIR, port: config.EMBEDDED_PG_PORT, logger, attach: options.attach ?? false });
    url = await ensureDatabase(embedded.url, EMBEDDED_DATABASE);
  }
  const database = connect(url, { maxConnections: config.PG_POOL_MAX });
  const notifier = new LogNotifier(url, logger);
  let worker: ProjectionWorker | null = null;
  try {
    if (options.migrate ?? true) await migrateToLatest(database.db);
    await notifier.start();
  } catch (error) {
    await database.close();
    await notifier.close();
    await embedded?.stop();
    throw error;
  }
  const store = new PostgresEventStore(database.pool, {
    catalogue: options.catalogue ?? ledgerCatalogue,
    notifier,
    appendSignal: new AppendSignal(database.pool),
    pollIntervalMs: config.PROJECTION_POLL_MS,
  });
  const engine = new ProjectionEngine(database.db, store, projectors, { batchSize: config.PROJECTION_BATCH_SIZE });
  const credentials = new PostgresCredentialStore(database.pool, vault);
  const connectionString = url;
  return {
    database,
    store,
    engine,
    notifier,
    credentials,
    startWorker() {
      worker ??= new ProjectionWorker(engine, connectionString, notifier, logger, { pollIntervalMs: config.PROJECTION_POLL_MS });
      worker.start();
      return worker;
    },
    async close() {
      await worker?.stop();
      await notifier.close();
      await database.close();
      await embedded?.stop();
    },
  };
}

async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
