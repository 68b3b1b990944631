import type { Logger } from 'pino';
import { Dec } from '../../../domain/money/decimal.ts';
import type { AccountRecord, DataType, HoldingRecord, PerformancePeriod, PerformanceRecord, TaxLotRecord, TransactionRecord } from '../../../domain/platforms/records.ts';
import {
  PlatformError,
  type AuthorizationStart,
  type CredentialHolder,
  type Credentials,
  type Fetched,
  type PlatformAdapter,
  type PlatformConnection,
  type PushInstruction,
  type PushReceipt,
  type SecurityRef,
  type TransactionQuery,
  type WebhookNotice,
} from '../../../ports/platform-adapter.ts';
import { PlatformHttpClient, TokenManager, requestError, tokenAuthorization, type PlatformHttpClientOptions, type PlatformResponse } from '../client-kit/index.ts';
import { API_ROOT, MAX_PAGE_SIZE, RATE_LIMIT } from './defaults.ts';
import { mapAccount, mapAsset, mapPerformance, mapTransaction, mapVerboseAsset } from './mapping.ts';
import { offsetPages, type OffsetPage } from './paging.ts';
import { OrionErrorSchema, OrionOrderReceiptSchema, OrionTokenSchema } from './wire.ts';

export interface OrionAdapterConfig {
  /** The host (`https://api.orionadvisor.com`) or the API root under it (`…/api/v1`). */
  readonly baseUrl: string;
  /** A partner app's registration, sent with every login. */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** Records per page (`$top`). */
  readonly pageSize?: number;
  readonly timeoutMs?: number;
  readonly retry?: PlatformHttpClientOptions['retry'];
  readonly breaker?: PlatformHttpClientOptions['breaker'];
  readonly bulkhead?: PlatformHttpClientOptions['bulkhead'];
  /** Kept under Orion's 1,000 requests a minute per API user. */
  readonly rateLimit?: PlatformHttpClientOptions['rateLimit'];
  readonly now?: () => number;
  readonly logger?: Logger;
}

/** The header carrying the platform's change counter on transaction listings (see the sandbox). */
export const CHANGE_NUMBER_HEADER = 'x-change-number';
const CURSOR_PREFIX = 'orion-changes:';

const CAPABILITIES: readonly DataType[] = ['accounts', 'holdings', 'transactions', 'performance', 'tax_lots'];

/**
 * Orion through its REST API: an API user's key and secret are exchanged for a session token
 * (`GET /v1/security/token`, Basic), calls carry `Authorization: Session <token>`, and the
 * single-use refresh token is replaced on every refresh. Listings are offset-paged bare arrays.
 */
export class OrionAdapter implements PlatformAdapter {
  readonly platform = 'orion' as const;
  readonly authMethod = 'api_key' as const;
  readonly capabilities = CAPABILITIES;

  private readonly root: string;
  private readonly pageSize: number;
  private readonly now: () => number;
  private readonly auth: PlatformHttpClient;

  constructor(private readonly config: OrionAdapterConfig) {
    const base = config.baseUrl.replace(/\/+$/, '');
    this.root = base.endsWith(API_ROOT) ? base : base + API_ROOT;
    this.pageSize = Math.min(config.pageSize ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
    this.now = config.now ?? Date.now;
    this.auth = new PlatformHttpClient(this.clientOptions());
  }

  async beginAuthorization(): Promise<AuthorizationStart> {
    throw unsupported('Orion connects with an API key and secret, not an authorization redirect');
  }

  async completeAuthorization(): Promise<Credentials> {
    throw unsupported('Orion connects with an API key and secret, not an authorization redirect');
  }

  async onboardApiKey(apiKey: string, apiSecret: string): Promise<Credentials> {
    return this.login(apiKey, apiSecret);
  }

  open(holder: CredentialHolder): PlatformConnection {
    const tokens = new TokenManager(holder, {
      platform: 'orion',
      refresh: (credentials) => this.refresh(holder, credentials),
      rotate: (credentials) => this.reauthenticate(credentials),
      now: this.now,
    });
    const client = new PlatformHttpClient({ ...this.clientOptions(), ...tokenAuthorization(tokens, { scheme: 'Session' }) });
    return new OrionConnection(client, this.pageSize);
  }

  /** Orion sends no data-change webhooks (its notifications go through Fuse integrations only). */
  parseWebhook(): WebhookNotice {
    throw unsupported('Orion sends no data-change webhooks; positions are polled');
  }

  private clientOptions(): PlatformHttpClientOptions {
    return {
      platform: 'orion',
      baseUrl: this.root,
      timeoutMs: this.config.timeoutMs ?? 30_000,
      retry: this.config.retry ?? { maxAttempts: 4, initialDelayMs: 250, maxDelayMs: 8_000 },
      breaker: this.config.breaker ?? { consecutiveFailures: 5, halfOpenAfterMs: 30_000 },
      bulkhead: this.config.bulkhead ?? { limit: 4, queue: 64 },
      rateLimit: this.config.rateLimit ?? RATE_LIMIT,
      retryAfterHeaders: ['retry-after'],
      ...(this.config.logger ? { logger: this.config.logger } : {}),
    };
  }

  /** Key and secret -> a new session; the grant counts from now. */
  private async login(apiKey: string, apiSecret: string): Promise<Credentials> {
    const basic = Buffer.from(`${apiKey}:${apiSecret}`, 'utf8').toString('base64');
    const credentials = await this.tokenRequest(`Basic ${basic}`, 'the API key and secret');
    return { ...credentials, grantedAt: this.now(), apiKey, apiSecret };
  }

  /** A 30-day rotation: log in again with the key and secret. */
  private async reauthenticate(credentials: Credentials): Promise<Credentials> {
    if (!credentials.apiKey || !credentials.apiSecret) throw requestError('orion', 'AUTH_REVOKED', 'the connection keeps no API key and secret to log in with', 'credentials');
    return this.login(credentials.apiKey, credentials.apiSecret);
  }

  /**
   * Spends the single-use refresh token. When Orion refuses it and nobody else has stored newer
   * credentials meanwhile (a crash between spending and storing, say), Orion's answer to a 401 is
   * to log in again with the key and secret; when someone else has, the refusal is passed on so
   * the token manager loads what they stored.
   */
  private async refresh(holder: CredentialHolder, credentials: Credentials): Promise<Credentials> {
    if (credentials.refreshToken) {
      try {
        const renewed = await this.tokenRequest(`Bearer ${credentials.refreshToken}`, 'the refresh token');
        return { ...credentials, ...renewed };
      } catch (error) {
        if (!isAuthFailure(error)) throw error;
        const latest = await holder.current();
        if (latest.refreshToken !== credentials.refreshToken || latest.accessToken !== credentials.accessToken) throw error;
      }
    }
    return this.reauthenticate(credentials);
  }

  private async tokenRequest(authorization: string, what: string): Promise<Pick<Credentials, 'accessToken' | 'accessTokenExpiresAt' | 'refreshToken'>> {
    const headers: Record<string, string> = { authorization };
    if (this.config.clientId) headers.client_id = this.config.clientId;
    if (this.config.clientSecret) headers.client_secret = this.config.clientSecret;
    let response: PlatformResponse;
    try {
      response = await this.auth.request({ path: '/security/token', headers });
    } catch (error) {
      if (isAuthFailure(error)) throw requestError('orion', 'AUTH_REVOKED', `Orion refused ${what} (401)`, 'security/token');
      throw error;
    }
    if (response.status !== 200) throw requestError('orion', response.status === 403 ? 'AUTH_REVOKED' : 'PLATFORM_UNAVAILABLE', `Orion answered ${response.status} to the token request with ${what}`, 'security/token');
    const token = OrionTokenSchema.safeParse(response.body);
    if (!token.success) throw requestError('orion', 'PLATFORM_UNAVAILABLE', 'Orion answered the token request with a body that is not a token', 'security/token');
    return {
      accessToken: token.data.access_token,
      accessTokenExpiresAt: this.now() + token.data.expires_in * 1000,
      refreshToken: token.data.refresh_token,
    };
  }
}

class OrionConnection implements PlatformConnection {
  constructor(
    private readonly client: PlatformHttpClient,
    private readonly pageSize: number,
  ) {}

  async *accounts(): AsyncIterable<Fetched<AccountRecord>> {
    for await (const page of this.listing('/Portfolio/Accounts', {})) for (const raw of page) yield mapAccount(raw);
  }

  async *holdings(platformAccountId: string, options: { asOf?: string } = {}): AsyncIterable<Fetched<HoldingRecord>> {
    const query = { accountId: platformAccountId, asOfDate: options.asOf, includeCostBasis: true };
    for await (const page of this.listing('/Portfolio/Assets', query)) for (const raw of page) yield mapAsset(raw);
  }

  async *transactions(platformAccountId: string, query: TransactionQuery = {}): AsyncIterable<Fetched<TransactionRecord>> {
    let cursor: string | undefined;
    const since = 'since' in query ? changeNumberOf(query.since) : undefined;
    const filter = 'since' in query ? { accountId: platformAccountId, modifiedAfter: since } : { accountId: platformAccountId, startDate: query.from, endDate: query.to };
    // The counter as the listing began: whatever changes later is fetched again next time.
    const onFirstPage = (page: OffsetPage) => {
      const number = page.headers.get(CHANGE_NUMBER_HEADER);
      cursor = number !== null && /^\d+$/.test(number) ? CURSOR_PREFIX + number : undefined;
    };
    for await (const page of this.listing('/Portfolio/Transactions', filter, onFirstPage)) for (const raw of page) yield mapTransaction(raw);
    // Without the counter, the next incremental fetch starts from where this one did.
    yield { kind: 'cursor', cursor: cursor ?? CURSOR_PREFIX + String(since ?? 0) };
  }

  async *performance(platformAccountId: string, periods?: readonly PerformancePeriod[]): AsyncIterable<Fetched<PerformanceRecord>> {
    const response = await this.get('/Reporting/Performance', { accountId: platformAccountId });
    for (const raw of arrayBody(response, 'GET /Reporting/Performance')) {
      const mapped = mapPerformance(raw);
      if (mapped.kind === 'record' && periods && !periods.includes(mapped.record.period)) continue;
      yield mapped;
    }
  }

  async *taxLots(platformAccountId: string): AsyncIterable<Fetched<TaxLotRecord>> {
    for await (const page of this.listing('/Portfolio/Assets/Verbose', { accountId: platformAccountId })) for (const raw of page) yield* mapVerboseAsset(raw);
  }

  async *analytics(): AsyncIterable<never> {
    throw unsupported('Orion offers no risk, attribution or benchmark analytics through this API');
  }

  async push(instruction: PushInstruction): Promise<PushReceipt> {
    const request = pushRequest(instruction);
    if ('rejected' in request) return request.rejected;
    const response = await this.client.request({ method: 'POST', path: request.path, body: request.body });
    if (response.status === 200 || response.status === 201) {
      const receipt = OrionOrderReceiptSchema.safeParse(response.body);
      if (!receipt.success) throw requestError('orion', 'PLATFORM_UNAVAILABLE', `POST ${request.path}: Orion accepted the instruction with an unreadable receipt`, instruction.clientRef);
      return { status: 'accepted', platformReference: receipt.data.id, acceptedAt: instantOf(receipt.data.createdDate) };
    }
    return { status: 'rejected', code: 'PUSH_REJECTED', message: refusal(response) };
  }

  private listing(path: string, query: Record<string, string | number | boolean | undefined>, onFirstPage?: (page: OffsetPage) => void): AsyncGenerator<readonly unknown[]> {
    const what = `GET ${path}`;
    return offsetPages(
      async (skip, top) => {
        const response = await this.get(path, { ...query, $top: top, $skip: skip });
        return { records: arrayBody(response, what), headers: response.headers };
      },
      this.pageSize,
      onFirstPage,
    );
  }

  private async get(path: string, query: Record<string, string | number | boolean | undefined>): Promise<PlatformResponse> {
    const response = await this.client.request({ path, query });
    if (response.status === 200) return response;
    if (response.status === 403) throw requestError('orion', 'AUTH_REVOKED', `GET ${path}: Orion refused access (403)`, path);
    // Any other refusal (an account this user cannot see, a filter Orion does not take) will not pass by retrying.
    throw requestError('orion', response.status >= 500 ? 'PLATFORM_UNAVAILABLE' : 'RECORD_INVALID', `GET ${path}: Orion answered ${response.status}: ${refusal(response)}`, path);
  }
}

function arrayBody(response: PlatformResponse, what: string): readonly unknown[] {
  if (Array.isArray(response.body)) return response.body;
  throw requestError('orion', 'PLATFORM_UNAVAILABLE', `${what}: Orion answered with something other than an array`, what);
}

/** Orion's own words for a refusal: the message and, for a 400, what was wrong with which field. */
function refusal(response: PlatformResponse): string {
  const body = OrionErrorSchema.safeParse(response.body);
  if (!body.success) return `HTTP ${response.status}`;
  const fields = Object.entries(body.data.ModelState ?? {}).map(([field, problems]) => `${field}: ${problems.join(', ')}`);
  return fields.length === 0 ? body.data.Message : `${body.data.Message} (${fields.join('; ')})`;
}

/** Orion writes UTC date-times with or without the zone; an unreadable one is replaced by now. */
function instantOf(dateTime: string): string {
  const at = Date.parse(/[zZ]|[+-]\d{2}:\d{2}$/.test(dateTime) ? dateTime : `${dateTime}Z`);
  return new Date(Number.isNaN(at) ? Date.now() : at).toISOString();
}

function changeNumberOf(cursor: string): number {
  const number = cursor.startsWith(CURSOR_PREFIX) ? cursor.slice(CURSOR_PREFIX.length) : '';
  if (!/^\d+$/.test(number)) throw requestError('orion', 'UNSUPPORTED', 'the transaction cursor was not written by the Orion adapter', 'cursor');
  return Number(number);
}

type PushRequest = { readonly path: string; readonly body: Record<string, unknown> } | { readonly rejected: PushReceipt };

/** The instruction in Orion's words; what Orion could not take as sent is refused here. */
function pushRequest(instruction: PushInstruction): PushRequest {
  const accountId = orionId(instruction.platformAccountId);
  switch (instruction.kind) {
    case 'trade': {
      const quantity = jsonNumber(instruction.quantity);
      const limitPrice = instruction.limitPrice === undefined ? undefined : jsonNumber(instruction.limitPrice);
      if (quantity === undefined || (instruction.limitPrice !== undefined && limitPrice === undefined)) return { rejected: tooPrecise(instruction.kind) };
      return {
        path: '/Trading/Orders',
        body: {
          accountId,
          clientReference: instruction.clientRef,
          action: instruction.side === 'BUY' ? 'Buy' : 'Sell',
          ...securityFields(instruction.security),
          quantity,
          orderType: instruction.orderType === 'MARKET' ? 'Market' : 'Limit',
          limitPrice,
        },
      };
    }
    case 'rebalance': {
      const targets = instruction.targets.map((target) => ({ ...securityFields(target.security), targetPercent: jsonNumber(target.weight.mul(100)) }));
      if (targets.some((target) => target.targetPercent === undefined)) return { rejected: tooPrecise(instruction.kind) };
      return { path: '/Trading/Rebalances', body: { accountId, clientReference: instruction.clientRef, targets } };
    }
    case 'manual_override': {
      const value = jsonNumber(instruction.value);
      if (value === undefined) return { rejected: tooPrecise(instruction.kind) };
      return {
        path: `/Portfolio/Assets/${encodeURIComponent(instruction.platformRecordId)}/Overrides`,
        body: { accountId, clientReference: instruction.clientRef, field: OVERRIDE_FIELDS[instruction.field], value, reason: instruction.reason },
      };
    }
  }
}

const OVERRIDE_FIELDS = { quantity: 'Shares', price: 'Price', costBasis: 'CostBasis' } as const;

function securityFields(security: SecurityRef): Record<string, string> {
  const fields: Record<string, string> = {};
  if (security.ticker) fields.ticker = security.ticker;
  if (security.cusip) fields.cusip = security.cusip;
  if (security.isin) fields.isin = security.isin;
  return fields;
}

/** Orion's ids are integers; one written as digits goes as a number. */
function orionId(id: string): number | string {
  return /^[1-9][0-9]{0,14}$/.test(id) ? Number(id) : id;
}

/** Orion takes numbers as JSON numbers: a value a double cannot carry exactly is not sent. */
function jsonNumber(value: Dec): number | undefined {
  const number = value.toNumber();
  return Number.isFinite(number) && new Dec(String(number)).eq(value) ? number : undefined;
}

function tooPrecise(kind: PushInstruction['kind']): PushReceipt {
  return { status: 'rejected', code: 'PUSH_REJECTED', message: `the ${kind} carries a number with more digits than Orion's JSON numbers keep exactly` };
}

function isAuthFailure(error: unknown): boolean {
  return error instanceof PlatformError && (error.syncError.code === 'AUTH_EXPIRED' || error.syncError.code === 'AUTH_REVOKED');
}

function unsupported(message: string): PlatformError {
  return requestError('orion', 'UNSUPPORTED', message, 'orion');
}
