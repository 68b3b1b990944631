import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Only ciphertext lives here (the credential vault's format names its key); `version` is what
  // compare-and-swap checks, so a single-use refresh token is replaced by exactly one writer.
  await sql`
    CREATE TABLE connection_credentials (
      connection_id text PRIMARY KEY,
      key_id text NOT NULL,
      ciphertext text NOT NULL,
      version bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE connection_credentials`.execute(db);
}
