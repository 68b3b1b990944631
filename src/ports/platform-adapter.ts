import type { Decimal } from 'decimal.js';
import { z } from 'zod';
import type {
  AccountRecord,
  AnalyticsRecord,
  DataType,
  HoldingRecord,
  PerformancePeriod,
  PerformanceRecord,
  Platform,
  TaxLotRecord,
  TransactionRecord,
} from '../domain/platforms/records.ts';
import type { SyncError } from '../domain/platforms/sync-error.ts';

/**
 * What a connection keeps to reach its platform. Held only by the credential vault (encrypted)
 * and the adapters; never logged, returned by the API or written to the event log.
 */
export const CredentialsSchema = z.object({
  accessToken: z.string().min(1),
  /** Epoch milliseconds. */
  accessTokenExpiresAt: z.number().int(),
  refreshToken: z.string().min(1).optional(),
  refreshTokenExpiresAt: z.number().int().optional(),
  /** When the credential was first granted or last rotated (epoch ms): rotation is due 30 days later. */
  grantedAt: z.number().int(),
  /** Key-and-secret platforms (Orion) keep what re-authenticates them. */
  apiKey: z.string().min(1).optional(),
  apiSecret: z.string().min(1).optional(),
  scope: z.string().optional(),
});
export type Credentials = z.infer<typeof CredentialsSchema>;

/** Where a connection's current credentials live; `replace` is a compare-and-swap. */
export interface CredentialHolder {
  current(): Promise<Credentials>;
  /** Stores `next` only if `previous` is still current, answering the version now stored; otherwise throws CredentialsChangedError. */
  replace(previous: Credentials, next: Credentials): Promise<number>;
}

export class CredentialsChangedError extends Error {
  override readonly name = 'CredentialsChangedError';
  constructor() {
    super('the credentials were replaced by another writer; load them again');
  }
}

/** The start of an OAuth authorization-code flow: send the user to the URL, keep state and verifier. */
export interface AuthorizationStart {
  readonly authorizationUrl: string;
  readonly state: string;
  readonly codeVerifier: string;
}

export interface AuthorizationCallback {
  /** The full URL the platform redirected back to (carries code and state, or an error). */
  readonly callbackUrl: string;
  readonly expectedState: string;
  readonly codeVerifier: string;
}

/** One item of a fetch: a mapped record, a record that could not be mapped, or (last) the cursor to resume from. */
export type Fetched<T> =
  | { readonly kind: 'record'; readonly record: T }
  | { readonly kind: 'error'; readonly error: SyncError }
  | { readonly kind: 'cursor'; readonly cursor: string };

export type TransactionQuery = { readonly from?: string; readonly to?: string } | { readonly since: string };

export type SecurityRef = { readonly ticker?: string; readonly cusip?: string; readonly isin?: string };

/** Write-back: what the platforms accept from us. `clientRef` makes a push idempotent on the platform. */
export type PushInstruction =
  | {
      readonly kind: 'trade';
      readonly clientRef: string;
      readonly platformAccountId: string;
      readonly side: 'BUY' | 'SELL';
      readonly security: SecurityRef;
      readonly quantity: Decimal;
      readonly orderType: 'MARKET' | 'LIMIT';
      readonly limitPrice?: Decimal;
    }
  | {
      readonly kind: 'rebalance';
      readonly clientRef: string;
      readonly platformAccountId: string;
      readonly targets: readonly { readonly security: SecurityRef; readonly weight: Decimal }[];
    }
  | {
      readonly kind: 'manual_override';
      readonly clientRef: string;
      readonly platformAccountId: string;
      readonly platformRecordId: string;
      readonly field: 'quantity' | 'price' | 'costBasis';
      readonly value: Decimal;
      readonly reason: string;
    };

export type PushReceipt =
  | { readonly status: 'accepted'; readonly platformReference: string; readonly acceptedAt: string }
  | { readonly status: 'rejected'; readonly code: string; readonly message: string };

/** A signed data-change notification from a platform, verified and parsed. */
export interface WebhookNotice {
  /** The platform's id of this delivery: a retried delivery carries the same one. */
  readonly deliveryId: string;
  readonly platformAccountId: string;
  readonly dataType: DataType;
  readonly platformRecordIds: readonly string[];
}

/** A live connection to one platform user's data; every method streams and never holds a whole account. */
export interface PlatformConnection {
  accounts(): AsyncIterable<Fetched<AccountRecord>>;
  holdings(platformAccountId: string, options?: { asOf?: string }): AsyncIterable<Fetched<HoldingRecord>>;
  /** Ends with a `cursor` item; pass it back as `{ since }` to fetch only what changed after. */
  transactions(platformAccountId: string, query?: TransactionQuery): AsyncIterable<Fetched<TransactionRecord>>;
  performance(platformAccountId: string, periods?: readonly PerformancePeriod[]): AsyncIterable<Fetched<PerformanceRecord>>;
  /** Only where `capabilities` lists tax_lots. */
  taxLots(platformAccountId: string): AsyncIterable<Fetched<TaxLotRecord>>;
  /** Only where `capabilities` lists analytics: risk metrics, attribution and benchmark comparison. */
  analytics(platformAccountId: string, options?: { benchmarkId?: string }): AsyncIterable<Fetched<AnalyticsRecord>>;
  push(instruction: PushInstruction): Promise<PushReceipt>;
}

export interface PlatformAdapter {
  readonly platform: Platform;
  readonly authMethod: 'oauth_code' | 'api_key';
  readonly capabilities: readonly DataType[];
  /** OAuth platforms: the authorization URL with state and PKCE. */
  beginAuthorization(redirectUri: string): Promise<AuthorizationStart>;
  /** OAuth platforms: checks state, exchanges the code (with the PKCE verifier) for credentials. */
  completeAuthorization(callback: AuthorizationCallback & { readonly redirectUri: string }): Promise<Credentials>;
  /** Key-and-secret platforms: exchanges the key and secret for credentials. */
  onboardApiKey(apiKey: string, apiSecret: string): Promise<Credentials>;
  /** Opens a connection that refreshes and rotates its credentials through `holder`. */
  open(holder: CredentialHolder): PlatformConnection;
  /** Verifies a webhook's signature; a forged or malformed delivery throws. */
  parseWebhook(rawBody: string, headers: Readonly<Record<string, string | undefined>>): WebhookNotice;
}

/**
 * A failure that ends a fetch or a connection attempt (as opposed to one bad record): the
 * platform refused us, stayed unavailable past every retry, or the credentials are dead.
 */
export class PlatformError extends Error {
  override readonly name = 'PlatformError';
  constructor(
    readonly platform: Platform,
    readonly syncError: SyncError,
  ) {
    super(`${platform}: ${syncError.code}: ${syncError.message}`);
  }
}
