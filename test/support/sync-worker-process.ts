/**
 * A sync worker in a process of its own, for tests that kill it: argv[2] is JSON with the
 * database URL, the credential key (base64) and the platforms' base URLs.
 */
import { CredentialVault } from '../../src/adapters/crypto/credential-vault.ts';
import { PostgresCredentialStore } from '../../src/adapters/postgres/credential-store.ts';
import { connect } from '../../src/adapters/postgres/database.ts';
import { PostgresEventStore } from '../../src/adapters/postgres/event-store.ts';
import { AppendSignal } from '../../src/adapters/postgres/log-notifier.ts';
import { ProjectionEngine } from '../../src/adapters/postgres/projection-engine.ts';
import { createSyncServices, type PlatformEndpoints } from '../../src/adapters/scheduler/sync-services.ts';
import { SyncQueue } from '../../src/adapters/scheduler/sync-queue.ts';
import { ledgerCatalogue } from '../../src/domain/ledger-catalogue.ts';
import { sourceRecordsProjector } from '../../src/projections/source-records.ts';

const args = JSON.parse(process.argv[2]!) as { databaseUrl: string; key: string; endpoints: PlatformEndpoints };
const database = connect(args.databaseUrl, { maxConnections: 4 });
const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue, appendSignal: new AppendSignal(database.pool) });
const engine = new ProjectionEngine(database.db, store, [sourceRecordsProjector]);
const credentials = new PostgresCredentialStore(database.pool, new CredentialVault([{ id: 'k1', key: Buffer.from(args.key, 'base64') }]));
const services = createSyncServices({ database, store, engine, credentials }, args.endpoints);
new SyncQueue(database.pool, services).startWorker({ concurrency: 1, pollMs: 100, heartbeatMs: 200 });
console.log('worker started');
