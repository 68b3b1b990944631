import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KNOWN_SECURITIES,
  RateLimiter,
  SandboxWorld,
  WEBHOOK_SIGNATURE_HEADER,
  s256,
  securityAt,
  securityIndexOfTicker,
  startSandbox,
  verifyWebhookSignature,
  type FaultDialect,
  type RunningSandbox,
  type SandboxHolding,
  type SandboxPlugin,
} from '../../src/adapters/platforms/sandbox-kit/index.ts';
import { isValidCusip, isValidIsin } from '../../src/domain/securities/identifiers.ts';

const dec = (text: string) => new Decimal(text);
const first = <T>(items: Iterable<T>, count: number): T[] => {
  const result: T[] = [];
  for (const item of items) {
    if (result.length === count) break;
    result.push(item);
  }
  return result;
};

describe('sandbox world: deterministic generation', () => {
  it('gives the same data for the same seed and different data for another seed', () => {
    const build = (seed: string) => {
      const world = new SandboxWorld({ seed });
      const account = world.addAccount({ ownerId: 'owner-1', id: 'A1', holdings: 300, transactions: 1000 });
      return { account, holdings: [...world.holdings('A1')], transactions: [...world.transactions('A1')], performance: world.performance('A1') };
    };
    const one = build('seed-1');
    expect(build('seed-1')).toEqual(one);
    const other = build('seed-2');
    expect(other.holdings.map((h) => h.quantity)).not.toEqual(one.holdings.map((h) => h.quantity));
    expect(other.transactions.map((t) => t.amount)).not.toEqual(one.transactions.map((t) => t.amount));
    expect(other.account.openedOn === one.account.openedOn && other.account.number === one.account.number).toBe(false);
  });

  it('generates any record on its own: a page read alone equals the same slice of the whole', () => {
    const world = new SandboxWorld({ seed: 'paging' });
    world.addAccount({ ownerId: 'o', id: 'P', holdings: 500, transactions: 2000 });
    const all = [...world.holdings('P')];
    expect([...world.holdings('P', { offset: 120, limit: 30 })]).toEqual(all.slice(120, 150));
    expect([...world.holdings('P', { afterId: all[199]!.id, limit: 5 })]).toEqual(all.slice(200, 205));
    const transactions = [...world.transactions('P')];
    expect([...world.transactions('P', { offset: 1500, limit: 10 })]).toEqual(transactions.slice(1500, 1510));
    expect(transactions.map((t) => t.seq)).toEqual(transactions.map((_, i) => i + 1));
    // Trade dates never decrease, so a date range is a contiguous slice.
    const from = transactions[400]!.tradeDate;
    const to = transactions[900]!.tradeDate;
    const inRange = transactions.filter((t) => t.tradeDate >= from && t.tradeDate <= to);
    expect([...world.transactions('P', { from, to })]).toEqual(inRange);
    expect(world.transactionsCount('P', { from, to })).toBe(inRange.length);
    expect(() => [...world.holdings('P', { afterId: 'nonsense' })]).toThrow(/afterId/);
  });

  it('gives securities valid CUSIP and ISIN check digits, unique identifiers and tickers that resolve back', () => {
    const cusips = new Set<string>();
    const tickers = new Set<string>();
    const indexes = [...Array.from({ length: 20_000 }, (_, i) => i), ...Array.from({ length: 2000 }, (_, i) => 500_000 + i * 4999)];
    const currencies = new Set<string>();
    for (const index of indexes) {
      const security = securityAt(index);
      expect(isValidCusip(security.cusip), `${security.ticker} ${security.cusip}`).toBe(true);
      expect(isValidIsin(security.isin), `${security.ticker} ${security.isin}`).toBe(true);
      expect(security.ticker).toMatch(/^[A-Z0-9][A-Z0-9.\-/ ]{0,19}$/);
      expect(securityIndexOfTicker(security.ticker)).toBe(index);
      cusips.add(security.cusip);
      tickers.add(security.ticker);
      currencies.add(security.currency);
    }
    expect(cusips.size).toBe(indexes.length);
    expect(tickers.size).toBe(indexes.length);
    expect([...currencies].sort()).toEqual(['CAD', 'CHF', 'EUR', 'GBP', 'JPY', 'USD']);
    expect(securityAt(0).ticker).toBe('AAPL');
    expect(securityIndexOfTicker('NOPE1')).toBeUndefined();
  });

  it('values holdings exactly: market value is quantity × price rounded half-up to the currency minor unit', () => {
    const world = new SandboxWorld({ seed: 'values' });
    world.addAccount({ ownerId: 'o', id: 'V', holdings: 2000, transactions: 0 });
    for (const holding of world.holdings('V')) {
      const places = holding.currency === 'JPY' ? 0 : 2;
      expect(holding.marketValue).toBe(dec(holding.quantity).mul(holding.price).toFixed(places, Decimal.ROUND_HALF_UP));
      expect(dec(holding.costBasis).gt(0)).toBe(true);
    }
  });

  it('splits each holding into tax lots that sum exactly to its quantity and cost basis', () => {
    const world = new SandboxWorld({ seed: 'lots' });
    world.addAccount({ ownerId: 'o', id: 'L', holdings: 400, transactions: 0 });
    const lotsByHolding = new Map<string, { quantity: Decimal; cost: Decimal; count: number }>();
    for (const lot of world.taxLots('L')) {
      const sum = lotsByHolding.get(lot.holdingId) ?? { quantity: dec('0'), cost: dec('0'), count: 0 };
      lotsByHolding.set(lot.holdingId, { quantity: sum.quantity.plus(lot.quantity), cost: sum.cost.plus(lot.costBasis), count: sum.count + 1 });
      expect(dec(lot.quantity).gt(0)).toBe(true);
      expect(dec(lot.costBasis).gte(0)).toBe(true);
      expect(lot.acquiredOn <= world.asOf).toBe(true);
    }
    for (const holding of world.holdings('L')) {
      const sum = lotsByHolding.get(holding.id)!;
      expect(sum.quantity.eq(holding.quantity), holding.id).toBe(true);
      expect(sum.cost.eq(holding.costBasis), holding.id).toBe(true);
    }
    const one = [...world.holdings('L', { offset: 7, limit: 1 })][0]!;
    expect([...world.taxLots('L', one.id)].every((lot) => lot.holdingId === one.id)).toBe(true);
  });

  it('keeps performance periods, attribution and benchmark comparisons consistent', () => {
    const world = new SandboxWorld({ seed: 'perf' });
    world.addAccount({ ownerId: 'o', id: 'F', holdings: 50, transactions: 10 });
    const performance = world.performance('F');
    expect(performance.map((p) => p.period)).toEqual(expect.arrayContaining(['DAILY', 'WEEKLY', 'MONTHLY', 'YTD', '1Y', 'INCEPTION']));
    const value = world.accountValue('F');
    for (const row of performance) {
      expect(row.endingValue).toBe(value);
      expect(row.endDate).toBe(world.asOf);
      expect(row.startDate < row.endDate).toBe(true);
      const implied = dec(row.beginningValue).mul(dec(row.returnRate).plus(1)).plus(row.netFlows);
      expect(implied.minus(row.endingValue).abs().lte('0.02'), row.period).toBe(true);
    }
    for (const row of world.attribution('F')) expect(dec(row.allocationEffect).plus(row.selectionEffect).eq(row.totalEffect)).toBe(true);
    const comparison = world.benchmarkComparison('F', 'SP500');
    expect(comparison.map((c) => c.period)).toEqual(performance.map((p) => p.period));
    comparison.forEach((c, i) => {
      expect(c.portfolioReturn).toBe(performance[i]!.returnRate);
      expect(dec(c.portfolioReturn).minus(c.benchmarkReturn).eq(c.excessReturn)).toBe(true);
    });
    const risk = world.riskMetrics('F');
    expect(dec(risk.volatility).gt(0) && dec(risk.maxDrawdown).lt(0)).toBe(true);
  });

  it('streams a 50,000-holding, 200,000-transaction account without holding it in memory', () => {
    const world = new SandboxWorld({ seed: 'big' });
    world.addAccount({ ownerId: 'o', id: 'BIG', holdings: 50_000, transactions: 200_000 });
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let count = 0;
    const started = performance.now();
    for (const holding of world.holdings('BIG')) {
      count++;
      if (holding.seq % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    for (const transaction of world.transactions('BIG')) {
      count++;
      if (transaction.seq % 20_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    const seconds = (performance.now() - started) / 1000;
    expect(count).toBe(250_000);
    expect(world.holdingsCount('BIG')).toBe(50_000);
    expect(world.transactionsCount('BIG')).toBe(200_000);
    expect((peak - before) / 1_048_576).toBeLessThan(100);
    console.info(`sandbox world: ${Math.round(count / seconds)} records/s generated`);
  });
});

describe('sandbox world: mutations between syncs', () => {
  it('buys into a held security, buys a new one at the end, sells out, and logs each trade as the newest transaction', () => {
    const world = new SandboxWorld({ seed: 'trades' });
    world.addAccount({ ownerId: 'o', id: 'T', holdings: 10, transactions: 50 });
    const held = [...world.holdings('T')][3]!;
    const before = world.changeSeq();
    const buy = world.buy('T', { ticker: held.security.ticker, quantity: '10', price: '12.34' });
    expect(buy).toMatchObject({ type: 'BUY', seq: 51, amount: '-123.40', quantity: '10', price: '12.34', status: 'COMPLETED' });
    expect(buy.modifiedSeq).toBeGreaterThan(before);
    expect(world.holding('T', held.id)!.quantity).toBe(dec(held.quantity).plus(10).toFixed());
    expect(world.holding('T', held.id)!.costBasis).toBe(dec(held.costBasis).plus('123.40').toFixed(2));

    const fresh = Array.from({ length: 50 }, (_, i) => securityAt(KNOWN_SECURITIES + 700 + i)).find((security) => security.currency === 'USD')!;
    world.buy('T', { securityIndex: fresh.index, quantity: '5', price: '20' });
    const last = [...world.holdings('T')].at(-1)!;
    expect(last).toMatchObject({ seq: 11, quantity: '5', costBasis: '100.00' });
    expect(last.security.ticker).toBe(fresh.ticker);
    expect(world.holdingsCount('T')).toBe(11);

    const sold = world.sell('T', { ticker: held.security.ticker, quantity: world.holding('T', held.id)!.quantity, price: '13' });
    expect(sold).toMatchObject({ type: 'SELL', seq: 53 });
    expect(dec(sold.amount).gt(0)).toBe(true);
    expect(world.holding('T', held.id)).toBeUndefined();
    expect(world.holdingsCount('T')).toBe(10);
    expect([...world.holdings('T')].map((h) => h.id)).not.toContain(held.id);
    expect([...world.holdings('T', { offset: 3, limit: 1 })][0]!.seq).toBe(5);
    expect(() => world.sell('T', { ticker: held.security.ticker, quantity: '1', price: '1' })).toThrow(/holds no/);
    expect(world.transactionsCount('T')).toBe(53);
  });

  it('moves a price and every holding of the security follows', () => {
    const world = new SandboxWorld({ seed: 'prices' });
    world.addAccount({ ownerId: 'o', id: 'M', holdings: 5, transactions: 200 });
    const holding = [...world.holdings('M')][0]!;
    const history = [...world.transactions('M')];
    const before = world.changeSeq();
    world.movePrice(holding.security.ticker, '-10');
    expect(world.changeSeq()).toBeGreaterThan(before);
    const moved = world.holding('M', holding.id)!;
    expect(moved.price).toBe(dec(holding.price).mul('0.9').toFixed(2, Decimal.ROUND_HALF_UP));
    expect(moved.marketValue).toBe(dec(moved.quantity).mul(moved.price).toFixed(2, Decimal.ROUND_HALF_UP));
    // What was paid does not change with today's price.
    expect(moved.costBasis).toBe(holding.costBasis);
    expect([...world.transactions('M')]).toEqual(history);
  });

  it('cancels and amends transactions, bumping modifiedSeq so incremental reads find them', () => {
    const world = new SandboxWorld({ seed: 'amend' });
    world.addAccount({ ownerId: 'o', id: 'C', holdings: 20, transactions: 300 });
    const cursor = world.changeSeq();
    expect([...world.transactions('C', { modifiedAfter: cursor })]).toEqual([]);
    const all = [...world.transactions('C')];
    const trade = all.find((t) => t.type === 'BUY')!;
    const cancelled = world.cancelTransaction('C', all[10]!.id);
    expect(cancelled.status).toBe('CANCELLED');
    const amended = world.amendTransaction('C', trade.id, { quantity: '3', price: '10.50' });
    expect(amended).toMatchObject({ quantity: '3', price: '10.5', amount: '-31.50' });
    const inserted = world.insertTransaction('C');
    expect(inserted.seq).toBe(301);
    expect(inserted.tradeDate).toBe(world.asOf);
    const changed = [...world.transactions('C', { modifiedAfter: cursor })];
    expect(changed.map((t) => t.id).sort()).toEqual([cancelled.id, amended.id, inserted.id].sort());
    expect(changed.map((t) => t.seq)).toEqual([...changed.map((t) => t.seq)].sort((a, b) => a - b));
    expect(world.transactionsCount('C', { modifiedAfter: amended.modifiedSeq })).toBe(1);
    expect(world.transaction('C', all[10]!.id)!.status).toBe('CANCELLED');
    expect(() => world.cancelTransaction('C', all[10]!.id)).toThrow(/already cancelled/);
    const holding = world.insertHolding('C');
    expect(holding.seq).toBe(21);
    expect(new Set([...world.holdings('C')].map((h) => h.security.index)).size).toBe(21);
    world.closeAccount('C');
    expect(world.account('C')!.status).toBe('closed');
  });
});

const dialect: FaultDialect = { retryAfterHeader: 'X-Test-Retry-After', errorBody: (status, message) => ({ errors: [{ status: String(status), detail: message }] }) };
const CLIENT = { clientId: 'kit-client', clientSecret: 'kit-secret-value', redirectUris: ['http://127.0.0.1:9/callback'] };

/** A minimal platform: one protected listing that pages holdings and reports any page fault it took. */
const testPlatform: SandboxPlugin = (app, { world, tokens, faults }) => {
  app.get('/v1/accounts/:accountId/holdings', async (request, reply) => {
    const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
    const verdict = tokens.verifyAccessToken(token);
    if (typeof verdict === 'string') return reply.code(401).send(dialect.errorBody(401, `token ${verdict}`));
    const { accountId } = request.params as { accountId: string };
    return { pageFault: faults.takePageFault(request.url) ?? null, owner: verdict.ownerId, data: first(world.holdings(accountId), 5) };
  });
};

async function form(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString() });
  const text = await response.text();
  return { status: response.status, location: response.headers.get('location'), body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text };
}

describe('sandbox over HTTP', () => {
  let sandbox: RunningSandbox;
  const basic = `Basic ${Buffer.from(`${CLIENT.clientId}:${CLIENT.clientSecret}`).toString('base64')}`;

  beforeAll(async () => {
    sandbox = await startSandbox(testPlatform, {
      seed: 'http',
      dialect,
      oauth: { clients: [CLIENT], tokenPath: '/oauth/token' },
      tokenLifetimes: { rotateRefreshTokens: true },
    });
    sandbox.world.addAccount({ ownerId: 'alice', id: 'ACC1', holdings: 30, transactions: 100 });
  });
  afterAll(async () => sandbox.close());

  async function authorize(verifier: string, extra: Record<string, string> = {}) {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: CLIENT.clientId,
      redirect_uri: CLIENT.redirectUris[0]!,
      state: 'state-123',
      code_challenge: s256(verifier),
      code_challenge_method: 'S256',
      scope: 'read',
      ...extra,
    });
    const consent = await fetch(`${sandbox.url}/oauth/authorize?${query}`, { redirect: 'manual' });
    expect(consent.status).toBe(200);
    const html = await consent.text();
    expect(html).toContain('<form method="post"');
    const approved = await form(`${sandbox.url}/oauth/authorize`, { ...Object.fromEntries(query), user: 'alice', decision: 'approve' });
    expect(approved.status).toBe(302);
    const callback = new URL(approved.location!);
    expect(callback.searchParams.get('state')).toBe('state-123');
    return callback.searchParams.get('code')!;
  }

  const exchange = (code: string, verifier: string, redirectUri = CLIENT.redirectUris[0]!) =>
    form(`${sandbox.url}/oauth/token`, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, { authorization: basic });
  const refresh = (refreshToken: string) => form(`${sandbox.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: basic });
  const holdings = (token: string) => fetch(`${sandbox.url}/v1/accounts/ACC1/holdings`, { headers: { authorization: `Bearer ${token}` } });

  it('runs the code flow with PKCE: a wrong verifier and a reused code are refused, tokens work', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const wrong = await exchange(await authorize(verifier), randomBytes(32).toString('base64url'));
    expect(wrong).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const code = await authorize(verifier);
    expect((await exchange(code, verifier, 'http://127.0.0.1:9/elsewhere')).status).toBe(400);
    const code2 = await authorize(verifier);
    const granted = await exchange(code2, verifier);
    expect(granted.status).toBe(200);
    const accessToken = granted.body as { access_token: string; token_type: string; expires_in: number; refresh_token: string };
    expect(accessToken.token_type).toBe('Bearer');
    expect(accessToken.expires_in).toBe(3600);
    const listing = await holdings(accessToken.access_token);
    expect(listing.status).toBe(200);
    expect(((await listing.json()) as { owner: string }).owner).toBe('alice');

    const reused = await exchange(code2, verifier);
    expect(reused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // A replayed code withdraws what it granted.
    expect((await holdings(accessToken.access_token)).status).toBe(401);
  });

  it('refuses unknown clients, bad secrets and unregistered redirect URIs', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const code = await authorize(verifier);
    const badSecret = await form(`${sandbox.url}/oauth/token`, { grant_type: 'authorization_code', code, redirect_uri: CLIENT.redirectUris[0]!, code_verifier: verifier }, { authorization: `Basic ${Buffer.from(`${CLIENT.clientId}:nope`).toString('base64')}` });
    expect(badSecret).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const badRedirect = await fetch(`${sandbox.url}/oauth/authorize?response_type=code&client_id=${CLIENT.clientId}&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&state=s&code_challenge=${s256(verifier)}&code_challenge_method=S256`, { redirect: 'manual' });
    expect(badRedirect.status).toBe(400);
    const plain = await fetch(`${sandbox.url}/oauth/authorize?response_type=code&client_id=${CLIENT.clientId}&redirect_uri=${encodeURIComponent(CLIENT.redirectUris[0]!)}&state=s&code_challenge=${s256(verifier)}&code_challenge_method=plain`, { redirect: 'manual' });
    expect(plain.status).toBe(302);
    expect(new URL(plain.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });

  it('rotates refresh tokens (the old one is spent) and revokes a grant', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const granted = (await exchange(await authorize(verifier), verifier)).body as { access_token: string; refresh_token: string };
    const rotated = await refresh(granted.refresh_token);
    expect(rotated.status).toBe(200);
    const next = rotated.body as { access_token: string; refresh_token: string };
    expect(next.refresh_token).not.toBe(granted.refresh_token);
    expect(await refresh(granted.refresh_token)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect((await holdings(next.access_token)).status).toBe(200);

    const revoked = await form(`${sandbox.url}/oauth/revoke`, { token: next.refresh_token }, { authorization: basic });
    expect(revoked.status).toBe(200);
    expect((await holdings(next.access_token)).status).toBe(401);
    expect(await refresh(next.refresh_token)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('auto-approves straight back to the client when switched on', async () => {
    sandbox.oauth!.autoApprove = true;
    try {
      const verifier = randomBytes(32).toString('base64url');
      const query = new URLSearchParams({ response_type: 'code', client_id: CLIENT.clientId, redirect_uri: CLIENT.redirectUris[0]!, state: 'auto', code_challenge: s256(verifier), code_challenge_method: 'S256', login_hint: 'bob' });
      const response = await fetch(`${sandbox.url}/oauth/authorize?${query}`, { redirect: 'manual' });
      expect(response.status).toBe(302);
      const code = new URL(response.headers.get('location')!).searchParams.get('code')!;
      const granted = (await exchange(code, verifier)).body as { access_token: string };
      expect(sandbox.oauth!.verifyAccessToken(granted.access_token)).toMatchObject({ ownerId: 'bob' });
    } finally {
      sandbox.oauth!.autoApprove = false;
    }
  });

  async function freshTokens(): Promise<{ access_token: string; refresh_token: string }> {
    const verifier = randomBytes(32).toString('base64url');
    return (await exchange(await authorize(verifier), verifier)).body as { access_token: string; refresh_token: string };
  }

  it('injects request faults in the platform dialect: 429 with its retry header, 500, 503, slow, connection reset', async () => {
    const { access_token: token } = await freshTokens();
    sandbox.faults.enqueue({ kind: 'rate_limit', retryAfterSeconds: 7 }, { pathPrefix: '/v1/' });
    const limited = await holdings(token);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-test-retry-after')).toBe('7');
    expect(await limited.json()).toEqual({ errors: [{ status: '429', detail: expect.any(String) }] });

    sandbox.faults.enqueue('server_error', { times: 2, pathPrefix: '/v1/' });
    expect((await holdings(token)).status).toBe(500);
    expect((await holdings(token)).status).toBe(500);
    expect((await holdings(token)).status).toBe(200);

    sandbox.faults.enqueue('unavailable', { pathPrefix: '/v1/accounts/OTHER' });
    expect((await holdings(token)).status).toBe(200);
    sandbox.faults.enqueue('unavailable');
    expect((await holdings(token)).status).toBe(503);

    sandbox.faults.enqueue({ kind: 'slow', delayMs: 400 });
    const started = Date.now();
    expect((await holdings(token)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    sandbox.faults.enqueue({ kind: 'slow', delayMs: 2000 });
    await expect(fetch(`${sandbox.url}/v1/accounts/ACC1/holdings`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(200) })).rejects.toThrow();

    sandbox.faults.enqueue('connection_reset');
    await expect(holdings(token)).rejects.toThrow();
    expect(sandbox.faults.applied('connection_reset')).toBe(1);
    expect((await holdings(token)).status).toBe(200);
  });

  it('applies faults by rate until cleared', async () => {
    const { access_token: token } = await freshTokens();
    sandbox.faults.setRate('server_error', 1);
    expect((await holdings(token)).status).toBe(500);
    expect((await holdings(token)).status).toBe(500);
    sandbox.faults.clear();
    expect((await holdings(token)).status).toBe(200);
  });

  it('expires the presented token (refresh still works) or revokes its grant (refresh refused)', async () => {
    const tokens = await freshTokens();
    sandbox.faults.enqueue('expire_token');
    const expired = await holdings(tokens.access_token);
    expect(expired.status).toBe(401);
    expect(JSON.stringify(await expired.json())).toContain('expired');
    const renewed = (await refresh(tokens.refresh_token)).body as { access_token: string; refresh_token: string };
    expect((await holdings(renewed.access_token)).status).toBe(200);

    sandbox.faults.enqueue('revoke_token');
    const revoked = await holdings(renewed.access_token);
    expect(revoked.status).toBe(401);
    expect(JSON.stringify(await revoked.json())).toContain('revoked');
    expect((await refresh(renewed.refresh_token)).status).toBe(400);
  });

  it('hands page faults to the page renderer', async () => {
    const { access_token: token } = await freshTokens();
    sandbox.faults.enqueue('duplicate_record', { pathPrefix: '/v1/accounts/ACC1/holdings' });
    expect(((await (await holdings(token)).json()) as { pageFault: string }).pageFault).toBe('duplicate_record');
    expect(((await (await holdings(token)).json()) as { pageFault: string | null }).pageFault).toBeNull();
    expect(sandbox.faults.takePageFault('/v1/anything')).toBeUndefined();
  });

  it('changes the world through the control API and names the field of a bad body', async () => {
    const post = async (path: string, body?: unknown) => {
      const response = await fetch(`${sandbox.url}/_control${path}`, { method: 'POST', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
      return { status: response.status, body: response.status === 204 ? undefined : ((await response.json()) as Record<string, unknown>) };
    };
    const created = await post('/accounts', { ownerId: 'carol', id: 'CTL', holdings: 4, transactions: 8, currency: 'EUR' });
    expect(created).toMatchObject({ status: 201, body: { id: 'CTL', currency: 'EUR', status: 'open' } });
    const ticker = sandbox.world.security({ securityIndex: KNOWN_SECURITIES + 5 }).ticker;
    expect(await post('/accounts/CTL/buy', { ticker, quantity: '3', price: '9.99' })).toMatchObject({ status: 201, body: { type: 'BUY', seq: 9 } });
    expect(sandbox.world.holdingsCount('CTL')).toBe(5);
    expect(await post('/accounts/CTL/sell', { ticker, quantity: '5', price: '9.99' })).toMatchObject({ status: 409, body: { field: 'quantity' } });
    expect(await post('/accounts/CTL/buy', { ticker, quantity: 3, price: '9.99' })).toMatchObject({ status: 400, body: { field: 'quantity' } });
    expect(await post('/accounts', { ownerId: 'carol', holdings: -1, transactions: 0 })).toMatchObject({ status: 400, body: { field: 'holdings' } });
    expect(await post('/prices', { ticker, percent: '50' })).toMatchObject({ status: 200, body: { ticker } });
    expect(await post('/accounts/CTL/transactions/CTL-T2/cancel')).toMatchObject({ status: 200, body: { status: 'CANCELLED' } });
    expect(await post('/accounts/CTL/transactions/CTL-T999/cancel')).toMatchObject({ status: 404, body: { field: 'transactionId' } });
    expect(await post('/accounts/CTL/transactions/CTL-T3/amend', { description: 'corrected' })).toMatchObject({ status: 200, body: { description: 'corrected' } });
    expect(await post('/accounts/CTL/transactions/CTL-T3/amend', { colour: 'red' })).toMatchObject({ status: 400 });
    expect(await post('/accounts/CTL/transactions')).toMatchObject({ status: 201, body: { seq: 10 } });
    expect(await post('/accounts/CTL/holdings')).toMatchObject({ status: 201, body: { seq: 6 } });
    expect(await post('/accounts/CTL/close')).toMatchObject({ status: 200, body: { status: 'closed' } });
    expect(await post('/faults', { fault: { kind: 'slow' } })).toMatchObject({ status: 400, body: { field: 'fault.delayMs' } });
    expect(await post('/faults', { fault: { kind: 'server_error' }, pathPrefix: '/nowhere' })).toMatchObject({ status: 204 });
    expect(await post('/fault-rates', { kind: 'teapot', probability: 1 })).toMatchObject({ status: 400, body: { field: 'kind' } });
    expect((await fetch(`${sandbox.url}/_control/faults`, { method: 'DELETE' })).status).toBe(204);
    sandbox.world.recordPush({ platform: 'test', accountId: 'CTL', body: { side: 'BUY' }, reference: 'ref-1' });
    const pushes = (await (await fetch(`${sandbox.url}/_control/pushes`)).json()) as { pushes: { reference: string }[] };
    expect(pushes.pushes.map((p) => p.reference)).toEqual(['ref-1']);
    const { access_token: token } = await freshTokens();
    expect(await post('/tokens/expire', { ownerId: 'alice' })).toMatchObject({ status: 200 });
    expect((await holdings(token)).status).toBe(401);
  });
});

describe('rate limiter', () => {
  it('allows the limit per key and window, then answers with the time left', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter({ limit: 3, windowMs: 60_000, now: () => now });
    expect([1, 2, 3].map(() => limiter.take('firm-a').ok)).toEqual([true, true, true]);
    const refused = limiter.take('firm-a');
    expect(refused).toEqual({ ok: false, retryAfterMs: 20_000, retryAfterSeconds: 20 });
    expect(limiter.take('firm-b').ok).toBe(true);
    now += 20_000;
    expect(limiter.take('firm-a').ok).toBe(true);
  });
});

describe('webhooks', () => {
  let sandbox: RunningSandbox;
  let receiver: Server;
  let receiverUrl: string;
  const received: { body: string; signature: string | undefined }[] = [];
  const secret = 'whsec_0123456789abcdef';

  beforeAll(async () => {
    sandbox = await startSandbox(() => undefined, { seed: 'hooks', dialect });
    sandbox.world.addAccount({ ownerId: 'dave', id: 'W1', holdings: 3, transactions: 3 });
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        received.push({ body, signature: request.headers[WEBHOOK_SIGNATURE_HEADER] as string | undefined });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });
  afterAll(async () => {
    await sandbox.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('delivers a signed notice for each new transaction; the signature verifies and a forgery does not', async () => {
    const subscribed = await fetch(`${sandbox.url}/_control/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: receiverUrl, secret, accountId: 'W1' }) });
    expect(subscribed.status).toBe(201);
    const holding: SandboxHolding = [...sandbox.world.holdings('W1')][0]!;
    const buy = sandbox.world.buy('W1', { ticker: holding.security.ticker, quantity: '1', price: '1' });
    await sandbox.webhooks.idle();
    expect(received).toHaveLength(1);
    const delivery = received[0]!;
    expect(JSON.parse(delivery.body)).toMatchObject({ type: 'transactions.created', dataType: 'transactions', accountId: 'W1', recordIds: [buy.id] });
    expect(verifyWebhookSignature({ body: delivery.body, header: delivery.signature, secret })).toMatchObject({ ok: true });
    expect(verifyWebhookSignature({ body: delivery.body.replace('W1', 'W2'), header: delivery.signature, secret })).toEqual({ ok: false, reason: 'the signature does not match' });
    expect(verifyWebhookSignature({ body: delivery.body, header: delivery.signature, secret: 'whsec_someone_else' }).ok).toBe(false);
    expect(verifyWebhookSignature({ body: delivery.body, header: delivery.signature, secret, now: Date.now() + 3_600_000 })).toEqual({ ok: false, reason: 'the signature timestamp is outside the tolerance' });
    expect(verifyWebhookSignature({ body: delivery.body, header: undefined, secret }).ok).toBe(false);
    expect(verifyWebhookSignature({ body: delivery.body, header: 'v1=abc', secret }).ok).toBe(false);

    sandbox.world.addAccount({ ownerId: 'dave', id: 'W2', holdings: 1, transactions: 1 });
    sandbox.world.insertTransaction('W2');
    await sandbox.webhooks.idle();
    expect(received).toHaveLength(1);
  });
});
