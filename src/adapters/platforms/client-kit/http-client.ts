import {
  BrokenCircuitError,
  BulkheadRejectedError,
  ConsecutiveBreaker,
  TaskCancelledError,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  timeout,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import type { Platform } from '../../../domain/platforms/records.ts';
import type { SyncErrorCode } from '../../../domain/platforms/sync-error.ts';
import { PlatformError } from '../../../ports/platform-adapter.ts';
import { classifyTransportFailure, requestError } from './errors.ts';
import { TokenBucket } from './rate-limiter.ts';
import { parseRetryAfter } from './retry-after.ts';

export interface PlatformHttpClientOptions {
  readonly platform: Platform;
  /** The platform's API root; request paths are appended to it. */
  readonly baseUrl: string;
  /** Per attempt, from sending the request to the last byte of the answer. */
  readonly timeoutMs: number;
  /** `maxAttempts` counts the first attempt; delays grow exponentially with full jitter up to `maxDelayMs`. */
  readonly retry: { readonly maxAttempts: number; readonly initialDelayMs: number; readonly maxDelayMs: number; readonly maxRetryAfterMs?: number };
  /** Per (platform, account key): opens after this many consecutive failures, lets one request through after `halfOpenAfterMs`. */
  readonly breaker: { readonly consecutiveFailures: number; readonly halfOpenAfterMs: number };
  /** Requests in flight at once, and how many more may wait for a slot. */
  readonly bulkhead: { readonly limit: number; readonly queue: number };
  /**
   * The platform's limit per account key: at most `requests` start in any window of `perMs`, of
   * which `burst` (default a tenth) may start at once.
   */
  readonly rateLimit: { readonly requests: number; readonly perMs: number; readonly burst?: number };
  /** Headers the platform names its retry delay in (seconds or an HTTP date), first match wins. */
  readonly retryAfterHeaders: readonly string[];
  /** Sets the credentials on every attempt, so a retry after a refresh carries the new token. */
  readonly authorize?: (headers: Record<string, string>) => Promise<void>;
  /**
   * A 401 arrived: 'retry' once (after refreshing) or 'fail'. May throw a PlatformError of its own.
   * `sent` holds the headers of the refused attempt, so a late 401 for an old token is recognised.
   */
  readonly onUnauthorized?: (response: PlatformResponse, sent: { readonly headers: Readonly<Record<string, string>> }) => Promise<'retry' | 'fail'>;
  /** The account key used when a request names none. */
  readonly accountKey?: string;
  readonly logger?: Logger;
}

export interface PlatformRequest {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Appended to the base URL; may carry its own query string. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** A string or URLSearchParams is sent as is; anything else as JSON. */
  readonly body?: unknown;
  /** The Accept header (default application/json). */
  readonly accept?: string;
  /** How to read the answer: JSON when the content type says so (default), text, or bytes. */
  readonly responseType?: 'auto' | 'text' | 'bytes';
  /** false for a request that must not be sent twice (a push without an idempotency key). Default true. */
  readonly retry?: boolean;
  /** Whose breaker and rate limit the request counts against (default: the client's). */
  readonly accountKey?: string;
  readonly signal?: AbortSignal;
}

export interface PlatformResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON, text, or a Uint8Array (responseType 'bytes'). */
  readonly body: unknown;
}

interface SentResponse extends PlatformResponse {
  readonly sentHeaders: Readonly<Record<string, string>>;
}

/** One attempt that failed in a way worth retrying (or counting against the breaker). */
class AttemptFailure extends Error {
  constructor(
    readonly code: SyncErrorCode,
    readonly detail: string,
    readonly retryAfterMs: number | undefined,
    /** Rate limiting says nothing about the platform's health, so it does not trip the breaker. */
    readonly tripsBreaker: boolean,
  ) {
    super(detail);
  }
}

const isTransient = (error: unknown): boolean => error instanceof AttemptFailure || error instanceof TaskCancelledError;
const tripsBreaker = (error: unknown): boolean => error instanceof TaskCancelledError || (error instanceof AttemptFailure && error.tripsBreaker);

/**
 * Exponential backoff with full jitter. When the platform named a delay (retry-after, capped), that
 * delay is waited instead, plus a little jitter so that waiting clients do not return together.
 */
class RetryAfterBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  constructor(
    private readonly retry: PlatformHttpClientOptions['retry'],
    private readonly maxRetryAfterMs: number,
  ) {}

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    const error = 'error' in context.result ? context.result.error : undefined;
    const asked = error instanceof AttemptFailure ? error.retryAfterMs : undefined;
    const duration =
      asked === undefined
        ? Math.random() * Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (context.attempt - 1))
        : Math.min(asked, this.maxRetryAfterMs) + Math.random() * Math.min(asked, 250);
    return { duration, next: (following) => this.next(following) };
  }
}

interface AccountLane {
  readonly breaker: CircuitBreakerPolicy;
  readonly bucket: TokenBucket;
}

const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/**
 * HTTP to one platform through fetch and cockatiel: bulkhead → retry → rate limit and breaker (per
 * account key) → timeout per attempt. Answers other than 401, 429 and 5xx are returned to the caller
 * (an adapter reads a 404 or a push refusal itself); what cannot be recovered ends in a PlatformError.
 */
export class PlatformHttpClient {
  readonly platform: Platform;
  private readonly base: string;
  private readonly bulkheadPolicy: BulkheadPolicy;
  private readonly retryPolicy: RetryPolicy;
  private readonly timeoutPolicy: TimeoutPolicy;
  private readonly lanes = new Map<string, AccountLane>();
  private readonly retryAfterHeaders: readonly string[];
  private readonly maxRetryAfterMs: number;

  constructor(private readonly options: PlatformHttpClientOptions) {
    this.platform = options.platform;
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.retryAfterHeaders = options.retryAfterHeaders.map((name) => name.toLowerCase());
    this.maxRetryAfterMs = options.retry.maxRetryAfterMs ?? Math.max(DEFAULT_MAX_RETRY_AFTER_MS, options.retry.maxDelayMs);
    this.bulkheadPolicy = bulkhead(options.bulkhead.limit, options.bulkhead.queue);
    this.retryPolicy = retry(handleWhen(isTransient), {
      maxAttempts: Math.max(0, options.retry.maxAttempts - 1),
      backoff: new RetryAfterBackoff(options.retry, this.maxRetryAfterMs),
    });
    this.timeoutPolicy = timeout(options.timeoutMs, TimeoutStrategy.Aggressive);
    this.retryPolicy.onRetry((event) => {
      const error = 'error' in event ? event.error : undefined;
      options.logger?.warn(
        { platform: this.platform, attempt: event.attempt, delayMs: Math.round(event.delay), reason: error instanceof AttemptFailure ? error.code : 'TIMEOUT' },
        'platform request failed; retrying',
      );
    });
  }

  async request(request: PlatformRequest): Promise<PlatformResponse> {
    const first = await this.send(request);
    if (first.status !== 401) return { status: first.status, headers: first.headers, body: first.body };
    const decision = this.options.onUnauthorized ? await this.options.onUnauthorized(first, { headers: first.sentHeaders }) : 'fail';
    if (decision === 'fail') throw requestError(this.platform, 'AUTH_EXPIRED', `${describe(request)}: the platform refused the credentials (401) and they cannot be renewed`);
    const second = await this.send(request);
    if (second.status === 401) throw requestError(this.platform, 'AUTH_REVOKED', `${describe(request)}: the platform refused freshly renewed credentials (401); the connection must be authorized again`);
    return { status: second.status, headers: second.headers, body: second.body };
  }

  private lane(accountKey: string): AccountLane {
    let lane = this.lanes.get(accountKey);
    if (!lane) {
      lane = {
        breaker: circuitBreaker(handleWhen(tripsBreaker), {
          halfOpenAfter: this.options.breaker.halfOpenAfterMs,
          breaker: new ConsecutiveBreaker(this.options.breaker.consecutiveFailures),
        }),
        bucket: new TokenBucket(this.options.rateLimit),
      };
      this.lanes.set(accountKey, lane);
    }
    return lane;
  }

  private async send(request: PlatformRequest): Promise<SentResponse> {
    const lane = this.lane(request.accountKey ?? this.options.accountKey ?? 'default');
    const url = this.url(request);
    const attempt = async () => {
      // Waiting for the rate limit is not the platform being slow: it stays outside the timeout.
      await lane.bucket.take(request.signal);
      const headers = await this.headers(request);
      return lane.breaker.execute(() => this.timeoutPolicy.execute(({ signal }) => this.attempt(request, url, headers, signal), request.signal));
    };
    try {
      return await this.bulkheadPolicy.execute(() => (request.retry === false ? attempt() : this.retryPolicy.execute(attempt)), request.signal);
    } catch (error) {
      throw this.finalError(error, request);
    }
  }

  private url(request: PlatformRequest): string {
    let url = this.base + (request.path.startsWith('/') ? request.path : `/${request.path}`);
    if (request.query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(request.query)) if (value !== undefined) params.append(key, String(value));
      const query = params.toString();
      if (query) url += (url.includes('?') ? '&' : '?') + query;
    }
    return url;
  }

  /** Built per attempt and outside its timeout: authorizing may have to refresh the token first. */
  private async headers(request: PlatformRequest): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: request.accept ?? 'application/json', ...request.headers };
    if (request.body !== undefined && typeof request.body !== 'string' && !(request.body instanceof URLSearchParams)) headers['content-type'] ??= 'application/json';
    await this.options.authorize?.(headers);
    return headers;
  }

  private async attempt(request: PlatformRequest, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<SentResponse> {
    const body = request.body === undefined || typeof request.body === 'string' || request.body instanceof URLSearchParams ? request.body : JSON.stringify(request.body);
    let response: Response;
    try {
      response = await fetch(url, { method: request.method ?? 'GET', headers, body, signal });
    } catch (error) {
      throw this.transportFailure(error);
    }
    const status = response.status;
    if (status === 429) {
      await response.body?.cancel().catch(() => undefined);
      const retryAfterMs = this.retryAfter(response.headers);
      if (retryAfterMs !== undefined && retryAfterMs > this.maxRetryAfterMs) {
        // Waiting less than asked would only be refused again; the sync engine reschedules instead.
        throw requestError(this.platform, 'RATE_LIMITED', `${describe(request)}: rate limited; the platform asks to wait ${Math.ceil(retryAfterMs / 1000)} s`);
      }
      throw new AttemptFailure('RATE_LIMITED', 'rate limited (429)', retryAfterMs, false);
    }
    if (status >= 500 || status === 408) {
      await response.body?.cancel().catch(() => undefined);
      throw new AttemptFailure(status === 408 ? 'TIMEOUT' : 'PLATFORM_UNAVAILABLE', `answered ${status}`, this.retryAfter(response.headers), true);
    }
    try {
      return { status, headers: response.headers, body: await readBody(response, request.responseType ?? 'auto'), sentHeaders: headers };
    } catch (error) {
      if (error instanceof SyntaxError) throw requestError(this.platform, 'PLATFORM_UNAVAILABLE', `${describe(request)}: answered ${status} with a body that is not valid JSON`);
      throw this.transportFailure(error);
    }
  }

  private transportFailure(error: unknown): unknown {
    if (error instanceof PlatformError) return error;
    // fetch refuses to build a request (a bad URL, a header value with a line break) with a
    // TypeError that quotes the offending value, which may be a token: say only what was wrong.
    if (error instanceof TypeError && error.cause === undefined && error.message !== 'terminated') {
      return new Error(`${this.platform}: the request could not be built (invalid URL or header value)`);
    }
    const { code, detail } = classifyTransportFailure(error);
    return new AttemptFailure(code, detail, undefined, true);
  }

  private retryAfter(headers: Headers): number | undefined {
    for (const name of this.retryAfterHeaders) {
      const parsed = parseRetryAfter(headers.get(name), Date.now());
      if (parsed !== undefined) return parsed;
    }
    return undefined;
  }

  private finalError(error: unknown, request: PlatformRequest): unknown {
    if (error instanceof PlatformError) return error;
    const what = describe(request);
    const attempts = request.retry === false ? 1 : this.options.retry.maxAttempts;
    if (error instanceof AttemptFailure) return requestError(this.platform, error.code, `${what}: ${error.detail}; gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
    if (error instanceof TaskCancelledError) {
      if (request.signal?.aborted) return error;
      return requestError(this.platform, 'TIMEOUT', `${what}: no answer within ${this.options.timeoutMs} ms; gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
    }
    if (error instanceof BrokenCircuitError) {
      return requestError(this.platform, 'PLATFORM_UNAVAILABLE', `${what}: circuit open after ${this.options.breaker.consecutiveFailures} consecutive failures; not calling the platform for ${this.options.breaker.halfOpenAfterMs} ms`);
    }
    if (error instanceof BulkheadRejectedError) return requestError(this.platform, 'RATE_LIMITED', `${what}: too many requests already waiting for this platform`);
    return error;
  }
}

/** The method and path only: query strings may carry keys. */
function describe(request: PlatformRequest): string {
  const path = request.path.split('?')[0] ?? request.path;
  return `${request.method ?? 'GET'} ${path}`;
}

async function readBody(response: Response, type: 'auto' | 'text' | 'bytes'): Promise<unknown> {
  if (type === 'bytes') return new Uint8Array(await response.arrayBuffer());
  const text = await response.text();
  if (type === 'text') return text;
  const contentType = response.headers.get('content-type') ?? '';
  if (text !== '' && contentType.includes('json')) return JSON.parse(text);
  return text;
}
