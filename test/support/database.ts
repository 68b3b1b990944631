import pg from 'pg';
import { ulid } from 'ulid';
import { connect, type DatabaseHandle } from '../../src/adapters/postgres/database.ts';
import { migrateToLatest } from '../../src/adapters/postgres/migrator.ts';

/** The server the suite runs against: DATABASE_URL, or the embedded one the global setup started. */
export function serverUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the suite with `npm test`, whose global setup provides it');
  return url;
}

export interface TestDatabase extends DatabaseHandle {
  readonly name: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own for one test file; drop() removes it. */
export async function createTestDatabase(options: { maxConnections?: number } = {}): Promise<TestDatabase> {
  const name = `ledger_test_${ulid().toLowerCase()}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const handle = connect(url.toString(), options);
  await migrateToLatest(handle.db);
  return {
    ...handle,
    name,
    drop: async () => {
      await handle.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
