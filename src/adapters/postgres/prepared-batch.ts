import { z } from 'zod';
import type { EventCatalogue } from '../../domain/events/catalogue.ts';
import { canonicalJson, serialisedContentHash } from '../../domain/events/hash-chain.ts';
import { EventMetadataSchema } from '../../domain/events/metadata.ts';
import { parseField, ValidationError } from '../../domain/validation.ts';
import type { NewEvent } from '../../ports/event-store.ts';

const UlidSchema = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a ULID (26 Crockford base-32 characters)');

/**
 * A batch of new events, column by column, as the store writes them: each event validated, its
 * data and metadata serialised once as canonical JSON (what is hashed is also what is stored;
 * jsonb ignores key order) and its content hash computed. Events can be added a slice at a time,
 * so that a large batch is prepared while earlier slices are being written.
 */
export class PreparedBatch {
  readonly ids: string[] = [];
  readonly types: string[] = [];
  readonly schemaVersions: number[] = [];
  /** Canonical JSON. */
  readonly data: string[] = [];
  /** Canonical JSON. */
  readonly metadata: string[] = [];
  readonly contentHashes: string[] = [];
  /** Only batches holding caller-supplied ids can repeat one: generated ids are unique. */
  private readonly seen: Set<string> | null;
  // A batch usually shares one metadata object (a command's): validated and serialised once.
  private lastMetadata: unknown = undefined;
  private lastMetadataJson = '{}';

  constructor(
    readonly streamId: string,
    /** ISO 8601 with milliseconds: hashed as is, and what the store records. */
    readonly recordedAt: string,
    readonly callerIds: boolean,
    private readonly catalogue: EventCatalogue,
    private readonly newId: () => string,
  ) {
    this.seen = callerIds ? new Set() : null;
  }

  get size(): number {
    return this.ids.length;
  }

  /** Validates and adds events[size, end). */
  addUpTo(events: readonly NewEvent[], end: number): void {
    for (let index = this.ids.length; index < end; index++) {
      const event = events[index]!;
      const id = event.id === undefined ? this.newId() : parseField(UlidSchema, event.id, `events[${index}].id`);
      if (this.seen) {
        if (this.seen.has(id)) throw new ValidationError([{ path: `events[${index}].id`, message: `duplicates the id of an earlier event in the batch (${id})` }]);
        this.seen.add(id);
      }
      const valid = this.catalogue.validate(event.type, event.data, () => `events[${index}]`);
      const data = canonicalJson(valid.data);
      const metadata = this.metadataJson(event.metadata, index);
      this.ids.push(id);
      this.types.push(valid.type);
      this.schemaVersions.push(valid.schemaVersion);
      this.data.push(data);
      this.metadata.push(metadata);
      this.contentHashes.push(serialisedContentHash(id, this.streamId, valid.type, valid.schemaVersion, data, metadata, this.recordedAt));
    }
  }

  private metadataJson(metadata: unknown, index: number): string {
    if (metadata === undefined) return '{}';
    if (metadata !== this.lastMetadata) {
      this.lastMetadataJson = canonicalJson(parseField(EventMetadataSchema, metadata, `events[${index}].metadata`));
      this.lastMetadata = metadata;
    }
    return this.lastMetadataJson;
  }
}
