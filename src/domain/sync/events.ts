import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';
import { DataTypeSchema } from '../platforms/records.ts';
import { SyncErrorSchema } from '../platforms/sync-error.ts';

const Id = z.string().min(1).max(200);
const Count = z.number().int().nonnegative();

export const SyncCountsSchema = z.object({ processed: Count, inserted: Count, updated: Count, skipped: Count, failed: Count });
export type SyncCounts = z.infer<typeof SyncCountsSchema>;

export const SyncTriggerSchema = z.enum(['manual', 'schedule', 'webhook', 'retry']);

export const SyncRequested = defineEvent({
  type: 'SyncRequested',
  version: 1,
  schema: z.object({
    operationId: Id,
    connectionId: Id,
    dataTypes: z.array(DataTypeSchema).min(1),
    force: z.boolean(),
    trigger: SyncTriggerSchema,
    requestedBy: Id,
    /** 0 for a first run; a retry counts up from the operation it retries. */
    attempt: z.number().int().min(0),
    retryOf: Id.optional(),
    /** A retry of failed records only carries their ids per data type. */
    onlyRecords: z.record(z.string(), z.array(z.string())).optional(),
  }),
});

export const SyncStarted = defineEvent({ type: 'SyncStarted', version: 1, schema: z.object({ operationId: Id }) });

export const SyncProgressed = defineEvent({
  type: 'SyncProgressed',
  version: 1,
  schema: z.object({ operationId: Id, dataType: DataTypeSchema, pulled: Count }),
});

export const SyncErrorsRecorded = defineEvent({
  type: 'SyncErrorsRecorded',
  version: 1,
  schema: z.object({ operationId: Id, dataType: DataTypeSchema, errors: z.array(SyncErrorSchema).min(1) }),
});

export const SyncCompleted = defineEvent({
  type: 'SyncCompleted',
  version: 1,
  schema: z.object({ operationId: Id, outcome: z.enum(['completed', 'partial']), counts: SyncCountsSchema }),
});

export const SyncFailed = defineEvent({
  type: 'SyncFailed',
  version: 1,
  schema: z.object({
    operationId: Id,
    counts: SyncCountsSchema,
    error: SyncErrorSchema,
    /** When the automatic retry is due; absent when no retry follows. */
    retryAt: z.iso.datetime().optional(),
  }),
});

export const SyncRetried = defineEvent({
  type: 'SyncRetried',
  version: 1,
  schema: z.object({ operationId: Id, retryOperationId: Id, failedOnly: z.boolean() }),
});

export const syncEventDefinitions = [SyncRequested, SyncStarted, SyncProgressed, SyncErrorsRecorded, SyncCompleted, SyncFailed, SyncRetried];
