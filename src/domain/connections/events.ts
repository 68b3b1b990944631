import { z } from 'zod';
import { RESOLUTION_STRATEGIES } from '../conflicts/resolution.ts';
import { defineEvent } from '../events/catalogue.ts';
import { DecimalStringSchema } from '../money/decimal.ts';
import { AssetClassSchema, PlatformSchema } from '../platforms/records.ts';
import { SyncErrorSchema } from '../platforms/sync-error.ts';

const Id = z.string().min(1).max(200);
const Instant = z.iso.datetime({ message: 'must be an ISO 8601 UTC instant' });

export const SyncDirectionSchema = z.enum(['read_only', 'write_back', 'bidirectional']);
export type SyncDirection = z.infer<typeof SyncDirectionSchema>;

export const DataFiltersSchema = z.object({
  /** Only these asset classes count; absent means all. */
  includedAssetClasses: z.array(AssetClassSchema).min(1).optional(),
  /** Canonical security keys (ISIN, CUSIP or ticker) left out. */
  excludedSecurities: z.array(z.string().min(1)).optional(),
  /** Holdings worth less than this (base currency) are left out. */
  minimumValue: DecimalStringSchema.optional(),
});
export type DataFilters = z.infer<typeof DataFiltersSchema>;

export const ConnectionSettingsSchema = z.object({
  displayName: z.string().trim().min(1).max(200),
  autoSync: z.boolean(),
  /** Overrides the platform's schedules: minutes between syncs of every data type; absent keeps them. */
  syncFrequencyMinutes: z.number().int().min(5).max(7 * 24 * 60).optional(),
  direction: SyncDirectionSchema,
  conflictStrategy: z.enum(RESOLUTION_STRATEGIES),
  dataFilters: DataFiltersSchema,
});
export type ConnectionSettings = z.infer<typeof ConnectionSettingsSchema>;

export const ConnectionInitiated = defineEvent({
  type: 'ConnectionInitiated',
  version: 1,
  schema: z.object({ connectionId: Id, ownerId: Id, platform: PlatformSchema, platformAccountId: Id.optional(), settings: ConnectionSettingsSchema }),
});

/** The credential itself lives in the vault; the log keeps only which version of it is current. */
const CredentialRef = z.object({ credentialVersion: z.number().int().positive(), accessTokenExpiresAt: Instant, grantedAt: Instant });

export const ConnectionAuthorized = defineEvent({
  type: 'ConnectionAuthorized',
  version: 1,
  schema: z.object({ connectionId: Id, ...CredentialRef.shape }),
});

export const ConnectionSettingsChanged = defineEvent({
  type: 'ConnectionSettingsChanged',
  version: 1,
  schema: z.object({ connectionId: Id, changes: ConnectionSettingsSchema.partial() }),
});

export const ConnectionCredentialsRenewed = defineEvent({
  type: 'ConnectionCredentialsRenewed',
  version: 1,
  schema: z.object({ connectionId: Id, ...CredentialRef.shape, rotated: z.boolean() }),
});

export const ConnectionErrorRecorded = defineEvent({
  type: 'ConnectionErrorRecorded',
  version: 1,
  schema: z.object({ connectionId: Id, error: SyncErrorSchema }),
});

export const ConnectionDisconnected = defineEvent({
  type: 'ConnectionDisconnected',
  version: 1,
  schema: z.object({ connectionId: Id, keepData: z.boolean(), disconnectedBy: Id }),
});

export const connectionEventDefinitions = [
  ConnectionInitiated,
  ConnectionAuthorized,
  ConnectionSettingsChanged,
  ConnectionCredentialsRenewed,
  ConnectionErrorRecorded,
  ConnectionDisconnected,
];
