import { hash } from 'node:crypto';
import { canonicalJson } from '../events/hash-chain.ts';
import type { DataType } from '../platforms/records.ts';

/**
 * Deterministic ingestion: a pulled record is known by (connection, data type, platform record id)
 * and by the hash of its content. Unchanged content appends nothing; changed content appends the
 * fields that changed; event ids come from identity and content, so a re-run after a crash
 * appends nothing twice.
 */

/** A record as events carry it: JSON with decimals as strings. */
export type WireRecord = Readonly<Record<string, unknown>>;

/** Canonical records hold Decimals; their JSON form (fixed-notation strings) is what the log keeps. */
export function toWire(record: object): WireRecord {
  return JSON.parse(canonicalJson(record)) as WireRecord;
}

export function contentHash(record: WireRecord): string {
  return hash('sha256', canonicalJson(record), 'hex');
}

export type RecordChange =
  | { readonly kind: 'inserted' }
  | { readonly kind: 'updated'; readonly changes: WireRecord }
  | { readonly kind: 'skipped' };

/** Compares a pulled record with the last version the ledger holds, field by field. */
export function diffRecord(previous: WireRecord | undefined, next: WireRecord): RecordChange {
  if (!previous) return { kind: 'inserted' };
  const changes: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(previous), ...Object.keys(next)])) {
    const before = previous[key];
    const after = next[key];
    if (before === after) continue;
    if (before !== undefined && after !== undefined && canonicalJson(before) === canonicalJson(after)) continue;
    // A field that disappeared is carried as null so that the change says so.
    changes[key] = after === undefined ? null : after;
  }
  return Object.keys(changes).length === 0 ? { kind: 'skipped' } : { kind: 'updated', changes };
}

/** Folds a change into the last known version of a record (the inverse of diffRecord). */
export function applyChanges(previous: WireRecord, changes: WireRecord): WireRecord {
  const next: Record<string, unknown> = { ...previous };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next;
}

/** Ids the ledger knows that a complete snapshot no longer contains: each is a removal. */
export function* removedIds(known: Iterable<string>, seen: ReadonlySet<string>): Iterable<string> {
  for (const id of known) if (!seen.has(id)) yield id;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID-shaped id derived from its parts: 128 bits of their SHA-256 in Crockford base32, the
 * first character kept within ULID's range. Equal parts always give the same id.
 */
export function deterministicEventId(...parts: readonly string[]): string {
  const digest = hash('sha256', parts.join('\u0000'), 'buffer');
  let bits = 0n;
  for (let i = 0; i < 16; i++) bits = (bits << 8n) | BigInt(digest[i]!);
  let out = '';
  for (let i = 0; i < 26; i++) {
    out = CROCKFORD[Number(bits & 31n)]! + out;
    bits >>= 5n;
  }
  return out;
}

/**
 * The event id of one observation: identity, revision and content. The revision keeps a record
 * that changes back and forth (A, B, A, B) from reusing an earlier change's id; a sync re-run after
 * a crash computes the same revision and content, so its events are no-ops.
 */
export function observationEventId(connectionId: string, dataType: DataType, platformRecordId: string, revision: number, hashOfContent: string): string {
  return deterministicEventId(connectionId, dataType, platformRecordId, String(revision), hashOfContent);
}
