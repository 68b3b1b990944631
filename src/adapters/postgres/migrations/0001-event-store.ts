import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE streams (
      stream_id text PRIMARY KEY,
      version bigint NOT NULL,
      last_hash text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  // transaction_id is the writer's xid8: readAll orders by (transaction_id, global_position) and
  // reads only below the oldest running transaction, so a late commit can never be skipped.
  await sql`
    CREATE TABLE events (
      global_position bigint GENERATED ALWAYS AS IDENTITY,
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      stream_id text NOT NULL,
      stream_version bigint NOT NULL,
      event_id text NOT NULL,
      event_type text NOT NULL,
      schema_version integer NOT NULL,
      data jsonb NOT NULL,
      metadata jsonb NOT NULL,
      recorded_at timestamptz NOT NULL,
      hash text NOT NULL,
      PRIMARY KEY (stream_id, stream_version),
      CONSTRAINT events_event_id_key UNIQUE (event_id)
    )`.execute(db);
  await sql`CREATE INDEX events_log_order ON events (transaction_id, global_position)`.execute(db);

  // One round trip per batch: lock (or create) the stream row, settle idempotency and the expected
  // version under that lock, extend the hash chain and insert every row with one statement.
  // p_expected: >= 0 exact version, -1 any, -2 no_stream, -3 stream_exists.
  // p_events: [{id, type, schemaVersion, data, metadata, recordedAt, contentHash}, ...]
  await sql`
    CREATE FUNCTION ledger_append(p_stream_id text, p_expected bigint, p_events jsonb)
    RETURNS TABLE (o_event_id text, o_stream_version bigint, o_global_position bigint, o_transaction_id xid8, o_already_stored boolean)
    LANGUAGE plpgsql AS $fn$
    DECLARE
      v_version bigint;
      v_hash text;
      v_count int := jsonb_array_length(p_events);
      v_ids text[];
      v_hashes text[] := '{}';
      v_in_stream int;
      v_elsewhere int;
      i int;
    BEGIN
      -- Taken before this transaction writes anything, so before it has a transaction id: the
      -- next appender to the stream gets its id only after this one commits, which keeps each
      -- stream's versions in (transaction_id, global_position) log order. (A caller's transaction
      -- that already wrote elsewhere has an older id; the store appends one stream per call.)
      PERFORM pg_advisory_xact_lock(1279524867, hashtext(p_stream_id)); -- namespace 0x4c440003
      SELECT s.version, s.last_hash INTO v_version, v_hash FROM streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
      IF NOT FOUND THEN
        INSERT INTO streams (stream_id, version) VALUES (p_stream_id, 0) ON CONFLICT DO NOTHING;
        IF FOUND THEN
          v_version := 0;
        ELSE
          SELECT s.version, s.last_hash INTO v_version, v_hash FROM streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
        END IF;
      END IF;

      SELECT array_agg(e->>'id' ORDER BY n) INTO v_ids FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, n);
      SELECT count(*) FILTER (WHERE ev.stream_id = p_stream_id), count(*) FILTER (WHERE ev.stream_id <> p_stream_id)
        INTO v_in_stream, v_elsewhere
        FROM events ev WHERE ev.event_id = ANY (v_ids);
      IF v_elsewhere > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'LD002', MESSAGE = 'event id stored in another stream';
      END IF;
      IF v_in_stream = v_count THEN
        RETURN QUERY SELECT ev.event_id, ev.stream_version, ev.global_position, ev.transaction_id, true
          FROM events ev WHERE ev.event_id = ANY (v_ids) ORDER BY ev.stream_version;
        RETURN;
      ELSIF v_in_stream > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'LD002', MESSAGE = 'part of the batch is already stored';
      END IF;

      IF (p_expected >= 0 AND v_version <> p_expected)
         OR (p_expected = -2 AND v_version <> 0)
         OR (p_expected = -3 AND v_version = 0) THEN
        RAISE EXCEPTION USING ERRCODE = 'LD001', MESSAGE = 'wrong expected version', DETAIL = v_version::text;
      END IF;

      FOR i IN 1..v_count LOOP
        v_hash := encode(sha256(convert_to(coalesce(v_hash, '') || E'\n' || (v_version + i) || E'\n' || (p_events->(i - 1)->>'contentHash'), 'UTF8')), 'hex');
        v_hashes := v_hashes || v_hash;
      END LOOP;

      UPDATE streams SET version = v_version + v_count, last_hash = v_hash, updated_at = now() WHERE stream_id = p_stream_id;

      RETURN QUERY
        WITH inserted AS (
          INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
          SELECT p_stream_id, v_version + x.n, x.e->>'id', x.e->>'type', (x.e->>'schemaVersion')::int, x.e->'data', x.e->'metadata',
                 (x.e->>'recordedAt')::timestamptz, v_hashes[x.n]
            FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, n)
           ORDER BY x.n
          RETURNING events.event_id, events.stream_version, events.global_position, events.transaction_id
        )
        SELECT inserted.event_id, inserted.stream_version, inserted.global_position, inserted.transaction_id, false
          FROM inserted ORDER BY inserted.stream_version;
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION ledger_append(text, bigint, jsonb)`.execute(db);
  await sql`DROP TABLE events`.execute(db);
  await sql`DROP TABLE streams`.execute(db);
}
