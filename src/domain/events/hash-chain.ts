import { hash } from 'node:crypto';

/** The fields of an event that its content hash covers (everything but store-assigned positions). */
export interface HashedContent {
  readonly id: string;
  readonly streamId: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: unknown;
  /** ISO 8601 with milliseconds, as Date.toISOString() writes it. */
  readonly recordedAt: string;
}

/**
 * JSON with object keys sorted (by UTF-16 code units, as RFC 8785 does) and JSON.stringify's
 * rendering of strings and numbers, so that equal values always give the same text: data read
 * back from jsonb (which reorders keys) renders exactly as it did when it was appended.
 */
export function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null';
  const toJson = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJson === 'function') return canonicalJson(toJson.call(value));
  // Plain loops and string concatenation: this runs for every event appended and verified.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out += (i === 0 ? '' : ',') + (item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item));
    }
    return `${out}]`;
  }
  const keys = Object.keys(value);
  if (keys.length > 1) keys.sort();
  let out = '{';
  for (const key of keys) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function') continue;
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}

/** SHA-256 (hex) of an event's canonical content. */
export function contentHash(content: HashedContent): string {
  const { id, streamId, type, schemaVersion, data, metadata, recordedAt } = content;
  return sha256Hex(canonicalJson([id, streamId, type, schemaVersion, data, metadata, recordedAt]));
}

/**
 * The chained hash of the event at `streamVersion`: it covers the previous event's chained hash and
 * the event's content hash, so altering any event breaks its link. The same formula runs in SQL
 * (ledger_chain_hash), where an append extends the chain under the stream's lock.
 */
export function chainHash(previousHash: string | null, streamVersion: number, contentHashHex: string): string {
  return sha256Hex(`${previousHash ?? ''}\n${streamVersion}\n${contentHashHex}`);
}

function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}
