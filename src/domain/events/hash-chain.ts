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
 * back from jsonb (which reorders keys) renders exactly as it did when it was appended. The store
 * writes this text as the stored JSON too, so each event is serialised once.
 */
export function canonicalJson(value: unknown): string {
  // Plain loops and string concatenation: this runs for every event appended and verified.
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'object':
      break;
    default:
      return JSON.stringify(value) ?? 'null';
  }
  if (value === null) return 'null';
  const toJson = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJson === 'function') return canonicalJson(toJson.call(value));
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (i > 0) out += ',';
      out += item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item);
    }
    return `${out}]`;
  }
  const keys = Object.keys(value);
  // Objects built from one schema usually share a key order: sort only when it is not sorted yet.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  for (const key of keys) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function') continue;
    if (out.length > 1) out += ',';
    out += `${quote(key)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}

/** JSON.stringify of a string, without calling it for the common string that needs no escape. */
function quote(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Control characters, quote, backslash and surrogates (a lone one is escaped).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(text);
  }
  return `"${text}"`;
}

/** SHA-256 (hex) of an event's canonical content. */
export function contentHash(content: HashedContent): string {
  const { id, streamId, type, schemaVersion, data, metadata, recordedAt } = content;
  return serialisedContentHash(id, streamId, type, schemaVersion, canonicalJson(data), canonicalJson(metadata), recordedAt);
}

/**
 * contentHash for data and metadata already in canonical JSON: the canonical JSON of the array
 * [id, streamId, type, schemaVersion, data, metadata, recordedAt].
 */
export function serialisedContentHash(
  id: string,
  streamId: string,
  type: string,
  schemaVersion: number,
  dataJson: string,
  metadataJson: string,
  recordedAt: string,
): string {
  return sha256Hex(`[${quote(id)},${quote(streamId)},${quote(type)},${canonicalJson(schemaVersion)},${dataJson},${metadataJson},${quote(recordedAt)}]`);
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
