import { createHash } from 'node:crypto';

/**
 * The chained hash of the event at `streamVersion`: it covers the previous event's chained hash
 * and the event's content hash, so altering any event breaks its link. The store computes the
 * same formula in SQL (ledger_chain_hash), and the content hash there too (ledger_content_hash,
 * over PostgreSQL's normalised jsonb text), so that both are extended under the stream's lock.
 */
export function chainHash(previousHash: string | null, streamVersion: number, contentHash: string): string {
  return createHash('sha256').update(`${previousHash ?? ''}\n${streamVersion}\n${contentHash}`, 'utf8').digest('hex');
}
