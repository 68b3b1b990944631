import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';
import { DataTypeSchema, PlatformSchema } from '../platforms/records.ts';

const Id = z.string().min(1).max(200);
const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');

/** What every observation carries: whose record, which one, from which sync, and which revision of it this is. */
const Observation = {
  connectionId: Id,
  platform: PlatformSchema,
  dataType: DataTypeSchema,
  recordId: Id,
  operationId: Id,
  /** 1 for the first observation, counting up with each change or removal of the record. */
  revision: z.number().int().positive(),
};

/** A record the ledger had not seen from this connection, whole, in wire form. */
export const SourceRecordObserved = defineEvent({
  type: 'SourceRecordObserved',
  version: 1,
  schema: z.object({ ...Observation, record: z.record(z.string(), z.unknown()), contentHash: Hash }),
});

/** Only the fields that changed; a field that disappeared is null. */
export const SourceRecordChanged = defineEvent({
  type: 'SourceRecordChanged',
  version: 1,
  schema: z.object({ ...Observation, changes: z.record(z.string(), z.unknown()), contentHash: Hash }),
});

/** A record a complete snapshot no longer holds. */
export const SourceRecordRemoved = defineEvent({
  type: 'SourceRecordRemoved',
  version: 1,
  schema: z.object(Observation),
});

/**
 * Where an incremental fetch of one account resumes: the platform's change cursor after a sync
 * (transactions). Kept in the log so that the next sync pulls only what changed since.
 */
export const SourceCursorAdvanced = defineEvent({
  type: 'SourceCursorAdvanced',
  version: 1,
  schema: z.object({ connectionId: Id, dataType: DataTypeSchema, platformAccountId: Id, operationId: Id, cursor: z.string().min(1).max(2000) }),
});

export const ingestionEventDefinitions = [SourceRecordObserved, SourceRecordChanged, SourceRecordRemoved, SourceCursorAdvanced];

/** One stream per connection and data type: a sync of one data type has a single writer. */
export const sourceStreamId = (connectionId: string, dataType: string) => `source-${connectionId}.${dataType}`;
