import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import * as eventStore from './migrations/0001-event-store.ts';
import * as projections from './migrations/0002-projections.ts';
import * as credentials from './migrations/0003-credentials.ts';
import * as syncQueue from './migrations/0004-sync-queue.ts';
import * as api from './migrations/0005-api.ts';

// Listed in code rather than read from a folder, so that migrations run the same under tsx, a
// bundle or a compiled build.
const migrations: Record<string, Migration> = {
  '0001-event-store': eventStore,
  '0002-projections': projections,
  '0003-credentials': credentials,
  '0004-sync-queue': syncQueue,
  '0005-api': api,
};

function migrator(db: Kysely<unknown>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const result: MigrationResultSet = await migrator(db).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`migration ${failed ?? ''} failed: ${(result.error as Error).message ?? String(result.error)}`);
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of migrations known to the code but not yet applied to the database. */
export async function pendingMigrations(db: Kysely<unknown>): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}
