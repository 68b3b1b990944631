import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** The fields of an event that its hash covers (everything but positions assigned by the store). */
export interface HashedContent {
  readonly id: string;
  readonly streamId: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: unknown;
  readonly recordedAt: string;
}

/** SHA-256 (hex) of the RFC 8785 canonical JSON of an event's content. */
export function contentHash(content: HashedContent): string {
  const { id, streamId, type, schemaVersion, data, metadata, recordedAt } = content;
  return sha256Hex(canonicalize({ id, streamId, type, schemaVersion, data, metadata, recordedAt })!);
}

/**
 * The chained hash of the event at `streamVersion`: it covers the previous event's chained hash,
 * so altering any event breaks every link after it. The store computes the same formula in SQL
 * (ledger_append) so that the chain is extended under the stream's row lock.
 */
export function chainHash(previousHash: string | null, streamVersion: number, content: string): string {
  return sha256Hex(`${previousHash ?? ''}\n${streamVersion}\n${content}`);
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
