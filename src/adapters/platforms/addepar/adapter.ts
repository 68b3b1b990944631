import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { decimalText } from '../../../domain/money/decimal.ts';
import type { AccountRecord, AnalyticsRecord, DataType, HoldingRecord, PerformancePeriod, PerformanceRecord, TaxLotRecord, TransactionRecord } from '../../../domain/platforms/records.ts';
import {
  PlatformError,
  type AuthorizationCallback,
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
import { PlatformHttpClient, TokenManager, exchangeCode, refreshTokens, requestError, startAuthorization, type OAuthClientConfig, type PlatformHttpClientOptions, type PlatformResponse } from '../client-kit/index.ts';
import { ACCESS_TOKEN_LIFETIME_SECONDS, API_ROOT, AUTHORIZE_PATH, JSON_API, MAX_PAGE_LIMIT, RATE_LIMITS, REFRESH_TOKEN_LIFETIME_SECONDS, SANDBOX_FIRM_ID, SCOPE, TOKEN_PATH } from './defaults.ts';
import { ExportExpiredError, downloadTsv } from './export-download.ts';
import {
  RowSecurityCache,
  SecurityBook,
  mapAccount,
  mapAttribution,
  mapBenchmarkComparison,
  mapPerformance,
  mapPosition,
  mapRiskMetrics,
  mapTransaction,
  resourceId,
} from './mapping.ts';
import {
  ACCOUNT_MODEL_TYPE,
  COLUMNS,
  ErrorDocumentSchema,
  JobDocumentSchema,
  PageSchema,
  PortfolioQueryDocumentSchema,
  PortfolioRowSchema,
  TIME_PERIODS,
  TRANSACTION_EXPORT_JOB,
  TransactionQueryDocumentSchema,
  TransactionResourceSchema,
  type JobDocument,
} from './wire.ts';

export interface AddeparAdapterConfig {
  /** The firm's host, e.g. https://acme.addepar.com (the API is under /api). */
  readonly baseUrl: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly firmId?: string;
  /** Defaults: under the base URL's /api/public/oauth2/ (unconfirmed for the real platform). */
  readonly authorizationEndpoint?: string;
  readonly tokenEndpoint?: string;
  /** Multiplies the rate-limit windows the client keeps under (the sandbox takes the same setting). */
  readonly rateLimitScale?: number;
  /** Addepar allows 60 s per request. */
  readonly timeoutMs?: number;
  readonly retry?: PlatformHttpClientOptions['retry'];
  readonly breaker?: PlatformHttpClientOptions['breaker'];
  /** Polling of export jobs: first wait, longest wait, and how long to wait for a job at most. */
  readonly jobPolling?: { readonly initialMs: number; readonly maxMs: number; readonly giveUpAfterMs: number };
  /** The benchmark analytics compare against when the caller names none. */
  readonly defaultBenchmarkId?: string;
  readonly logger?: Logger;
  readonly now?: () => number;
}

const RETRY_AFTER_HEADER = 'X-RateLimit-Retry-After';
export const DEFAULT_BENCHMARK_ID = 'SP500';
const ALL_PERIODS: readonly PerformancePeriod[] = ['DAILY', 'WEEKLY', 'MONTHLY', 'YTD', '1Y', '3Y', '5Y', 'INCEPTION'];

/** Credentials onboarded from an API key and secret (Basic auth) rather than an OAuth grant. */
const isApiKey = (credentials: Credentials): boolean => credentials.apiKey !== undefined && credentials.apiSecret !== undefined && credentials.refreshToken === undefined;

export class AddeparAdapter implements PlatformAdapter {
  readonly platform = 'addepar' as const;
  readonly authMethod = 'oauth_code' as const;
  readonly capabilities: readonly DataType[] = ['accounts', 'holdings', 'transactions', 'performance', 'analytics'];
  readonly apiRoot: string;
  readonly oauth: OAuthClientConfig;
  readonly firmId: string;

  constructor(readonly config: AddeparAdapterConfig) {
    const base = config.baseUrl.replace(/\/+$/, '');
    this.apiRoot = base + API_ROOT;
    this.firmId = config.firmId ?? SANDBOX_FIRM_ID;
    this.oauth = {
      platform: 'addepar',
      tokenEndpoint: config.tokenEndpoint ?? this.apiRoot + TOKEN_PATH,
      clientId: config.clientId,
      ...(config.clientSecret === undefined ? {} : { clientSecret: config.clientSecret }),
      defaultAccessTokenLifetimeMs: ACCESS_TOKEN_LIFETIME_SECONDS * 1000,
      refreshTokenLifetimeMs: REFRESH_TOKEN_LIFETIME_SECONDS * 1000,
      ...(config.now === undefined ? {} : { now: config.now }),
    };
  }

  beginAuthorization(redirectUri: string): Promise<AuthorizationStart> {
    return startAuthorization({ authorizationEndpoint: this.config.authorizationEndpoint ?? this.apiRoot + AUTHORIZE_PATH, clientId: this.config.clientId, redirectUri, scope: SCOPE });
  }

  completeAuthorization(callback: AuthorizationCallback & { readonly redirectUri: string }): Promise<Credentials> {
    return exchangeCode(this.oauth, callback);
  }

  /** Addepar's alternative to OAuth: Basic key:secret. Checked with one small request before it is kept. */
  async onboardApiKey(apiKey: string, apiSecret: string): Promise<Credentials> {
    const now = (this.config.now ?? Date.now)();
    const credentials: Credentials = { accessToken: 'basic', accessTokenExpiresAt: Number.MAX_SAFE_INTEGER, grantedAt: now, apiKey, apiSecret };
    let current = credentials;
    let version = 1;
    const holder: CredentialHolder = {
      current: async () => current,
      replace: async (_previous, next) => {
        current = next;
        return ++version;
      },
    };
    const connection = this.open(holder) as AddeparConnection;
    await connection.probe();
    return credentials;
  }

  open(holder: CredentialHolder): PlatformConnection {
    return new AddeparConnection(this, holder);
  }

  parseWebhook(): WebhookNotice {
    throw requestError('addepar', 'UNSUPPORTED', 'Addepar sends no data-change webhooks', 'webhook');
  }
}

type Json = Record<string, unknown>;

class AddeparConnection implements PlatformConnection {
  private readonly tokens: TokenManager;
  private readonly client: PlatformHttpClient;
  private readonly pageLimit = MAX_PAGE_LIMIT;

  constructor(
    private readonly adapter: AddeparAdapter,
    holder: CredentialHolder,
  ) {
    const config = adapter.config;
    this.tokens = new TokenManager(holder, {
      platform: 'addepar',
      // An API key does not expire; "refreshing" it keeps it (rotation of keys is the firm's, not ours).
      refresh: async (credentials) => (isApiKey(credentials) ? credentials : refreshTokens(adapter.oauth, credentials)),
      ...(config.now === undefined ? {} : { now: config.now }),
    });
    const scale = config.rateLimitScale ?? 1;
    const window = RATE_LIMITS[0];
    this.client = new PlatformHttpClient({
      platform: 'addepar',
      baseUrl: adapter.apiRoot,
      timeoutMs: config.timeoutMs ?? 60_000,
      retry: config.retry ?? { maxAttempts: 5, initialDelayMs: 200, maxDelayMs: 10_000 },
      breaker: config.breaker ?? { consecutiveFailures: 5, halfOpenAfterMs: 30_000 },
      bulkhead: { limit: 4, queue: 100 },
      // The 15-minute limit shapes bursts; the 24-hour one is left to 429s and the sync schedule.
      rateLimit: { requests: window.requests, perMs: Math.max(1, Math.round(window.perMs * scale)) },
      retryAfterHeaders: [RETRY_AFTER_HEADER, 'Retry-After'],
      accountKey: adapter.firmId,
      authorize: (headers) => this.authorize(headers),
      onUnauthorized: async (_response, sent) => {
        const authorization = sent.headers['authorization'];
        if (authorization?.startsWith('Basic ')) throw requestError('addepar', 'AUTH_REVOKED', 'the platform refused the API key and secret (401)', 'authorization');
        this.tokens.invalidate(authorization?.slice('Bearer '.length));
        return 'retry';
      },
      ...(config.logger === undefined ? {} : { logger: config.logger }),
    });
  }

  private async authorize(headers: Record<string, string>): Promise<void> {
    const credentials = await this.tokens.credentials();
    headers['addepar-firm'] = this.adapter.firmId;
    headers['authorization'] = isApiKey(credentials)
      ? `Basic ${Buffer.from(`${credentials.apiKey}:${credentials.apiSecret}`).toString('base64')}`
      : `Bearer ${credentials.accessToken}`;
  }

  /** A cheap authenticated request: proves credentials work. */
  async probe(): Promise<void> {
    await this.get('/v1/entities', { 'page[limit]': 1 });
  }

  private async send(method: 'GET' | 'POST' | 'PATCH', path: string, options: { query?: Record<string, string | number>; body?: unknown } = {}): Promise<PlatformResponse> {
    return this.client.request({
      method,
      path,
      accept: JSON_API,
      ...(options.query === undefined ? {} : { query: options.query }),
      ...(options.body === undefined ? {} : { body: options.body, headers: { 'content-type': JSON_API } }),
    });
  }

  /** A successful JSON:API document, or a PlatformError carrying the platform's detail. */
  private async document(method: 'GET' | 'POST', path: string, options: { query?: Record<string, string | number>; body?: unknown } = {}): Promise<unknown> {
    const response = await this.send(method, path, options);
    if (response.status >= 200 && response.status < 300) return response.body;
    throw refusal(method, path, response);
  }

  private get(path: string, query?: Record<string, string | number>): Promise<unknown> {
    return this.document('GET', path, query === undefined ? {} : { query });
  }

  /** Cursor pages, the next one requested while the current one is being mapped. */
  private async *pages(path: string, query: Record<string, string | number>) {
    let next: Promise<unknown> | undefined = this.get(path, query);
    while (next !== undefined) {
      const parsed = PageSchema.safeParse(await next);
      if (!parsed.success) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `GET ${path}: the answer is not a JSON:API page`);
      const link = parsed.data.links.next;
      next = link ? this.get(link) : undefined;
      // Consumers may stop early; a prefetched page that then fails must not go unhandled.
      next?.catch(() => undefined);
      yield parsed.data;
    }
  }

  async *accounts(): AsyncIterable<Fetched<AccountRecord>> {
    const seen = new Set<string>();
    for await (const page of this.pages('/v1/entities', { 'filter[model_types]': ACCOUNT_MODEL_TYPE, 'page[limit]': this.pageLimit })) {
      for (const raw of page.data) {
        const id = resourceId(raw);
        if (seen.has(id)) continue;
        seen.add(id);
        const item = mapAccount(raw);
        if (item !== undefined) yield item;
      }
    }
  }

  async *holdings(platformAccountId: string): AsyncIterable<Fetched<HoldingRecord>> {
    const seen = new Set<string>();
    const book = new SecurityBook();
    for await (const page of this.pages('/v1/positions', { 'filter[owner_ids]': platformAccountId, include: 'owned', 'page[limit]': this.pageLimit })) {
      book.load(page.included);
      for (const raw of page.data) {
        const id = resourceId(raw);
        if (seen.has(id)) continue;
        seen.add(id);
        yield mapPosition(raw, book);
      }
    }
  }

  /**
   * A date range or a cursor goes to the transaction query (not paginated); what it refuses as too
   * large, and a whole history, goes through an export job. The cursor is the platform's
   * `data_as_of` at the start of the read: changes made while reading come again next time.
   */
  async *transactions(platformAccountId: string, query?: TransactionQuery): AsyncIterable<Fetched<TransactionRecord>> {
    const parameters: Json = { portfolio_type: 'ENTITY', portfolio_id: [platformAccountId] };
    if (query !== undefined && 'since' in query) parameters['modified_after'] = query.since;
    else {
      if (query?.from !== undefined) parameters['start_date'] = query.from;
      if (query?.to !== undefined) parameters['end_date'] = query.to;
    }
    const narrowed = Object.keys(parameters).length > 2;
    const cursor = narrowed ? yield* this.queryTransactions(parameters) : undefined;
    yield { kind: 'cursor', cursor: cursor ?? (yield* this.exportTransactions(parameters)) };
  }

  /** The query's transactions, then its data_as_of; undefined when the platform says to export instead. */
  private async *queryTransactions(parameters: Json): AsyncGenerator<Fetched<TransactionRecord>, string | undefined> {
    const path = '/v1/transactions/query';
    const response = await this.send('POST', path, { body: { data: { type: 'transaction_query', attributes: parameters } } });
    if (response.status === 400 && ErrorDocumentSchema.safeParse(response.body).data?.errors.some((error) => error.code === 'RESULT_TOO_LARGE')) return undefined;
    if (response.status !== 200) throw refusal('POST', path, response);
    const parsed = TransactionQueryDocumentSchema.safeParse(response.body);
    if (!parsed.success) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `POST ${path}: the answer is not a transaction query document`);
    const seen = new Set<string>();
    const securities = new RowSecurityCache();
    for (const raw of parsed.data.data) {
      const id = resourceId(raw);
      if (seen.has(id)) continue;
      seen.add(id);
      const resource = TransactionResourceSchema.safeParse(raw);
      const row = resource.success ? { ...resource.data.attributes, id: resource.data.id, owner_id: resource.data.relationships.owner.data?.id } : raw;
      yield mapTransaction(row, securities);
    }
    return parsed.data.meta.data_as_of;
  }

  /** Submits an export job, waits for it, streams its TSV; yields the transactions and returns data_as_of. */
  private async *exportTransactions(parameters: Json): AsyncGenerator<Fetched<TransactionRecord>, string> {
    for (let submission = 1; ; submission++) {
      const job = await this.submitJob(parameters);
      const dataAsOf = job.meta?.data_as_of;
      if (dataAsOf === undefined) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', 'POST /v1/jobs: the job names no data_as_of');
      await this.awaitJob(job.data.id);
      const securities = new RowSecurityCache();
      try {
        for await (const { header, rows } of downloadTsv({
          url: `${this.adapter.apiRoot}/v1/jobs/${encodeURIComponent(job.data.id)}/download`,
          authorize: (headers) => this.authorize(headers),
          onUnauthorized: (sent) => this.tokens.invalidate(sent?.startsWith('Bearer ') ? sent.slice(7) : undefined),
          timeoutMs: Math.max(this.adapter.config.timeoutMs ?? 60_000, 300_000),
          maxAttempts: this.adapter.config.retry?.maxAttempts ?? 5,
          initialDelayMs: this.adapter.config.retry?.initialDelayMs ?? 200,
          maxDelayMs: this.adapter.config.retry?.maxDelayMs ?? 10_000,
          retryAfterHeader: RETRY_AFTER_HEADER,
        })) {
          for (const cells of rows) {
            const row: Record<string, string | undefined> = {};
            for (let i = 0; i < header.length; i++) {
              const cell = cells[i];
              row[header[i]!] = cell === '' ? undefined : cell;
            }
            yield mapTransaction(row, securities);
          }
        }
        return dataAsOf;
      } catch (error) {
        // Results expire 24 h after the job was made: one new job, then give up.
        if (!(error instanceof ExportExpiredError) || submission >= 2) throw error instanceof ExportExpiredError ? requestError('addepar', 'PLATFORM_UNAVAILABLE', 'the export job expired twice before it could be read') : error;
      }
    }
  }

  private async submitJob(parameters: Json): Promise<JobDocument> {
    const body = { data: { type: 'jobs', attributes: { job_type: TRANSACTION_EXPORT_JOB, parameters: { ...parameters, output_type: 'TSV' } } } };
    const parsed = JobDocumentSchema.safeParse(await this.document('POST', '/v1/jobs', { body }));
    if (!parsed.success) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', 'POST /v1/jobs: the answer is not a job document');
    return parsed.data;
  }

  private async awaitJob(jobId: string): Promise<void> {
    const polling = this.adapter.config.jobPolling ?? { initialMs: 25, maxMs: 5_000, giveUpAfterMs: 30 * 60_000 };
    const deadline = Date.now() + polling.giveUpAfterMs;
    for (let wait = polling.initialMs; ; wait = Math.min(polling.maxMs, wait * 2)) {
      await sleep(wait);
      const parsed = JobDocumentSchema.safeParse(await this.get(`/v1/jobs/${encodeURIComponent(jobId)}`));
      if (!parsed.success) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', 'GET /v1/jobs/:id: the answer is not a job document');
      const { status } = parsed.data.data.attributes;
      if (status === 'Completed') return;
      if (status === 'Canceled' || status === 'Timed Out' || status === 'Failed') throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `export job ${jobId} ended ${status}`);
      if (Date.now() > deadline) throw requestError('addepar', 'TIMEOUT', `export job ${jobId} did not complete within ${Math.round(polling.giveUpAfterMs / 1000)} s`);
    }
  }

  private async portfolioQuery(accountId: string, columns: readonly Json[], groupings: readonly Json[]) {
    const path = '/v1/portfolio/query';
    const body = { data: { type: 'portfolio_query', attributes: { columns, groupings, portfolio_type: 'ENTITY', portfolio_id: [accountId] } } };
    const parsed = PortfolioQueryDocumentSchema.safeParse(await this.document('POST', path, { body }));
    if (!parsed.success) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `POST ${path}: the answer is not a portfolio query document`);
    return parsed.data;
  }

  /** Each child of a query, or a SyncError for one that is not a row. */
  private *rows<T>(accountId: string, children: readonly unknown[], map: (row: ReturnType<typeof PortfolioRowSchema.parse>) => Fetched<T>): Generator<Fetched<T>> {
    for (const [i, child] of children.entries()) {
      const row = PortfolioRowSchema.safeParse(child);
      if (row.success) yield map(row.data);
      else yield { kind: 'error', error: { recordId: `${accountId}:row:${i}`, code: 'RECORD_INVALID', message: `Addepar portfolio query row ${i} is not {name, columns}`, severity: 'error', retryable: false } };
    }
  }

  async *performance(platformAccountId: string, periods: readonly PerformancePeriod[] = ALL_PERIODS): AsyncIterable<Fetched<PerformanceRecord>> {
    const columns = ['time_period', COLUMNS.startDate, COLUMNS.endDate, COLUMNS.twr, COLUMNS.beginningValue, COLUMNS.endingValue, COLUMNS.netFlows, COLUMNS.currency].map((key) => ({ key }));
    const document = await this.portfolioQuery(platformAccountId, columns, [{ key: 'time_period', arguments: { periods: periods.map((period) => TIME_PERIODS[period]) } }]);
    yield* this.rows(platformAccountId, document.data.attributes.children, (row) => mapPerformance(platformAccountId, row));
  }

  async *taxLots(): AsyncIterable<Fetched<TaxLotRecord>> {
    throw requestError('addepar', 'UNSUPPORTED', 'Addepar exposes no tax lots through its API', 'tax_lots');
  }

  async *analytics(platformAccountId: string, options: { benchmarkId?: string } = {}): AsyncIterable<Fetched<AnalyticsRecord>> {
    const risk = await this.portfolioQuery(platformAccountId, [COLUMNS.volatility, COLUMNS.sharpe, COLUMNS.beta, COLUMNS.maxDrawdown].map((key) => ({ key })), []);
    yield mapRiskMetrics(platformAccountId, risk.data.attributes.total, risk.meta.end_date);

    const attribution = await this.portfolioQuery(platformAccountId, [COLUMNS.allocation, COLUMNS.selection, COLUMNS.totalEffect].map((key) => ({ key })), [{ key: 'asset_class' }]);
    const window = { startDate: attribution.meta.start_date, endDate: attribution.meta.end_date };
    yield* this.rows(platformAccountId, attribution.data.attributes.children, (row) => mapAttribution(platformAccountId, row, window));

    const benchmarkId = options.benchmarkId ?? this.adapter.config.defaultBenchmarkId ?? DEFAULT_BENCHMARK_ID;
    const versus = { benchmark_id: benchmarkId };
    const comparison = await this.portfolioQuery(
      platformAccountId,
      [{ key: 'time_period' }, { key: COLUMNS.twr }, { key: COLUMNS.benchmarkReturn, arguments: versus }, { key: COLUMNS.excessReturn, arguments: versus }],
      [{ key: 'time_period' }],
    );
    yield* this.rows(platformAccountId, comparison.data.attributes.children, (row) => mapBenchmarkComparison(platformAccountId, benchmarkId, row));
  }

  async push(instruction: PushInstruction): Promise<PushReceipt> {
    const { method, path, body } = pushRequest(instruction);
    const response = await this.send(method, path, { body });
    if (response.status === 200 || response.status === 201) {
      const document = response.body as { data?: { id?: unknown; attributes?: { created_at?: unknown; modified_at?: unknown } }; meta?: { override_id?: unknown } };
      const reference = document.meta?.override_id ?? document.data?.id;
      const at = document.data?.attributes?.created_at ?? document.data?.attributes?.modified_at;
      if (typeof reference !== 'string') throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `${method} ${path}: accepted without a reference`);
      return { status: 'accepted', platformReference: reference, acceptedAt: typeof at === 'string' ? at : new Date().toISOString() };
    }
    if (response.status === 401 || response.status === 403 || response.status === 429 || response.status >= 500) throw refusal(method, path, response);
    const errors = ErrorDocumentSchema.safeParse(response.body);
    if (!errors.success) return { status: 'rejected', code: String(response.status), message: `${method} ${path} answered ${response.status}` };
    const first = errors.data.errors[0]!;
    return { status: 'rejected', code: first.code ?? first.title, message: errors.data.errors.map((error) => error.detail ?? error.title).join('; ') };
  }
}

function securityDocument(security: SecurityRef): Json {
  return {
    ...(security.ticker === undefined ? {} : { ticker_symbol: security.ticker }),
    ...(security.cusip === undefined ? {} : { cusip: security.cusip }),
    ...(security.isin === undefined ? {} : { isin: security.isin }),
  };
}

/** The sandbox's write-back endpoints (Addepar publishes none for orders or rebalancing). */
function pushRequest(instruction: PushInstruction): { method: 'POST' | 'PATCH'; path: string; body: unknown } {
  switch (instruction.kind) {
    case 'trade':
      return {
        method: 'POST',
        path: '/v1/orders',
        body: {
          data: {
            type: 'orders',
            attributes: {
              external_id: instruction.clientRef,
              owner_id: instruction.platformAccountId,
              side: instruction.side,
              security: securityDocument(instruction.security),
              units: decimalText(instruction.quantity),
              order_type: instruction.orderType,
              ...(instruction.limitPrice === undefined ? {} : { limit_price: decimalText(instruction.limitPrice) }),
            },
          },
        },
      };
    case 'rebalance':
      return {
        method: 'POST',
        path: '/v1/rebalances',
        body: {
          data: {
            type: 'rebalances',
            attributes: {
              external_id: instruction.clientRef,
              owner_id: instruction.platformAccountId,
              targets: instruction.targets.map((target) => ({ security: securityDocument(target.security), weight: decimalText(target.weight) })),
            },
          },
        },
      };
    case 'manual_override': {
      const field = { quantity: 'units', price: 'price', costBasis: 'cost_basis' }[instruction.field];
      return {
        method: 'PATCH',
        path: `/v1/positions/${encodeURIComponent(instruction.platformRecordId)}`,
        body: {
          data: { type: 'positions', id: instruction.platformRecordId, attributes: { [field]: decimalText(instruction.value) } },
          meta: { reason: instruction.reason, external_id: instruction.clientRef },
        },
      };
    }
  }
}

/** A refusal as a PlatformError with the platform's own detail (JSON:API errors never carry our secrets). */
function refusal(method: string, path: string, response: PlatformResponse): PlatformError {
  const errors = ErrorDocumentSchema.safeParse(response.body);
  const detail = errors.success ? errors.data.errors.map((error) => error.detail ?? error.title).join('; ') : `answered ${response.status}`;
  const code = response.status === 401 || response.status === 403 ? 'AUTH_REVOKED' : response.status === 429 ? 'RATE_LIMITED' : response.status >= 500 ? 'PLATFORM_UNAVAILABLE' : 'RECORD_INVALID';
  return requestError('addepar', code, `${method} ${path.split('?')[0]} answered ${response.status}: ${detail}`);
}
