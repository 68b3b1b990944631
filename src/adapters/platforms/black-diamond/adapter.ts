import { decimalText } from '../../../domain/money/decimal.ts';
import type {
  AccountRecord,
  AnalyticsRecord,
  DataType,
  HoldingRecord,
  PerformancePeriod,
  PerformanceRecord,
  TaxLotRecord,
  TransactionRecord,
} from '../../../domain/platforms/records.ts';
import type {
  AuthorizationCallback,
  AuthorizationStart,
  CredentialHolder,
  Credentials,
  Fetched,
  PlatformAdapter,
  PlatformConnection,
  PlatformError,
  PushInstruction,
  PushReceipt,
  TransactionQuery,
  WebhookNotice,
} from '../../../ports/platform-adapter.ts';
import {
  PlatformHttpClient,
  TokenManager,
  exchangeCode,
  refreshTokens,
  requestError,
  startAuthorization,
  type OAuthClientConfig,
  type PlatformHttpClientOptions,
  type PlatformResponse,
} from '../client-kit/index.ts';
import { WEBHOOK_SIGNATURE_HEADER, verifyWebhookSignature } from '../sandbox-kit/webhooks.ts';
import { RATE_LIMIT, REFRESH_TOKEN_LIFETIME_MS, SCOPE } from './defaults.ts';
import { mapAccount, mapHolding, mapPerformance, mapTransaction } from './mapping.ts';
import {
  BatchCreatedSchema,
  ErrorBodySchema,
  PERIOD_NAME_OF,
  PageSchema,
  PushAcceptedSchema,
  TOKEN_EXPIRED_MESSAGE,
  TransactionPageSchema,
  WebhookBodySchema,
  type HoldingDetailSearchRequest,
  type TransactionSearchRequest,
} from './wire.ts';
import { ZipFormatError, readZip, type ZipEntry } from './zip.ts';

export interface BlackDiamondConfig {
  /** The API host (https://api.blackdiamondwealthplatform.com in production). */
  readonly baseUrl: string;
  /** The identity host serving /connect/authorize and /connect/token (https://login.bdreporting.com); default: baseUrl. */
  readonly loginUrl?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Sent as Ocp-Apim-Subscription-Key on every API call. */
  readonly subscriptionKey: string;
  /** Verifies webhook deliveries. */
  readonly webhookSecret?: string;
  readonly scope?: string;
  /** Rows per page of holdings and transactions (the platform allows up to 10,000). */
  readonly pageSize?: number;
  readonly timeoutMs?: number;
  readonly retry?: PlatformHttpClientOptions['retry'];
  readonly breaker?: PlatformHttpClientOptions['breaker'];
  readonly rateLimit?: PlatformHttpClientOptions['rateLimit'];
  /** How long to wait between polls of a batch that is still being built. */
  readonly batchPollMs?: number;
  readonly now?: () => number;
}

const CAPABILITIES: readonly DataType[] = ['accounts', 'holdings', 'transactions', 'performance'];
const DEFAULT_PAGE_SIZE = 5000;
const BATCH_POLLS = 120;

/** Black Diamond: OAuth 2.0 code flow (state + PKCE), bearer token plus subscription key on every call. */
export class BlackDiamondAdapter implements PlatformAdapter {
  readonly platform = 'black_diamond' as const;
  readonly authMethod = 'oauth_code' as const;
  readonly capabilities = CAPABILITIES;
  private readonly oauth: OAuthClientConfig;
  private readonly loginUrl: string;

  constructor(private readonly config: BlackDiamondConfig) {
    this.loginUrl = (config.loginUrl ?? config.baseUrl).replace(/\/+$/, '');
    this.oauth = {
      platform: this.platform,
      tokenEndpoint: `${this.loginUrl}/connect/token`,
      clientId: config.clientId,
      clientSecret: config.clientSecret,
      refreshTokenLifetimeMs: REFRESH_TOKEN_LIFETIME_MS,
      ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
      ...(config.now === undefined ? {} : { now: config.now }),
    };
  }

  beginAuthorization(redirectUri: string): Promise<AuthorizationStart> {
    return startAuthorization({
      authorizationEndpoint: `${this.loginUrl}/connect/authorize`,
      clientId: this.config.clientId,
      redirectUri,
      scope: this.config.scope ?? SCOPE,
    });
  }

  completeAuthorization(callback: AuthorizationCallback & { readonly redirectUri: string }): Promise<Credentials> {
    return exchangeCode(this.oauth, callback);
  }

  onboardApiKey(): Promise<Credentials> {
    return Promise.reject(requestError(this.platform, 'UNSUPPORTED', 'Black Diamond connects through OAuth authorization, not an API key', 'onboarding'));
  }

  open(holder: CredentialHolder): PlatformConnection {
    // Rotation needs no second flow: every refresh returns a new refresh token, and the manager
    // counts a refresh made at 30 days as a new grant.
    const tokens = new TokenManager(holder, {
      platform: this.platform,
      refresh: (credentials) => refreshTokens(this.oauth, credentials),
      ...(this.config.now === undefined ? {} : { now: this.config.now }),
    });
    return new BlackDiamondConnection(this.client(tokens), this.config.pageSize ?? DEFAULT_PAGE_SIZE, this.config.batchPollMs ?? 1000, this.config.now ?? Date.now);
  }

  parseWebhook(rawBody: string, headers: Readonly<Record<string, string | undefined>>): WebhookNotice {
    if (this.config.webhookSecret === undefined) throw requestError(this.platform, 'UNSUPPORTED', 'no webhook secret is configured', 'webhook');
    const check = verifyWebhookSignature({
      body: rawBody,
      header: headerValue(headers, WEBHOOK_SIGNATURE_HEADER),
      secret: this.config.webhookSecret,
      ...(this.config.now === undefined ? {} : { now: this.config.now() }),
    });
    if (!check.ok) throw requestError(this.platform, 'RECORD_INVALID', `webhook refused: ${check.reason}`, 'webhook');
    const parsed = WebhookBodySchema.safeParse(parseJson(rawBody));
    if (!parsed.success) throw requestError(this.platform, 'RECORD_INVALID', 'webhook refused: the body is not a transactions notification', 'webhook');
    const body = parsed.data;
    return { deliveryId: body.id, platformAccountId: body.accountId, dataType: body.dataType, platformRecordIds: body.recordIds };
  }

  private client(tokens: TokenManager): PlatformHttpClient {
    const subscriptionKey = this.config.subscriptionKey;
    return new PlatformHttpClient({
      platform: this.platform,
      baseUrl: this.config.baseUrl,
      timeoutMs: this.config.timeoutMs ?? 30_000,
      retry: this.config.retry ?? { maxAttempts: 5, initialDelayMs: 250, maxDelayMs: 10_000 },
      breaker: this.config.breaker ?? { consecutiveFailures: 8, halfOpenAfterMs: 30_000 },
      bulkhead: { limit: 8, queue: 256 },
      // A tenth under the platform's limit, so our own bursts never meet its 429.
      rateLimit: this.config.rateLimit ?? { requests: Math.floor(RATE_LIMIT.requests * 0.9), perMs: RATE_LIMIT.perMs },
      retryAfterHeaders: ['retry-after'],
      authorize: async (headers) => {
        headers['authorization'] = `Bearer ${await tokens.accessToken()}`;
        headers['ocp-apim-subscription-key'] = subscriptionKey;
      },
      onUnauthorized: async (response, sent) => {
        // Only a 401 saying the token expired is worth a refresh; any other refusal is final.
        if (errorMessage(response) === TOKEN_EXPIRED_MESSAGE) {
          const value = sent.headers['authorization'];
          tokens.invalidate(value?.startsWith('Bearer ') ? value.slice('Bearer '.length) : undefined);
          return 'retry';
        }
        throw requestError(this.platform, 'AUTH_REVOKED', `the platform refused the connection (401): ${safeMessage(response)}; it must be authorized again`);
      },
    });
  }
}

interface Page {
  readonly rows: readonly unknown[];
  readonly next: string | null;
}

class BlackDiamondConnection implements PlatformConnection {
  constructor(
    private readonly http: PlatformHttpClient,
    private readonly pageSize: number,
    private readonly batchPollMs: number,
    private readonly now: () => number,
  ) {}

  /** Accounts come from the bulk batch (accounts files of 250 each), as Black Diamond recommends for whole-firm pulls. */
  async *accounts(): AsyncIterable<Fetched<AccountRecord>> {
    const created = await this.call({ method: 'POST', path: '/batchV5', body: { returnDate: mmddyyyy(this.now()), batchFiles: ['accounts'] } });
    const { batchId } = parseOrFail(BatchCreatedSchema, created.body, 'POST /batchV5');
    const files = accountFiles(await this.download(batchId));
    let position = 0;
    for (const file of files) {
      const rows = parseOrFail(PageSchema.shape.data, parseJson(file.content.toString('utf8')), `batch file ${file.name}`);
      for (const row of rows) yield mapAccount(row, `${file.name}[${position++}]`);
    }
  }

  async *holdings(platformAccountId: string, options: { asOf?: string } = {}): AsyncIterable<Fetched<HoldingRecord>> {
    const path = '/account/Query/HoldingDetailSearch';
    const pages = this.pages(path, platformAccountId, async (continuationToken) => {
      const body: HoldingDetailSearchRequest = {
        accountID: platformAccountId,
        asOf: options.asOf ?? isoDate(this.now()),
        onlyCurrentHoldings: true,
        limit: this.pageSize,
        include: { returnInfo: true, assets: true, costBasis: true },
        continuationToken,
      };
      const page = parseOrFail(PageSchema, (await this.call({ method: 'POST', path, body, accountKey: platformAccountId })).body, `POST ${path}`);
      return { rows: page.data, next: page.continuationToken };
    });
    const mapper = new PageMapper('holdingId', mapHolding);
    for await (const page of pages) for (const item of mapper.map(page.rows)) yield item;
  }

  async *transactions(platformAccountId: string, query: TransactionQuery = {}): AsyncIterable<Fetched<TransactionRecord>> {
    const path = '/account/Query/TransactionSearch';
    const filter = 'since' in query ? { modifiedSinceToken: cursorToken(query.since) } : { startDate: query.from, endDate: query.to };
    let changeToken: string | undefined;
    const pages = this.pages(path, platformAccountId, async (continuationToken) => {
      const body: TransactionSearchRequest = { accountID: platformAccountId, ...filter, limit: this.pageSize, continuationToken };
      const page = parseOrFail(TransactionPageSchema, (await this.call({ method: 'POST', path, body, accountKey: platformAccountId })).body, `POST ${path}`);
      // The token from the search's first page: changes made while paging come again next time rather than never.
      changeToken ??= page.changeToken;
      return { rows: page.data, next: page.continuationToken };
    });
    const mapper = new PageMapper('TransactionID', mapTransaction);
    for await (const page of pages) for (const item of mapper.map(page.rows)) yield item;
    if (changeToken !== undefined) yield { kind: 'cursor', cursor: changeToken };
  }

  async *performance(platformAccountId: string, periods?: readonly PerformancePeriod[]): AsyncIterable<Fetched<PerformanceRecord>> {
    const path = '/account/Query/PerformanceSearch';
    const body = { accountID: platformAccountId, ...(periods === undefined ? {} : { periods: periods.map((period) => PERIOD_NAME_OF[period]) }) };
    const page = parseOrFail(PageSchema.pick({ data: true }), (await this.call({ method: 'POST', path, body, accountKey: platformAccountId })).body, `POST ${path}`);
    let position = 0;
    for (const row of page.data) yield mapPerformance(row, `${path}[${position++}]`);
  }

  async *taxLots(): AsyncIterable<Fetched<TaxLotRecord>> {
    throw requestError('black_diamond', 'UNSUPPORTED', 'Black Diamond does not offer tax lots through this adapter', 'tax_lots');
  }

  async *analytics(): AsyncIterable<Fetched<AnalyticsRecord>> {
    throw requestError('black_diamond', 'UNSUPPORTED', 'Black Diamond offers no analytics (risk, attribution, benchmark) through this adapter', 'analytics');
  }

  async push(instruction: PushInstruction): Promise<PushReceipt> {
    const { path, body } = pushRequest(instruction);
    const response = await this.http.request({ method: 'POST', path, body, accountKey: instruction.platformAccountId });
    if (response.status === 200 || response.status === 201) {
      const accepted = parseOrFail(PushAcceptedSchema, response.body, `POST ${path}`);
      return { status: 'accepted', platformReference: accepted.id, acceptedAt: accepted.createdDate };
    }
    if (response.status !== 400 && response.status !== 404 && response.status !== 409 && response.status !== 422) throw unexpected('POST', path, response);
    const error = ErrorBodySchema.safeParse(response.body);
    return {
      status: 'rejected',
      code: error.success ? String(error.data.code) : `HTTP_${response.status}`,
      message: error.success ? error.data.message : `the platform answered ${response.status}`,
    };
  }

  /**
   * Pages one after another, the next requested as soon as the current one arrives, so mapping
   * and the network overlap. The continuation token is the platform's keyset position, so records
   * inserted while paging land in a later page instead of shifting earlier ones.
   */
  private async *pages(path: string, accountId: string, fetchPage: (continuationToken: string | null) => Promise<Page>): AsyncGenerator<Page> {
    let pending: Promise<Page> | undefined = fetchPage(null);
    while (pending) {
      const page: Page = await pending;
      pending = page.next === null ? undefined : fetchPage(page.next);
      // A prefetch the consumer never awaits (it stopped early) must not become an unhandled rejection.
      pending?.catch(() => undefined);
      if (page.rows.length === 0 && page.next !== null) throw requestError('black_diamond', 'PLATFORM_UNAVAILABLE', `POST ${path}: empty page with a continuation for account ${accountId}`);
      yield page;
    }
  }

  private async download(batchId: string): Promise<Buffer> {
    const path = `/batch/${encodeURIComponent(batchId)}`;
    for (let poll = 0; poll < BATCH_POLLS; poll++) {
      const response = await this.call({ method: 'GET', path, accept: 'application/zip', responseType: 'bytes' });
      if (response.status === 200) return Buffer.from(response.body as Uint8Array);
      await new Promise((resolve) => setTimeout(resolve, this.batchPollMs));
    }
    throw requestError('black_diamond', 'TIMEOUT', `GET /batch: batch ${batchId} was not ready after ${BATCH_POLLS} polls`);
  }

  /** A request whose answer must be a success; the client has already dealt with 401, 429 and 5xx. */
  private async call(request: Parameters<PlatformHttpClient['request']>[0]): Promise<PlatformResponse> {
    const response = await this.http.request(request);
    if (response.status < 300) return response;
    throw unexpected(request.method ?? 'GET', request.path, response);
  }
}

function pushRequest(instruction: PushInstruction): { path: string; body: unknown } {
  const security = (ref: { ticker?: string; cusip?: string; isin?: string }) => ({ ticker: ref.ticker, cusip: ref.cusip, isin: ref.isin });
  switch (instruction.kind) {
    case 'trade':
      return {
        path: '/tradeInstructions',
        body: {
          externalReference: instruction.clientRef,
          accountID: instruction.platformAccountId,
          action: instruction.side === 'BUY' ? 'Buy' : 'Sell',
          security: security(instruction.security),
          units: decimalText(instruction.quantity),
          orderType: instruction.orderType === 'MARKET' ? 'Market' : 'Limit',
          limitPrice: instruction.limitPrice === undefined ? undefined : decimalText(instruction.limitPrice),
        },
      };
    case 'rebalance':
      return {
        path: '/rebalanceRequests',
        body: {
          externalReference: instruction.clientRef,
          accountID: instruction.platformAccountId,
          targets: instruction.targets.map((target) => ({ security: security(target.security), weightPercent: decimalText(target.weight.times(100)) })),
        },
      };
    case 'manual_override':
      return {
        path: '/holdingOverrides',
        body: {
          externalReference: instruction.clientRef,
          accountID: instruction.platformAccountId,
          holdingId: instruction.platformRecordId,
          field: instruction.field === 'quantity' ? 'Units' : instruction.field === 'price' ? 'Price' : 'CostBasis',
          value: decimalText(instruction.value),
          reason: instruction.reason,
        },
      };
  }
}

/** A refusal other than 401 and 429 (which the client handles): the request itself was wrong, so retrying will not help. */
function unexpected(method: string, path: string, response: PlatformResponse): PlatformError {
  return requestError('black_diamond', response.status < 500 ? 'RECORD_INVALID' : 'PLATFORM_UNAVAILABLE', `${method} ${path}: the platform answered ${response.status}: ${safeMessage(response)}`);
}

/** The batch's account files (accounts_NNNN.json), inflated; a broken archive is the platform's failure. */
function accountFiles(archive: Buffer): ZipEntry[] {
  try {
    return [...readZip(archive)].filter((entry) => /^accounts_[0-9]+\.json$/.test(entry.name));
  } catch (error) {
    if (!(error instanceof ZipFormatError)) throw error;
    throw requestError('black_diamond', 'PLATFORM_UNAVAILABLE', `GET /batch: the download is not a readable zip (${error.message})`);
  }
}

/**
 * Maps a listing page by page; a row whose id came in the previous or the current page already is
 * dropped. Only two pages of ids are kept, so memory stays flat however large the account. A page
 * is mapped by a plain generator: the listing awaits pages, not rows.
 */
class PageMapper<T> {
  private previous = new Set<string>();
  private position = 0;

  constructor(
    private readonly idKey: string,
    private readonly mapRow: (row: unknown, position: string) => Fetched<T>,
  ) {}

  *map(rows: readonly unknown[]): Generator<Fetched<T>> {
    const current = new Set<string>();
    for (const row of rows) {
      const id = idOf(row, this.idKey);
      if (id !== undefined) {
        if (this.previous.has(id) || current.has(id)) continue;
        current.add(id);
      }
      yield this.mapRow(row, `row ${this.position++}`);
    }
    this.previous = current;
  }
}

function idOf(row: unknown, key: string): string | undefined {
  const value = typeof row === 'object' && row !== null ? (row as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function parseOrFail<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } }, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw requestError('black_diamond', 'PLATFORM_UNAVAILABLE', `${what}: the answer does not have the documented shape`);
  return parsed.data;
}

function headerValue(headers: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorMessage(response: PlatformResponse): string | undefined {
  const parsed = ErrorBodySchema.safeParse(response.body);
  return parsed.success ? parsed.data.message : undefined;
}

/** The platform's own error message, cut short; it never carries our tokens. */
function safeMessage(response: PlatformResponse): string {
  return (errorMessage(response) ?? 'no error message').slice(0, 200);
}

function cursorToken(cursor: string): string {
  if (!/^[0-9]+$/.test(cursor)) throw requestError('black_diamond', 'RECORD_INVALID', 'the transactions cursor is not one this adapter issued', 'transactions');
  return cursor;
}

function isoDate(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

function mmddyyyy(epochMs: number): string {
  const [year, month, day] = isoDate(epochMs).split('-');
  return `${month}-${day}-${year}`;
}

