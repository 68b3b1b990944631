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

  // Each event's hash covers the previous event's hash in its stream and its own content hash
  // (computed by the store from the canonical content: src/domain/events/hash-chain.ts, which holds
  // the same chain formula).
  await sql`
    CREATE FUNCTION ledger_chain_hash(p_previous text, p_version bigint, p_content_hash text)
    RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
      SELECT encode(sha256(convert_to(coalesce(p_previous, '') || E'\n' || p_version::text || E'\n' || p_content_hash, 'UTF8')), 'hex')
    $fn$`.execute(db);

  // One round trip per batch. The stream row is claimed with one statement that also checks the
  // expected version (and, for a single event, extends the hash chain); idempotency by event id is
  // checked only when the caller supplied ids, since ids the store generates cannot collide (the
  // unique index still guards them). Events arrive as parallel arrays: plain array access costs far
  // less per call than unpacking a JSON document into rows.
  // p_expected: >= 0 exact version, -1 any, -2 no_stream, -3 stream_exists.
  await sql`
    CREATE FUNCTION ledger_append(p_stream_id text, p_expected bigint, p_check_ids boolean, p_recorded_at timestamptz,
                                  p_ids text[], p_types text[], p_schema_versions integer[], p_data jsonb[], p_metadata jsonb[],
                                  p_content_hashes text[])
    RETURNS TABLE (o_event_id text, o_stream_version bigint, o_global_position bigint, o_transaction_id xid8, o_already_stored boolean)
    LANGUAGE plpgsql AS $fn$
    DECLARE
      v_count int := cardinality(p_ids);
      v_hashes text[];
      v_version bigint;
      v_hash text;
      v_in_stream int;
      v_elsewhere int;
      i int;
    BEGIN
      -- Taken before this transaction writes anything, so before it has a transaction id: the
      -- next appender to the stream gets its id only after this one commits, which keeps each
      -- stream's versions in (transaction_id, global_position) log order. (A caller's transaction
      -- that already wrote elsewhere has an older id; the store appends one stream per call.)
      PERFORM pg_advisory_xact_lock(1279524867, hashtext(p_stream_id)); -- namespace 0x4c440003

      IF p_check_ids THEN
        SELECT count(*) FILTER (WHERE ev.stream_id = p_stream_id), count(*) FILTER (WHERE ev.stream_id <> p_stream_id)
          INTO v_in_stream, v_elsewhere
          FROM events ev WHERE ev.event_id = ANY (p_ids);
        IF v_elsewhere > 0 THEN
          RAISE EXCEPTION USING ERRCODE = 'LD002', MESSAGE = 'event id stored in another stream';
        END IF;
        IF v_in_stream = v_count THEN
          RETURN QUERY SELECT ev.event_id, ev.stream_version, ev.global_position, ev.transaction_id, true
            FROM events ev WHERE ev.event_id = ANY (p_ids) ORDER BY ev.stream_version;
          RETURN;
        ELSIF v_in_stream > 0 THEN
          RAISE EXCEPTION USING ERRCODE = 'LD002', MESSAGE = 'part of the batch is already stored';
        END IF;
      END IF;

      -- RETURNING gives the version before the append, and last_hash: for a single event its new
      -- hash (computed in SET from the old one), for a batch the previous hash, left as it was.
      IF p_expected = -2 OR p_expected = 0 THEN
        INSERT INTO streams (stream_id, version, last_hash)
        VALUES (p_stream_id, v_count, CASE WHEN v_count = 1 THEN ledger_chain_hash(NULL, 1, p_content_hashes[1]) END)
        ON CONFLICT DO NOTHING
        RETURNING streams.version - v_count, streams.last_hash INTO v_version, v_hash;
      ELSIF p_expected = -1 THEN
        INSERT INTO streams (stream_id, version, last_hash)
        VALUES (p_stream_id, v_count, CASE WHEN v_count = 1 THEN ledger_chain_hash(NULL, 1, p_content_hashes[1]) END)
        ON CONFLICT (stream_id) DO UPDATE
          SET version = streams.version + v_count, updated_at = now(),
              last_hash = CASE WHEN v_count = 1 THEN ledger_chain_hash(streams.last_hash, streams.version + 1, p_content_hashes[1]) ELSE streams.last_hash END
        RETURNING streams.version - v_count, streams.last_hash INTO v_version, v_hash;
      ELSE
        UPDATE streams
           SET version = streams.version + v_count, updated_at = now(),
               last_hash = CASE WHEN v_count = 1 THEN ledger_chain_hash(streams.last_hash, streams.version + 1, p_content_hashes[1]) ELSE streams.last_hash END
         WHERE streams.stream_id = p_stream_id
           AND CASE WHEN p_expected = -3 THEN streams.version > 0 ELSE streams.version = p_expected END
        RETURNING streams.version - v_count, streams.last_hash INTO v_version, v_hash;
      END IF;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LD001', MESSAGE = 'wrong expected version',
          DETAIL = coalesce((SELECT s.version FROM streams s WHERE s.stream_id = p_stream_id), 0)::text;
      END IF;

      IF v_count = 1 THEN
        RETURN QUERY
          INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
          VALUES (p_stream_id, v_version + 1, p_ids[1], p_types[1], p_schema_versions[1], p_data[1], p_metadata[1], p_recorded_at, v_hash)
          RETURNING events.event_id, events.stream_version, events.global_position, events.transaction_id, false;
        RETURN;
      END IF;

      v_hashes := array_fill(NULL::text, ARRAY[v_count]);
      v_hash := ledger_chain_hash(v_hash, v_version + 1, p_content_hashes[1]);
      v_hashes[1] := v_hash;
      FOR i IN 2..v_count LOOP
        v_hash := ledger_chain_hash(v_hash, v_version + i, p_content_hashes[i]);
        v_hashes[i] := v_hash;
      END LOOP;
      UPDATE streams SET last_hash = v_hash WHERE stream_id = p_stream_id;

      RETURN QUERY
        INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
        SELECT p_stream_id, v_version + u.n, u.id, u.type, u.schema_version, u.data, u.metadata, p_recorded_at, v_hashes[u.n]
          FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata) WITH ORDINALITY AS u(id, type, schema_version, data, metadata, n)
         ORDER BY u.n
        RETURNING events.event_id, events.stream_version, events.global_position, events.transaction_id, false;
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION ledger_append(text, bigint, boolean, timestamptz, text[], text[], integer[], jsonb[], jsonb[], text[])`.execute(db);
  await sql`DROP FUNCTION ledger_chain_hash(text, bigint, text)`.execute(db);
  await sql`DROP TABLE events`.execute(db);
  await sql`DROP TABLE streams`.execute(db);
}
