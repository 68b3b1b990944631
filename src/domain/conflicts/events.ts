import { z } from 'zod';
import { defineEvent } from '../events/catalogue.ts';
import { DecimalStringSchema } from '../money/decimal.ts';
import { RESOLUTION_STRATEGIES } from './resolution.ts';

const Id = z.string().min(1).max(200);
const Instant = z.iso.datetime({ message: 'must be an ISO 8601 UTC instant' });

export const ConflictVersionSchema = z.object({
  version: z.number().int().positive(),
  connectionId: Id,
  value: DecimalStringSchema,
  observedAt: Instant,
});

export const ConflictDetected = defineEvent({
  type: 'ConflictDetected',
  version: 1,
  schema: z.object({
    conflictId: Id,
    portfolioId: Id,
    /** The canonical security the sources disagree on. */
    securityKey: z.string().min(1),
    conflictType: z.enum(['DUPLICATE', 'QUANTITY_MISMATCH', 'VALUE_MISMATCH']),
    field: z.enum(['quantity', 'value']),
    versions: z.array(ConflictVersionSchema).min(1),
  }),
});

export const ConflictVersionObserved = defineEvent({
  type: 'ConflictVersionObserved',
  version: 1,
  schema: z.object({ conflictId: Id, version: ConflictVersionSchema }),
});

export const ConflictResolved = defineEvent({
  type: 'ConflictResolved',
  version: 1,
  schema: z.object({
    conflictId: Id,
    strategy: z.enum(RESOLUTION_STRATEGIES).exclude(['MANUAL_REVIEW']),
    value: DecimalStringSchema,
    /** The version whose value stands; absent when the value was merged. */
    chosenVersion: z.number().int().positive().optional(),
    resolvedBy: Id,
    automatic: z.boolean(),
  }),
});

export const ConflictIgnored = defineEvent({
  type: 'ConflictIgnored',
  version: 1,
  schema: z.object({ conflictId: Id, ignoredBy: Id, reason: z.string().max(1000).optional() }),
});

export const conflictEventDefinitions = [ConflictDetected, ConflictVersionObserved, ConflictResolved, ConflictIgnored];
