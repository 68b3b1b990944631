import { z } from 'zod';

/**
 * What went wrong with one record or one request of a fetch. A record that fails becomes one of
 * these and the fetch goes on; the sync engine stores them with the operation.
 */
export const SyncErrorCodeSchema = z.enum([
  'RECORD_INVALID',
  'IDENTIFIER_INVALID',
  'CURRENCY_NOT_SUPPORTED',
  'DUPLICATE_RECORD',
  'RATE_LIMITED',
  'PLATFORM_UNAVAILABLE',
  'TIMEOUT',
  'CONNECTION_RESET',
  'AUTH_EXPIRED',
  'AUTH_REVOKED',
  'PUSH_REJECTED',
  'UNSUPPORTED',
]);
export type SyncErrorCode = z.infer<typeof SyncErrorCodeSchema>;

export const SyncErrorSchema = z.object({
  /** The platform's id of the record, or of the request when no record is at fault. */
  recordId: z.string(),
  code: SyncErrorCodeSchema,
  message: z.string(),
  severity: z.enum(['warning', 'error', 'critical']),
  retryable: z.boolean(),
});
export type SyncError = z.infer<typeof SyncErrorSchema>;
