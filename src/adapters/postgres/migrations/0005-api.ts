import { sql, type Kysely } from 'kysely';

/**
 * What the query API keeps beside the log: the first answer to each Idempotency-Key, per user, so
 * that a repeated request gets that answer again and starts nothing new.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE idempotency_keys (
      user_id text NOT NULL,
      idempotency_key text NOT NULL,
      request_hash text NOT NULL,
      status_code integer,
      content_type text,
      response_body text,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (user_id, idempotency_key)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE idempotency_keys`.execute(db);
}
