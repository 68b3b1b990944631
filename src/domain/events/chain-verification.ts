import { chainHash } from './hash-chain.ts';

export interface StoredLink {
  readonly streamVersion: number;
  /** Recomputed from the stored content, not read from a stored column. */
  readonly contentHash: string;
  readonly hash: string;
}

export interface BrokenLink {
  readonly streamId: string;
  readonly streamVersion: number;
  readonly reason: string;
}

/**
 * Walks one stream's events in version order and returns the first link that does not hold:
 * a gap in versions, or a stored hash that differs from the one recomputed from the content and
 * the previous link. `head` is the stream's recorded version and last hash, which catches a
 * deleted tail.
 */
export class StreamChainWalker {
  private previousHash: string | null = null;
  private expectedVersion = 1;
  private broken: BrokenLink | null = null;

  constructor(readonly streamId: string) {}

  next(link: StoredLink): void {
    if (this.broken) return;
    if (link.streamVersion !== this.expectedVersion) {
      this.broken = { streamId: this.streamId, streamVersion: this.expectedVersion, reason: `event ${this.expectedVersion} is missing (found ${link.streamVersion})` };
      return;
    }
    const expected = chainHash(this.previousHash, link.streamVersion, link.contentHash);
    if (expected !== link.hash) {
      this.broken = { streamId: this.streamId, streamVersion: link.streamVersion, reason: 'hash does not match the event content and the previous link (altered event)' };
      return;
    }
    this.previousHash = link.hash;
    this.expectedVersion++;
  }

  finish(head: { version: number; lastHash: string | null } | null): BrokenLink | null {
    if (this.broken) return this.broken;
    const walked = this.expectedVersion - 1;
    if (!head) return { streamId: this.streamId, streamVersion: walked, reason: 'events exist for a stream the store does not record' };
    if (head.version !== walked) {
      return { streamId: this.streamId, streamVersion: walked + 1, reason: `stream is recorded at version ${head.version} but its events end at ${walked}` };
    }
    if (head.lastHash !== this.previousHash) {
      return { streamId: this.streamId, streamVersion: walked, reason: 'last event hash differs from the hash recorded for the stream' };
    }
    return null;
  }
}
