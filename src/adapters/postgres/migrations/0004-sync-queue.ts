import { sql, type Kysely } from 'kysely';

/**
 * The durable sync queue (see SyncQueue): one row per connection and data type, so that two syncs
 * of one pair can never run at once. And the webhook deliveries already acted on, so that a
 * platform's retried delivery triggers nothing twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE sync_queue (
      connection_id text NOT NULL,
      data_type text NOT NULL,
      schedule jsonb NOT NULL,
      auto_sync boolean NOT NULL DEFAULT true,
      next_run_at timestamptz NOT NULL,
      trigger text NOT NULL DEFAULT 'schedule',
      requested_by text NOT NULL DEFAULT 'scheduler',
      force boolean NOT NULL DEFAULT false,
      running boolean NOT NULL DEFAULT false,
      locked_by text,
      heartbeat_at timestamptz,
      operation_id text,
      last_operation_id text,
      last_status text,
      last_finished_at timestamptz,
      runs integer NOT NULL DEFAULT 0,
      PRIMARY KEY (connection_id, data_type)
    )`.execute(db);
  await sql`CREATE INDEX sync_queue_due ON sync_queue (next_run_at) WHERE NOT running`.execute(db);
  await sql`
    CREATE TABLE webhook_deliveries (
      platform text NOT NULL,
      delivery_id text NOT NULL,
      platform_account_id text NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (platform, delivery_id)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE webhook_deliveries`.execute(db);
  await sql`DROP TABLE sync_queue`.execute(db);
}
