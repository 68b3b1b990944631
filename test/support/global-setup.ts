import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/adapters/postgres/embedded.ts';

let embedded: EmbeddedServer | undefined;
let dataDir: string | undefined;

/** Without DATABASE_URL the suite runs on an embedded PostgreSQL of its own, in a temporary folder. */
export async function setup(): Promise<void> {
  if (process.env.DATABASE_URL) return;
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'ledger-test-'));
  embedded = await startEmbeddedPostgres({ dataDir, port: 0 });
  process.env.DATABASE_URL = embedded.url;
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
