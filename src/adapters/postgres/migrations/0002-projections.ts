import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A projector's checkpoint is the log cursor of the last event it applied; it is written in the
  // same transaction as the projector's read-model change.
  await sql`
    CREATE TABLE projection_checkpoints (
      projector text PRIMARY KEY,
      projector_version integer NOT NULL,
      transaction_id xid8 NOT NULL DEFAULT '0',
      position bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now(),
      rebuilt_at timestamptz
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE projection_checkpoints`.execute(db);
}
