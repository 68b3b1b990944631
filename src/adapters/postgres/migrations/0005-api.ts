import { sql, type Kysely } from 'kysely';

/**
 * What the query API keeps beside the log: the first answer to each Idempotency-Key, per user, so
 * that a repeated request gets that answer again and starts nothing new; and the authorization
 * sessions of connections being made (POST /portfolio-connections/initiate until /callback), each
 * found by a hash of its session token (the token itself is never stored) and holding its PKCE
 * code verifier encrypted by the credential vault.
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
  await sql`
    CREATE TABLE connect_sessions (
      token_hash text PRIMARY KEY,
      user_id text NOT NULL,
      connection_id text NOT NULL,
      platform text NOT NULL,
      platform_account_id text,
      bidirectional_sync boolean NOT NULL,
      state text NOT NULL,
      code_verifier_ciphertext text NOT NULL,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE connect_sessions`.execute(db);
  await sql`DROP TABLE idempotency_keys`.execute(db);
}
