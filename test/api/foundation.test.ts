import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from '../support/api.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApi({ syncWorker: false });
}, 60_000);
afterAll(async () => api?.close());

describe('authentication', () => {
  it('refuses a request without a token, with an expired one and with a forged one', async () => {
    const missing = await api.request('POST', '/api/v1/portfolios', { body: { name: 'x', baseCurrency: 'USD' } });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(missing.body).toMatchObject({ type: '/problems/unauthorized', status: 401 });

    const expired = await api.request('POST', '/api/v1/portfolios', { token: await api.token('alice', ['owner'], '-1m'), body: { name: 'x', baseCurrency: 'USD' } });
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toBe('the token has expired');

    const forged = await new SignJWT({ roles: ['owner'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer('portfolio-sync-ledger')
      .setAudience('portfolio-sync-ledger-api')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('a-secret-that-is-not-the-service-one-at-all'));
    const refused = await api.request('POST', '/api/v1/portfolios', { token: forged, body: { name: 'x', baseCurrency: 'USD' } });
    expect(refused.status).toBe(401);
    expect(await api.head()).toBe(0);
  });
});

describe('commands', () => {
  it('creates a portfolio, answers its log position, and the read model shows it once the position is reached', async () => {
    const token = await api.token('alice');
    const created = await api.request('POST', '/api/v1/portfolios', { token, body: { name: 'Retirement', baseCurrency: 'EUR' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Retirement', baseCurrency: 'EUR', connections: [] });
    expect(created.headers.get('ledger-position')).toBe(created.body.position);
    const stored = await api.ledger.store.readStream(`portfolio-${created.body.portfolioId}`);
    expect(stored.map((event) => [event.type, event.data, event.metadata.actor, event.metadata.source])).toEqual([
      ['PortfolioCreated', { portfolioId: created.body.portfolioId, ownerId: 'alice', name: 'Retirement', baseCurrency: 'EUR' }, 'alice', 'api'],
    ]);
  });

  it('refuses bad input with every failing field named, and writes nothing', async () => {
    const token = await api.token('alice');
    const before = await api.head();
    const bad = await api.request('POST', '/api/v1/portfolios', { token, body: { name: '', baseCurrency: 'usd', extra: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.body.type).toBe('/problems/validation');
    expect(new Set(bad.body.errors.map((e: { field: string }) => e.field))).toEqual(new Set(['body.baseCurrency', 'body.extra', 'body.name']));
    const malformed = await api.request('POST', '/api/v1/portfolios', { token, body: '{"name":' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors[0].field).toBe('body');
    expect(await api.head()).toBe(before);
  });

  it('answers an over-long id and an unknown route as problems, not router errors', async () => {
    const token = await api.token('alice');
    const long = await api.request('GET', `/api/v1/portfolio-connections/${'a'.repeat(250)}`, { token });
    expect(long.status).toBe(400);
    expect(long.body.errors).toEqual([{ field: 'params.id', message: expect.stringContaining('200') }]);
    const unknown = await api.request('GET', '/api/v1/nothing-here', { token });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
  });

  it('replays the first answer to a repeated Idempotency-Key and starts nothing new', async () => {
    const token = await api.token('bob');
    const headers = { 'idempotency-key': 'create-retirement-1' };
    const first = await api.request('POST', '/api/v1/portfolios', { token, headers, body: { name: 'Once', baseCurrency: 'USD' } });
    const head = await api.head();
    const again = await api.request('POST', '/api/v1/portfolios', { token, headers, body: { name: 'Once', baseCurrency: 'USD' } });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotency-replayed')).toBe('true');
    // The stored answer is encrypted: answers can carry secrets (a connect session's token).
    const stored = await api.database.pool.query<{ response_body: string }>("SELECT response_body FROM idempotency_keys WHERE idempotency_key = 'create-retirement-1'");
    expect(stored.rows[0]!.response_body).not.toContain(first.body.portfolioId);
    expect(await api.head()).toBe(head);
    const different = await api.request('POST', '/api/v1/portfolios', { token, headers, body: { name: 'Twice', baseCurrency: 'USD' } });
    expect(different.status).toBe(422);
    expect(different.body.type).toBe('/problems/idempotency-key-reused');
    // Keys are per user: another user's same key is a request of its own.
    const other = await api.request('POST', '/api/v1/portfolios', { token: await api.token('carol'), headers, body: { name: 'Once', baseCurrency: 'USD' } });
    expect(other.status).toBe(201);
    expect(other.body.portfolioId).not.toBe(first.body.portfolioId);
  });
});

describe('documentation', () => {
  it('serves the OpenAPI document and the docs page', async () => {
    const spec = await api.request('GET', '/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toBe('3.1.0');
    expect(Object.keys(spec.body.paths)).toEqual(expect.arrayContaining(['/api/v1/portfolios', '/healthz', '/readyz']));
    const docs = await api.request('GET', '/docs/');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toContain('text/html');
  });
});
