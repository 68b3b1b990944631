import type pg from 'pg';
import { StreamChainWalker, type BrokenLink } from '../../domain/events/chain-verification.ts';
import { contentHash } from '../../domain/events/hash-chain.ts';

export interface VerificationReport {
  readonly streams: number;
  readonly events: number;
  readonly broken: BrokenLink[];
}

const PAGE = 5000;

/** Walks every stream's hash chain straight from the stored rows (no schema or upcasting). */
export async function verifyHashChains(pool: pg.Pool): Promise<VerificationReport> {
  const heads = new Map<string, { version: number; lastHash: string | null }>();
  const headRows = await pool.query<{ stream_id: string; version: number; last_hash: string | null }>('SELECT stream_id, version, last_hash FROM streams');
  for (const row of headRows.rows) heads.set(row.stream_id, { version: row.version, lastHash: row.last_hash });

  const broken: BrokenLink[] = [];
  let walker = null as StreamChainWalker | null;
  let events = 0;
  let streams = 0;
  const seen = new Set<string>();
  const finish = (done: StreamChainWalker | null) => {
    if (!done) return;
    const result = done.finish(heads.get(done.streamId) ?? null);
    if (result) broken.push(result);
    seen.add(done.streamId);
    streams++;
  };

  // Keyset pages in (stream, version) order: one stream's chain is walked across page boundaries.
  let after: [string, number] = ['', 0];
  for (;;) {
    const page = await pool.query<{
      stream_id: string;
      stream_version: number;
      event_id: string;
      event_type: string;
      schema_version: number;
      data: unknown;
      metadata: unknown;
      recorded_at: Date;
      hash: string;
    }>({
      name: 'ledger_verify_page',
      text: `SELECT stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash
               FROM events WHERE (stream_id, stream_version) > ($1, $2)
              ORDER BY stream_id, stream_version LIMIT ${PAGE}`,
      values: after,
    });
    for (const row of page.rows) {
      if (walker?.streamId !== row.stream_id) {
        finish(walker);
        walker = new StreamChainWalker(row.stream_id);
      }
      const content = contentHash({
        id: row.event_id,
        streamId: row.stream_id,
        type: row.event_type,
        schemaVersion: row.schema_version,
        data: row.data,
        metadata: row.metadata,
        recordedAt: row.recorded_at.toISOString(),
      });
      walker.next({ streamVersion: row.stream_version, contentHash: content, hash: row.hash });
      events++;
    }
    if (page.rows.length < PAGE) break;
    const last = page.rows[page.rows.length - 1]!;
    after = [last.stream_id, last.stream_version];
  }
  finish(walker);

  for (const [streamId, head] of heads) {
    if (!seen.has(streamId) && head.version > 0) broken.push({ streamId, streamVersion: 1, reason: `stream is recorded at version ${head.version} but has no events` });
  }
  return { streams, events, broken };
}
