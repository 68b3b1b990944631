import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CredentialVault } from '../../src/adapters/crypto/credential-vault.ts';
import {
  PlatformHttpClient,
  REFRESH_BEFORE_EXPIRY_MS,
  ROTATE_AFTER_MS,
  TokenManager,
  exchangeCode,
  parseRetryAfter,
  refreshTokens,
  startAuthorization,
  tokenAuthorization,
  type OAuthClientConfig,
  type PlatformHttpClientOptions,
} from '../../src/adapters/platforms/client-kit/index.ts';
import { PostgresCredentialStore } from '../../src/adapters/postgres/credential-store.ts';
import { PlatformError, type Credentials } from '../../src/ports/platform-adapter.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/** A small platform over real HTTP: each route misbehaves the way the test names it. */
interface TestPlatform {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly hits: Map<string, number[]>;
  /** Access tokens /auth accepts. */
  readonly validAccess: Set<string>;
  /** Refresh token → still usable; a used or revoked one maps to false. */
  readonly refreshTokens: Map<string, boolean>;
  readonly codes: Map<string, { challenge: string; redirectUri: string }>;
  refreshCalls: number;
  refusedRefreshes: number;
  healthy: boolean;
  inFlight: number;
  maxInFlight: number;
}

const CLIENT_ID = 'ledger-test';
const CLIENT_SECRET = `client-secret-${randomBytes(8).toString('hex')}`;

async function startTestPlatform(): Promise<TestPlatform> {
  const app = Fastify({ forceCloseConnections: true });
  await app.register(formbody);
  const platform: TestPlatform = {
    app,
    url: '',
    hits: new Map(),
    validAccess: new Set(),
    refreshTokens: new Map(),
    codes: new Map(),
    refreshCalls: 0,
    refusedRefreshes: 0,
    healthy: false,
    inFlight: 0,
    maxInFlight: 0,
  };
  const hit = (key: string) => {
    const list = platform.hits.get(key) ?? [];
    list.push(performance.now());
    platform.hits.set(key, list);
    return list.length;
  };
  const issue = () => {
    const accessToken = `at-${randomBytes(12).toString('hex')}`;
    const refreshToken = `rt-${randomBytes(12).toString('hex')}`;
    platform.validAccess.add(accessToken);
    platform.refreshTokens.set(refreshToken, true);
    return { access_token: accessToken, token_type: 'Bearer', expires_in: 3600, refresh_token: refreshToken };
  };

  app.get('/ok', async () => ({ ok: true }));
  app.get<{ Params: { key: string }; Querystring: { header: string; value: string; times: string } }>('/rate-limited/:key', async (request, reply) => {
    const n = hit(request.params.key);
    if (n <= Number(request.query.times)) return reply.code(429).header(request.query.header, request.query.value).send({ detail: 'slow down' });
    return { ok: true };
  });
  app.get<{ Params: { key: string } }>('/retry-at-date/:key', async (request, reply) => {
    if (hit(request.params.key) === 1) return reply.code(429).header('retry-after', new Date(Date.now() + 2000).toUTCString()).send({});
    return { ok: true };
  });
  app.get<{ Params: { key: string }; Querystring: { statuses: string } }>('/fail/:key', async (request, reply) => {
    const status = request.query.statuses.split(',')[hit(request.params.key) - 1];
    return status ? reply.code(Number(status)).send({ message: 'failing' }) : { ok: true };
  });
  app.get<{ Params: { key: string } }>('/outage/:key', async (request, reply) => {
    hit(request.params.key);
    return platform.healthy ? { ok: true } : reply.code(503).send({ message: 'down' });
  });
  app.get<{ Params: { key: string }; Querystring: { times: string } }>('/hang/:key', async (request) => {
    if (hit(request.params.key) <= Number(request.query.times)) await sleep(3000);
    return { ok: true };
  });
  app.get<{ Params: { key: string }; Querystring: { times: string } }>('/reset/:key', async (request, reply) => {
    if (hit(request.params.key) <= Number(request.query.times)) {
      reply.hijack();
      request.raw.socket.destroy();
      return;
    }
    return { ok: true };
  });
  app.get('/stamp', async () => {
    hit('stamp');
    return { ok: true };
  });
  app.get('/busy', async () => {
    platform.inFlight++;
    platform.maxInFlight = Math.max(platform.maxInFlight, platform.inFlight);
    await sleep(40);
    platform.inFlight--;
    return { ok: true };
  });
  app.get('/auth', async (request, reply) => {
    hit('auth');
    const token = request.headers.authorization?.replace(/^Bearer /, '');
    if (token && platform.validAccess.has(token)) return { ok: true };
    return reply.code(401).send({ message: 'the access token expired' });
  });
  app.get<{ Querystring: { redirect_uri: string; state: string; code_challenge: string } }>('/oauth/authorize', async (request, reply) => {
    const code = randomBytes(8).toString('hex');
    platform.codes.set(code, { challenge: request.query.code_challenge, redirectUri: request.query.redirect_uri });
    const back = new URL(request.query.redirect_uri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', request.query.state);
    return reply.redirect(back.toString());
  });
  app.post<{ Body: Record<string, string>; Querystring: { delayMs?: string } }>('/oauth/token', async (request, reply) => {
    // RFC 6749 2.3.1: id and secret are form-encoded before going into Basic.
    const basic = Buffer.from(request.headers.authorization?.replace(/^Basic /, '') ?? '', 'base64').toString();
    const [id, secret] = basic.split(':').map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    if (id !== CLIENT_ID || secret !== CLIENT_SECRET) return reply.code(401).send({ error: 'invalid_client' });
    const body = request.body;
    if (body.grant_type === 'authorization_code') {
      const code = platform.codes.get(body.code ?? '');
      platform.codes.delete(body.code ?? '');
      const challenge = createHash('sha256').update(body.code_verifier ?? '').digest('base64url');
      if (!code || code.challenge !== challenge || code.redirectUri !== body.redirect_uri) return reply.code(400).send({ error: 'invalid_grant' });
      return issue();
    }
    platform.refreshCalls++;
    if (request.query.delayMs) await sleep(Number(request.query.delayMs));
    const usable = platform.refreshTokens.get(body.refresh_token ?? '');
    if (!usable) {
      platform.refusedRefreshes++;
      return reply.code(400).send({ error: 'invalid_grant', error_description: 'refresh token used or revoked' });
    }
    // Single-use, as Orion's: spent on first use.
    platform.refreshTokens.set(body.refresh_token!, false);
    return issue();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return Object.assign(platform, { url: `http://127.0.0.1:${address.port}` });
}

let platform: TestPlatform;
let database: TestDatabase;
let store: PostgresCredentialStore;
const vaultKey = { id: 'k1', key: randomBytes(32) };

beforeAll(async () => {
  [platform, database] = await Promise.all([startTestPlatform(), createTestDatabase()]);
  store = new PostgresCredentialStore(database.pool, new CredentialVault([vaultKey]));
});
afterAll(async () => {
  await platform?.app.close();
  await database?.drop();
});
beforeEach(() => {
  platform.healthy = false;
});

function client(overrides: Partial<PlatformHttpClientOptions> = {}): PlatformHttpClient {
  return new PlatformHttpClient({
    platform: 'addepar',
    baseUrl: platform.url,
    timeoutMs: 1000,
    retry: { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100 },
    breaker: { consecutiveFailures: 10, halfOpenAfterMs: 300 },
    bulkhead: { limit: 8, queue: 1000 },
    rateLimit: { requests: 1000, perMs: 1000 },
    retryAfterHeaders: ['X-RateLimit-Retry-After', 'Retry-After'],
    ...overrides,
  });
}

async function failure(promise: Promise<unknown>): Promise<PlatformError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PlatformError) return error;
    throw error;
  }
  throw new Error('expected a PlatformError');
}

const key = () => randomBytes(6).toString('hex');
const hits = (k: string) => platform.hits.get(k) ?? [];

describe('retry-after values', () => {
  it('reads delta-seconds (decimals too) and HTTP dates, ignores garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter(' 0.25 ', now)).toBe(250);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('PlatformHttpClient over real HTTP', () => {
  it("waits as long as the platform's own retry header says, then recovers", async () => {
    const k = key();
    const response = await client().request({ path: `/rate-limited/${k}`, query: { header: 'X-RateLimit-Retry-After', value: '1', times: 1 } });
    expect(response).toMatchObject({ status: 200, body: { ok: true } });
    const [first, second] = hits(k);
    expect(second! - first!).toBeGreaterThanOrEqual(990);
    expect(second! - first!).toBeLessThan(1600);
  });

  it('honours a retry-after written as an HTTP date', async () => {
    const k = key();
    await client().request({ path: `/retry-at-date/${k}` });
    const [first, second] = hits(k);
    // The date has whole seconds: two seconds ahead is at least one second away.
    expect(second! - first!).toBeGreaterThanOrEqual(990);
  });

  it('gives up at once with RATE_LIMITED when the platform asks for longer than the cap; persistent 429 ends in RATE_LIMITED', async () => {
    const k = key();
    const long = await failure(client().request({ path: `/rate-limited/${k}`, query: { header: 'X-RateLimit-Retry-After', value: '900', times: 5 } }));
    expect(long.syncError).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect(long.message).toContain('asks to wait 900 s');
    expect(hits(k)).toHaveLength(1);

    const k2 = key();
    const persistent = await failure(client().request({ path: `/rate-limited/${k2}`, query: { header: 'Retry-After', value: '0.05', times: 10 } }));
    expect(persistent.syncError.code).toBe('RATE_LIMITED');
    expect(hits(k2)).toHaveLength(3);
  });

  it('retries 500 and 503 and recovers', async () => {
    const k = key();
    const response = await client().request({ path: `/fail/${k}`, query: { statuses: '500,503' } });
    expect(response.status).toBe(200);
    expect(hits(k)).toHaveLength(3);

    // A request that must not be sent twice is tried once.
    const once = key();
    const error = await failure(client().request({ path: `/fail/${once}`, query: { statuses: '503' }, retry: false }));
    expect(error.message).toMatch(/answered 503; gave up after 1 attempt$/);
    expect(hits(once)).toHaveLength(1);
  });

  it('returns other answers (404, 422) to the caller without retrying', async () => {
    const k = key();
    const response = await client().request({ path: `/fail/${k}`, query: { statuses: '422' } });
    expect(response).toMatchObject({ status: 422, body: { message: 'failing' } });
    expect(hits(k)).toHaveLength(1);
  });

  it('a persistent outage ends in PLATFORM_UNAVAILABLE; the breaker then opens for that account only, and half-opens later', async () => {
    const http = client({ breaker: { consecutiveFailures: 3, halfOpenAfterMs: 400 } });
    const k = key();
    const outage = await failure(http.request({ path: `/outage/${k}`, accountKey: 'acct-1' }));
    expect(outage.syncError).toMatchObject({ code: 'PLATFORM_UNAVAILABLE', retryable: true });
    expect(outage.message).toMatch(/answered 503; gave up after 3 attempts/);
    expect(hits(k)).toHaveLength(3);

    const open = await failure(http.request({ path: `/outage/${k}`, accountKey: 'acct-1' }));
    expect(open.syncError.code).toBe('PLATFORM_UNAVAILABLE');
    expect(open.message).toMatch(/circuit open after 3 consecutive failures/);
    expect(hits(k)).toHaveLength(3);
    expect((await http.request({ path: '/ok', accountKey: 'acct-2' })).status).toBe(200);

    platform.healthy = true;
    await sleep(450);
    expect((await http.request({ path: `/outage/${k}`, accountKey: 'acct-1' })).status).toBe(200);
    expect(hits(k)).toHaveLength(4);
  });

  it('times out each attempt: recovers from one slow answer, ends in TIMEOUT when every attempt is slow', async () => {
    const http = client({ timeoutMs: 200, retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 } });
    const once = key();
    expect((await http.request({ path: `/hang/${once}`, query: { times: 1 } })).status).toBe(200);
    expect(hits(once)).toHaveLength(2);

    const always = key();
    const started = performance.now();
    const error = await failure(http.request({ path: `/hang/${always}`, query: { times: 5 } }));
    expect(error.syncError).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(performance.now() - started).toBeLessThan(1500);
    expect(hits(always)).toHaveLength(2);
  });

  it('recovers from a reset connection; resets on every attempt end in CONNECTION_RESET', async () => {
    const once = key();
    expect((await client().request({ path: `/reset/${once}`, query: { times: 1 } })).status).toBe(200);
    const always = key();
    const error = await failure(client().request({ path: `/reset/${always}`, query: { times: 5 } }));
    expect(error.syncError).toMatchObject({ code: 'CONNECTION_RESET', retryable: true });
    expect(hits(always)).toHaveLength(3);
  });

  it('an unreachable platform is PLATFORM_UNAVAILABLE', async () => {
    const closed = Fastify();
    await closed.listen({ port: 0, host: '127.0.0.1' });
    const { port } = closed.server.address() as { port: number };
    await closed.close();
    const error = await failure(client({ baseUrl: `http://127.0.0.1:${port}` }).request({ path: '/ok' }));
    expect(error.syncError.code).toBe('PLATFORM_UNAVAILABLE');
  });

  it('keeps under the rate limit by queueing: never more than the limit in any window, nothing refused', async () => {
    platform.hits.delete('stamp');
    const http = client({ rateLimit: { requests: 10, perMs: 400 } });
    const responses = await Promise.all(Array.from({ length: 35 }, () => http.request({ path: '/stamp' })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const stamps = hits('stamp').sort((a, b) => a - b);
    // Arrival times carry some network jitter: windows a little shorter than the limit's.
    for (let i = 0; i + 10 < stamps.length; i++) expect(stamps[i + 10]! - stamps[i]!).toBeGreaterThan(350);

    // A larger burst starts that many at once and still keeps every window under the limit.
    platform.hits.delete('stamp');
    const bursty = client({ rateLimit: { requests: 10, perMs: 400, burst: 5 } });
    await Promise.all(Array.from({ length: 25 }, () => bursty.request({ path: '/stamp' })));
    const burstStamps = hits('stamp').sort((a, b) => a - b);
    expect(burstStamps[4]! - burstStamps[0]!).toBeLessThan(60);
    for (let i = 0; i + 10 < burstStamps.length; i++) expect(burstStamps[i + 10]! - burstStamps[i]!).toBeGreaterThan(350);
  });

  it('the bulkhead bounds requests in flight, and refuses beyond its queue', async () => {
    platform.maxInFlight = 0;
    const http = client({ bulkhead: { limit: 3, queue: 100 } });
    await Promise.all(Array.from({ length: 12 }, () => http.request({ path: '/busy' })));
    expect(platform.maxInFlight).toBe(3);

    const tight = client({ bulkhead: { limit: 1, queue: 1 } });
    const results = await Promise.allSettled(Array.from({ length: 3 }, () => tight.request({ path: '/busy' })));
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as PlatformError);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.syncError.code).toBe('RATE_LIMITED');
  });

  it('errors and logs never carry tokens or keys, whatever fetch reported', async () => {
    const secret = `key-${randomBytes(8).toString('hex')}`;
    const token = `tok-${randomBytes(8).toString('hex')}`;
    let logged = '';
    const logger = pino({ level: 'debug' }, new Writable({ write: (chunk, _encoding, done) => ((logged += String(chunk)), done()) }));
    const http = client({ logger, authorize: async (headers) => void (headers.authorization = `Session ${token}`) });
    const errors = [
      await failure(http.request({ path: `/reset/${key()}?api_key=${secret}`, query: { times: 5 } })),
      await failure(http.request({ path: `/outage/${key()}`, query: { api_key: secret } })),
      await failure(client({ baseUrl: 'http://127.0.0.1:9', logger }).request({ path: `/x?api_key=${secret}` })),
    ];
    const unbuildable = await client({ authorize: async (headers) => void (headers.authorization = `Bearer ${token}\nx-injected: 1`) })
      .request({ path: '/ok' })
      .catch((error: unknown) => error as Error);
    expect(unbuildable).toBeInstanceOf(Error);
    expect(`${String(unbuildable)} ${(unbuildable as Error).stack}`).not.toContain(token);
    expect(logged).toContain('retrying');
    for (const error of errors) {
      const seen = [error.message, String(error), JSON.stringify(error), error.stack ?? '', JSON.stringify(error.syncError)].join('\n');
      expect(seen).not.toContain(secret);
      expect(seen).not.toContain(token);
      expect(error.cause).toBeUndefined();
    }
    expect(logged).not.toContain(secret);
    expect(logged).not.toContain(token);
  });

  it('is cheap per request: sequential requests run far faster than the fetch benchmark needs', async () => {
    // 50,000 records/s in pages of 500 is 100 requests/s; the client must not be what limits it,
    // even on a loaded machine.
    const http = client({ rateLimit: { requests: 100_000, perMs: 1000 } });
    await http.request({ path: '/ok' });
    const n = 500;
    const started = performance.now();
    for (let i = 0; i < n; i++) await http.request({ path: '/ok' });
    const perSecond = n / ((performance.now() - started) / 1000);
    expect(perSecond).toBeGreaterThan(100);
  });
});

describe('OAuth helpers', () => {
  const oauthConfig = (overrides: Partial<OAuthClientConfig> = {}): OAuthClientConfig => ({
    platform: 'black_diamond',
    tokenEndpoint: `${platform.url}/oauth/token`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    ...overrides,
  });

  async function authorize(redirectUri: string) {
    const start = await startAuthorization({ authorizationEndpoint: `${platform.url}/oauth/authorize`, clientId: CLIENT_ID, redirectUri, scope: 'read' });
    const answer = await fetch(start.authorizationUrl, { redirect: 'manual' });
    return { start, callbackUrl: answer.headers.get('location')! };
  }

  it('runs the code flow with state and PKCE S256 into credentials', async () => {
    const redirectUri = 'http://127.0.0.1/callback';
    const { start, callbackUrl } = await authorize(redirectUri);
    const url = new URL(start.authorizationUrl);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('state')).toBe(start.state);
    const before = Date.now();
    const credentials = await exchangeCode(oauthConfig(), { callbackUrl, expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri });
    expect(platform.validAccess.has(credentials.accessToken)).toBe(true);
    expect(credentials.refreshToken).toMatch(/^rt-/);
    expect(credentials.accessTokenExpiresAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(credentials.grantedAt).toBeGreaterThanOrEqual(before);

    // The code is single-use.
    const reused = await failure(exchangeCode(oauthConfig(), { callbackUrl, expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri }));
    expect(reused.syncError.code).toBe('AUTH_REVOKED');
    expect(reused.message).toContain('invalid_grant');
  });

  it('refuses a callback with the wrong state, and a wrong verifier, without leaking the client secret', async () => {
    const redirectUri = 'http://127.0.0.1/callback';
    const { start, callbackUrl } = await authorize(redirectUri);
    const wrongState = await failure(exchangeCode(oauthConfig(), { callbackUrl, expectedState: 'forged', codeVerifier: start.codeVerifier, redirectUri }));
    expect(wrongState.message).toMatch(/state/);
    const wrongVerifier = await failure(exchangeCode(oauthConfig(), { callbackUrl, expectedState: start.state, codeVerifier: 'x'.repeat(43), redirectUri }));
    expect(wrongVerifier.syncError.code).toBe('AUTH_REVOKED');
    const badClient = await failure(exchangeCode(oauthConfig({ clientSecret: 'wrong-secret' }), { callbackUrl, expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri }));
    for (const error of [wrongState, wrongVerifier, badClient]) expect(JSON.stringify({ m: error.message, s: error.stack })).not.toContain(CLIENT_SECRET);
  });

  it('refreshes, keeping grantedAt, and a spent refresh token is refused as AUTH_REVOKED', async () => {
    const redirectUri = 'http://127.0.0.1/callback';
    const { start, callbackUrl } = await authorize(redirectUri);
    const first = await exchangeCode(oauthConfig(), { callbackUrl, expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri });
    const second = await refreshTokens(oauthConfig(), first);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.grantedAt).toBe(first.grantedAt);
    const spent = await failure(refreshTokens(oauthConfig(), first));
    expect(spent.syncError).toMatchObject({ code: 'AUTH_REVOKED', retryable: false });
    expect(spent.message).not.toContain(first.refreshToken!);
  });
});

describe('TokenManager with the Postgres credential store', () => {
  const oauthConfig = (delayMs?: number): OAuthClientConfig => ({
    platform: 'black_diamond',
    tokenEndpoint: `${platform.url}/oauth/token${delayMs ? `?delayMs=${delayMs}` : ''}`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
  });

  /** A connection whose stored access token the platform no longer accepts, with a usable refresh token. */
  async function connection(options: { expiresInMs?: number; grantedAt?: number } = {}): Promise<{ id: string; stored: Credentials }> {
    const refreshToken = `rt-${randomBytes(12).toString('hex')}`;
    platform.refreshTokens.set(refreshToken, true);
    const stored: Credentials = {
      accessToken: `at-stale-${randomBytes(6).toString('hex')}`,
      accessTokenExpiresAt: Date.now() + (options.expiresInMs ?? 3_600_000),
      refreshToken,
      grantedAt: options.grantedAt ?? Date.now(),
    };
    const id = `conn-${key()}`;
    await store.save(id, stored);
    return { id, stored };
  }

  const version = async (id: string) =>
    (await database.pool.query<{ version: number }>('SELECT version FROM connection_credentials WHERE connection_id = $1', [id])).rows[0]!.version;

  it('many concurrent callers of an expired token share one refresh, stored once', async () => {
    const { id } = await connection({ expiresInMs: 60_000 });
    const tokens = new TokenManager(store.holder(id), { platform: 'black_diamond', refresh: (c) => refreshTokens(oauthConfig(50), c) });
    const callsBefore = platform.refreshCalls;
    const results = await Promise.all(Array.from({ length: 50 }, () => tokens.accessToken()));
    expect(platform.refreshCalls - callsBefore).toBe(1);
    expect(new Set(results).size).toBe(1);
    expect((await store.load(id)).accessToken).toBe(results[0]);
    expect(await version(id)).toBe(2);
  });

  it('refreshes 5 minutes before expiry, not earlier, and rotates 30 days after grantedAt', async () => {
    let now = Date.now();
    const { id, stored } = await connection({ expiresInMs: REFRESH_BEFORE_EXPIRY_MS + 60_000 });
    let rotations = 0;
    const tokens = new TokenManager(store.holder(id), {
      platform: 'black_diamond',
      refresh: (c) => refreshTokens(oauthConfig(), c),
      rotate: async (c) => (rotations++, refreshTokens(oauthConfig(), c)),
      now: () => now,
    });
    expect(await tokens.accessToken()).toBe(stored.accessToken);
    now += 61_000;
    const refreshed = await tokens.credentials();
    expect(refreshed.accessToken).not.toBe(stored.accessToken);
    expect(refreshed.grantedAt).toBe(stored.grantedAt);
    expect(rotations).toBe(0);

    now = stored.grantedAt + ROTATE_AFTER_MS;
    const rotated = await tokens.credentials();
    expect(rotations).toBe(1);
    expect(rotated.grantedAt).toBe(now);
    expect((await store.load(id)).grantedAt).toBe(now);
  });

  it('a 401 refreshes once and retries once through the client', async () => {
    const { id, stored } = await connection();
    const tokens = new TokenManager(store.holder(id), { platform: 'black_diamond', refresh: (c) => refreshTokens(oauthConfig(), c) });
    const http = client({ ...tokenAuthorization(tokens) });
    const callsBefore = platform.refreshCalls;
    const authHits = hits('auth').length;
    const responses = await Promise.all(Array.from({ length: 8 }, () => http.request({ path: '/auth' })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(platform.refreshCalls - callsBefore).toBe(1);
    expect(hits('auth').length - authHits).toBe(16);
    expect((await store.load(id)).accessToken).not.toBe(stored.accessToken);
  });

  it('a revoked grant ends in AUTH_REVOKED, once, and the next call does not go back to the platform', async () => {
    const { id, stored } = await connection();
    platform.refreshTokens.set(stored.refreshToken!, false);
    const tokens = new TokenManager(store.holder(id), { platform: 'black_diamond', refresh: (c) => refreshTokens(oauthConfig(), c) });
    const http = client({ ...tokenAuthorization(tokens) });
    const callsBefore = platform.refreshCalls;
    const authHits = hits('auth').length;
    const error = await failure(http.request({ path: '/auth' }));
    expect(error.syncError).toMatchObject({ code: 'AUTH_REVOKED', retryable: false, severity: 'critical' });
    expect(platform.refreshCalls - callsBefore).toBe(1);
    expect(hits('auth').length - authHits).toBe(1);

    const again = await failure(http.request({ path: '/auth' }));
    expect(again.syncError.code).toBe('AUTH_REVOKED');
    expect(platform.refreshCalls - callsBefore).toBe(1);
    expect(await store.load(id)).toEqual(stored);
  });

  it('a token refused again right after a refresh is AUTH_REVOKED, not a loop', async () => {
    const { id } = await connection();
    const tokens = new TokenManager(store.holder(id), {
      platform: 'black_diamond',
      // The platform issues tokens that /auth then refuses.
      refresh: async (c) => {
        const next = await refreshTokens(oauthConfig(), c);
        platform.validAccess.delete(next.accessToken);
        return next;
      },
    });
    const authHits = hits('auth').length;
    const error = await failure(client({ ...tokenAuthorization(tokens) }).request({ path: '/auth' }));
    expect(error.syncError.code).toBe('AUTH_REVOKED');
    expect(hits('auth').length - authHits).toBe(2);
  });

  it('loses the compare-and-swap to another process: reloads and uses its credentials instead of its own', async () => {
    const { id } = await connection({ expiresInMs: 60_000 });
    // Refresh tokens here are not single-use, so both refreshes succeed and only the swap decides.
    const reusable = (delayMs?: number) => async (c: Credentials) => {
      const next = await refreshTokens(oauthConfig(delayMs), c);
      platform.refreshTokens.set(c.refreshToken!, true);
      return next;
    };
    const otherStore = new PostgresCredentialStore(database.pool, new CredentialVault([vaultKey]));
    const slow = new TokenManager(store.holder(id), { platform: 'black_diamond', refresh: reusable(300) });
    const fast = new TokenManager(otherStore.holder(id), { platform: 'black_diamond', refresh: reusable() });
    const slowToken = slow.accessToken();
    await sleep(50);
    const fastToken = await fast.accessToken();
    expect(await slowToken).toBe(fastToken);
    expect((await store.load(id)).accessToken).toBe(fastToken);
    expect(await version(id)).toBe(2);
  });

  it('two processes racing on a single-use refresh token both end with the stored credentials', async () => {
    const { id } = await connection({ expiresInMs: 60_000 });
    const a = new TokenManager(store.holder(id), { platform: 'black_diamond', refresh: (c) => refreshTokens(oauthConfig(20), c) });
    const b = new TokenManager(store.holder(id), { platform: 'black_diamond', refresh: (c) => refreshTokens(oauthConfig(20), c) });
    const results = await Promise.all([...Array.from({ length: 10 }, () => a.accessToken()), ...Array.from({ length: 10 }, () => b.accessToken())]);
    const stored = await store.load(id);
    expect(new Set(results)).toEqual(new Set([stored.accessToken]));
    expect(platform.refreshTokens.get(stored.refreshToken!)).toBe(true);
  });
});
