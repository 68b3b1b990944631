import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountRecord, AnalyticsRecord, HoldingRecord, PerformanceRecord, TransactionRecord } from '../../src/domain/platforms/records.ts';
import type { CredentialHolder, PlatformAdapter } from '../../src/ports/platform-adapter.ts';
import addepar, { API_ROOT, JSON_API, SANDBOX_FIRM_ID, SANDBOX_REDIRECT_URI, sandboxApiKey } from '../../src/adapters/platforms/addepar/index.ts';
import {
  RowSecurityCache,
  SecurityBook,
  checkedPosition,
  checkedSecurityEntity,
  checkedTransaction,
  mapPosition,
  mapSecurityEntity,
  mapTransaction,
} from '../../src/adapters/platforms/addepar/mapping.ts';
import type { RunningSandbox, SandboxHolding, SandboxTransaction } from '../../src/adapters/platforms/sandbox-kit/index.ts';
import { MemoryHolder, collect, failure, platformTestKit } from '../support/platforms.ts';

const SCALE = 0.0001;
const FAST = { rateLimitScale: SCALE, timeoutMs: 1_000, retry: { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 50 }, breaker: { consecutiveFailures: 20, halfOpenAfterMs: 500 }, jobPolling: { initialMs: 5, maxMs: 50, giveUpAfterMs: 30_000 } };

const dec = (value: Decimal | undefined) => value?.toFixed();
const same = (value: Decimal | undefined, truth: string | undefined) => (truth === undefined ? value === undefined : value !== undefined && value.eq(truth));

function expectHolding(record: HoldingRecord, truth: SandboxHolding): void {
  expect(record.platformRecordId).toBe(truth.id);
  expect(record.platformAccountId).toBe(truth.accountId);
  expect(same(record.quantity, truth.quantity), `${truth.id} quantity ${dec(record.quantity)} vs ${truth.quantity}`).toBe(true);
  expect(same(record.price, truth.price)).toBe(true);
  expect(same(record.marketValue, truth.marketValue)).toBe(true);
  expect(same(record.costBasis, truth.costBasis)).toBe(true);
  expect(record.currency).toBe(truth.currency);
  expect(record.asOf).toBe(truth.asOf);
  expect(record.security).toMatchObject({ ticker: truth.security.ticker, cusip: truth.security.cusip, isin: truth.security.isin, assetClass: truth.security.assetClass, securityType: truth.security.securityType });
}

function expectTransaction(record: TransactionRecord, truth: SandboxTransaction): void {
  expect(record.platformRecordId).toBe(truth.id);
  expect(record.type).toBe(truth.type);
  expect(record.status).toBe(truth.status);
  expect(record.tradeDate).toBe(truth.tradeDate);
  expect(record.settleDate).toBe(truth.settleDate);
  expect(same(record.amount, truth.amount), `${truth.id} amount`).toBe(true);
  expect(same(record.quantity, truth.quantity)).toBe(true);
  expect(same(record.price, truth.price)).toBe(true);
  expect(record.currency).toBe(truth.currency);
  expect(record.description).toBe(truth.description);
  expect(record.security?.isin).toBe(truth.security?.isin);
}

/** A raw request in Addepar's dialect, as a third-party client would send it. */
async function raw(sandbox: RunningSandbox, path: string, init: { method?: string; headers?: Record<string, string>; body?: string; auth?: string } = {}): Promise<Response> {
  const key = sandboxApiKey('raw-user');
  return fetch(sandbox.url + API_ROOT + path, {
    method: init.method ?? 'GET',
    headers: { authorization: init.auth ?? `Basic ${Buffer.from(`${key.apiKey}:${key.apiSecret}`).toString('base64')}`, 'addepar-firm': SANDBOX_FIRM_ID, accept: JSON_API, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
    redirect: 'manual',
  });
}

describe('Addepar sandbox and adapter', () => {
  let sandbox: RunningSandbox;
  let adapter: PlatformAdapter;
  let holder: MemoryHolder;
  const owner = 'alice';
  const { adapterFor, connect } = platformTestKit(addepar, { owner, adapter: FAST });

  beforeAll(async () => {
    sandbox = await addepar.startSandbox({ seed: 'addepar-test', rateLimitScale: SCALE });
    sandbox.world.addAccount({ ownerId: owner, id: 'ALICE-1', holdings: 4_500, transactions: 3_000 });
    sandbox.world.addAccount({ ownerId: owner, id: 'ALICE-2', currency: 'EUR', holdings: 12, transactions: 25_000 });
    sandbox.world.addAccount({ ownerId: 'bob', id: 'BOB-1', holdings: 5, transactions: 5 });
    adapter = adapterFor(sandbox);
    ({ holder } = await connect(sandbox, adapter));
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  describe('connect', () => {
    it('completes the code flow with state and PKCE through the consent page', async () => {
      const start = await adapter.beginAuthorization(SANDBOX_REDIRECT_URI);
      const url = new URL(start.authorizationUrl);
      expect(url.pathname).toBe(`${API_ROOT}/public/oauth2/authorize`);
      expect(url.searchParams.get('state')).toBe(start.state);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('scope')).toContain('POSITIONS');
      expect(holder.credentials.refreshToken).toBeDefined();
      const lifetime = holder.credentials.accessTokenExpiresAt - holder.credentials.grantedAt;
      expect(lifetime).toBeGreaterThan(59 * 60_000);
      expect(lifetime).toBeLessThanOrEqual(60 * 60_000);
      expect(holder.credentials.refreshTokenExpiresAt! - holder.credentials.grantedAt).toBeGreaterThan(89 * 24 * 3_600_000);
    });

    it('refuses a callback whose state is not the one it started with', async () => {
      const start = await adapter.beginAuthorization(SANDBOX_REDIRECT_URI);
      const url = new URL(start.authorizationUrl);
      url.searchParams.set('login_hint', owner);
      const page = await fetch(url, { redirect: 'manual' });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Approve');
      const form = new URLSearchParams(url.searchParams);
      form.delete('login_hint');
      form.set('user', owner);
      form.set('decision', 'approve');
      const approved = await fetch(new URL(url.pathname, sandbox.url), { method: 'POST', body: form, redirect: 'manual' });
      const callback = new URL(approved.headers.get('location')!);
      callback.searchParams.set('state', 'forged-state');
      const error = await failure(() => adapter.completeAuthorization({ callbackUrl: callback.toString(), expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri: SANDBOX_REDIRECT_URI }));
      expect(error.syncError.code).toBe('AUTH_REVOKED');
      expect(error.message).toContain('state');
    });

    it('onboards a Basic API key and secret, and refuses a wrong secret', async () => {
      const key = sandboxApiKey(owner);
      const credentials = await adapter.onboardApiKey(key.apiKey, key.apiSecret);
      const accounts = await collect(adapter.open(new MemoryHolder(credentials)).accounts());
      expect(accounts.records.map((account) => account.platformAccountId).sort()).toEqual(['ALICE-1', 'ALICE-2']);
      const error = await failure(() => adapter.onboardApiKey(key.apiKey, 'not-the-secret'));
      expect(error.syncError.code).toBe('AUTH_REVOKED');
      expect(error.message).not.toContain('not-the-secret');
    });
  });

  describe('dialect', () => {
    it('answers JSON:API, wants the Addepar-Firm header, and refuses other media types', async () => {
      const ok = await raw(sandbox, '/v1/entities');
      expect(ok.headers.get('content-type')).toContain(JSON_API);
      const noFirm = await raw(sandbox, '/v1/entities', { headers: { 'addepar-firm': '' } });
      expect(noFirm.status).toBe(400);
      expect(await noFirm.json()).toEqual({ errors: [expect.objectContaining({ status: '400', title: 'Bad Request', detail: expect.stringContaining('Addepar-Firm') })] });
      const wrongBody = await raw(sandbox, '/v1/portfolio/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(wrongBody.status).toBe(415);
      const wrongAccept = await raw(sandbox, '/v1/entities', { headers: { accept: 'text/xml' } });
      expect(wrongAccept.status).toBe(406);
      const badLimit = await raw(sandbox, '/v1/positions?page[limit]=2001');
      expect(badLimit.status).toBe(400);
    });

    it('pages positions with page[limit] and page[after], links.next null on the last page', async () => {
      const key = sandboxApiKey(owner);
      const auth = `Basic ${Buffer.from(`${key.apiKey}:${key.apiSecret}`).toString('base64')}`;
      let next: string | null = '/v1/positions?filter[owner_ids]=ALICE-2&page[limit]=5';
      const ids: string[] = [];
      while (next !== null) {
        const page = (await (await raw(sandbox, next, { auth })).json()) as { data: { id: string }[]; links: { next: string | null } };
        expect(page.data.length).toBeLessThanOrEqual(5);
        ids.push(...page.data.map((position) => position.id));
        next = page.links.next;
      }
      expect(ids).toEqual([...sandbox.world.holdings('ALICE-2')].map((holding) => holding.id));
    });

    it('the direct mapping path agrees with the schema path on every record served and on edge cases', async () => {
      const key = sandboxApiKey(owner);
      const auth = `Basic ${Buffer.from(`${key.apiKey}:${key.apiSecret}`).toString('base64')}`;
      type Resource = { id: string; type: string; attributes: Record<string, unknown>; relationships: Record<string, { data: { type: string; id: string } | null }> };
      const page = (await (await raw(sandbox, '/v1/positions?filter[owner_ids]=ALICE-1&include=owned&page[limit]=2000', { auth })).json()) as { data: Resource[]; included: Resource[] };
      const position = page.data[0]!;
      const entity = page.included[0]!;
      const positionVariant = (attributes: Record<string, unknown>, rest: Partial<Resource> = {}) => ({ ...position, ...rest, attributes: { ...position.attributes, ...attributes } });
      const entityVariant = (attributes: Record<string, unknown>) => ({ ...entity, attributes: { ...entity.attributes, ...attributes } });
      const entityVariants = [
        ...page.included,
        entityVariant({ cusip: '037833101' }),
        entityVariant({ isin: 'US0378331006' }),
        entityVariant({ ticker_symbol: 'aapl' }),
        entityVariant({ ticker_symbol: null, cusip: null, isin: '' }),
        entityVariant({ display_name: '', original_name: '' }),
        entityVariant({ model_type: 'WARRANT', asset_class: 'equity' }),
        entityVariant({ asset_class: 'Crypto' }),
        entityVariant({ original_name: 7 }),
        { ...entity, type: 'positions' },
      ];
      for (const variant of entityVariants) expect(mapSecurityEntity(variant), variant.id).toEqual(checkedSecurityEntity(variant));

      const book = new SecurityBook();
      book.load([...page.included, entityVariant({ cusip: '037833101' })].map((candidate, i) => (i === page.included.length ? { ...candidate, id: 'bad-cusip' } : candidate)));
      const owned = (id: string) => ({ relationships: { ...position.relationships, owned: { data: { type: 'entities', id } } } });
      const positionVariants = [
        ...page.data,
        positionVariant({ units: '12.50', price: 1e-7, value: 1e21 }),
        positionVariant({ units: ' 5' }),
        positionVariant({ units: '' }),
        positionVariant({ cost_basis: null }),
        positionVariant({ cost_basis: '' }),
        positionVariant({ currency: 'usd' }),
        positionVariant({ currency: 'ABC' }),
        positionVariant({ as_of_date: '2025-02-30' }),
        positionVariant({ name: undefined }),
        positionVariant({}, { id: '' }),
        positionVariant({}, { type: 'entities' }),
        positionVariant({}, { relationships: { ...position.relationships, owner: { data: null } } }),
        positionVariant({}, owned('not-included')),
        positionVariant({}, owned('bad-cusip')),
      ];
      for (const variant of positionVariants) expect(mapPosition(variant, book), variant.id).toEqual(checkedPosition(variant, book));

      const query = (await (
        await raw(sandbox, '/v1/transactions/query', {
          method: 'POST',
          auth,
          headers: { 'content-type': JSON_API },
          body: JSON.stringify({ data: { type: 'transaction_query', attributes: { portfolio_type: 'ENTITY', portfolio_id: ['ALICE-1'], start_date: '1900-01-01' } } }),
        })
      ).json()) as { data: Resource[] };
      const rows = query.data.map((resource): Record<string, unknown> => ({ ...resource.attributes, id: resource.id, owner_id: resource.relationships.owner!.data!.id }));
      // An export's rows carry every value as text, an empty cell as absent.
      const exported = rows.map((row) => Object.fromEntries(Object.entries(row).flatMap(([column, value]) => (value === null || value === undefined || value === '' ? [] : [[column, String(value)]]))));
      const bought = rows.find((row) => row['type'] === 'buy')!;
      const rowVariant = (changes: Record<string, unknown>) => ({ ...bought, ...changes });
      const transactionVariants = [
        ...rows,
        ...exported,
        rowVariant({ units: '' }),
        rowVariant({ units: null, price: null }),
        rowVariant({ amount: '1e5' }),
        rowVariant({ amount: 12.5, units: '3' }),
        rowVariant({ type: 'mystery' }),
        rowVariant({ status: 'weird' }),
        rowVariant({ trade_date: 'yesterday' }),
        rowVariant({ settle_date: '' }),
        rowVariant({ settle_date: '2025-13-01' }),
        rowVariant({ currency: 'usd' }),
        rowVariant({ description: 12 }),
        rowVariant({ description: '' }),
        rowVariant({ modified_at: undefined }),
        rowVariant({ cusip: '037833101' }),
        rowVariant({ ticker_symbol: 'brk.b' }),
        rowVariant({ security_name: null, ticker_symbol: null, cusip: null, isin: null }),
        rowVariant({ owner_id: '' }),
      ];
      for (const variant of transactionVariants) expect(mapTransaction(variant, new RowSecurityCache()), String(variant['id'])).toEqual(checkedTransaction(variant, new RowSecurityCache()));
    });

    it('enforces the per-firm limit with 429 and X-RateLimit-Retry-After', async () => {
      const limited = await addepar.startSandbox({ seed: 'addepar-limit', rateLimitScale: 0.01 });
      try {
        const statuses: number[] = [];
        let retryAfter: string | null = null;
        for (let i = 0; i < 55; i++) {
          const response = await raw(limited, '/v1/entities');
          statuses.push(response.status);
          if (response.status === 429) retryAfter = response.headers.get('x-ratelimit-retry-after');
        }
        expect(statuses.filter((status) => status === 200).length).toBeLessThanOrEqual(50);
        expect(statuses).toContain(429);
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      } finally {
        await limited.close();
      }
    });
  });

  describe('fetch', () => {
    it('accounts: the owner’s financial accounts, no one else’s', async () => {
      const { records, errors } = await collect<AccountRecord>(adapter.open(holder).accounts());
      expect(errors).toEqual([]);
      const truth = sandbox.world.accounts(owner);
      expect(records).toHaveLength(truth.length);
      for (const account of truth) {
        expect(records.find((record) => record.platformAccountId === account.id)).toMatchObject({
          name: account.name,
          number: account.number,
          accountType: account.accountType,
          custodian: account.custodian,
          currency: account.currency,
          status: account.status,
          openedOn: account.openedOn,
        });
      }
    });

    it('holdings: every position of the account, record for record', async () => {
      const { records, errors } = await collect<HoldingRecord>(adapter.open(holder).holdings('ALICE-1'));
      expect(errors).toEqual([]);
      const truth = [...sandbox.world.holdings('ALICE-1')];
      expect(records).toHaveLength(truth.length);
      truth.forEach((holding, i) => expectHolding(records[i]!, holding));
    });

    it('transactions: the whole history through an export job, a date range through the query, then only what changed', async () => {
      const connection = adapter.open(holder);
      const all = await collect<TransactionRecord>(connection.transactions('ALICE-2'));
      expect(all.errors).toEqual([]);
      const truth = [...sandbox.world.transactions('ALICE-2')];
      expect(all.records).toHaveLength(25_000);
      truth.forEach((transaction, i) => expectTransaction(all.records[i]!, transaction));
      expect(all.cursor).toBeDefined();

      const from = truth[100]!.tradeDate;
      const to = truth[400]!.tradeDate;
      const ranged = await collect<TransactionRecord>(connection.transactions('ALICE-2', { from, to }));
      const inRange = [...sandbox.world.transactions('ALICE-2', { from, to })];
      expect(ranged.records.map((record) => record.platformRecordId)).toEqual(inRange.map((transaction) => transaction.id));

      const bought = sandbox.world.buy('ALICE-2', { ticker: 'MSFT', quantity: '10', price: '400.25' });
      const cancelled = sandbox.world.cancelTransaction('ALICE-2', truth[7]!.id);
      const since = await collect<TransactionRecord>(connection.transactions('ALICE-2', { since: all.cursor! }));
      expect(since.records.map((record) => record.platformRecordId).sort()).toEqual([bought.id, cancelled.id].sort());
      expectTransaction(since.records.find((record) => record.platformRecordId === cancelled.id)!, cancelled);
      const nothing = await collect<TransactionRecord>(connection.transactions('ALICE-2', { since: since.cursor! }));
      expect(nothing.records).toEqual([]);
    });

    it('performance: every period from the portfolio query', async () => {
      const { records, errors } = await collect<PerformanceRecord>(adapter.open(holder).performance('ALICE-1'));
      expect(errors).toEqual([]);
      const truth = sandbox.world.performance('ALICE-1');
      expect(records).toHaveLength(truth.length);
      for (const row of truth) {
        const record = records.find((candidate) => candidate.period === row.period)!;
        expect(record).toMatchObject({ startDate: row.startDate, endDate: row.endDate, currency: row.currency });
        expect(same(record.returnRate, row.returnRate) && same(record.beginningValue, row.beginningValue) && same(record.endingValue, row.endingValue) && same(record.netFlows, row.netFlows)).toBe(true);
      }
    });

    it('analytics: risk metrics, attribution by asset class and a benchmark comparison', async () => {
      const { records, errors } = await collect<AnalyticsRecord>(adapter.open(holder).analytics('ALICE-1', { benchmarkId: 'MSCI-ACWI' }));
      expect(errors).toEqual([]);
      const risk = sandbox.world.riskMetrics('ALICE-1');
      const riskRecord = records.find((record) => record.kind === 'risk_metrics');
      expect(riskRecord).toMatchObject({ asOf: risk.asOf });
      if (riskRecord?.kind !== 'risk_metrics') throw new Error('no risk metrics');
      expect(same(riskRecord.volatility, risk.volatility) && same(riskRecord.sharpeRatio, risk.sharpeRatio) && same(riskRecord.beta, risk.beta) && same(riskRecord.maxDrawdown, risk.maxDrawdown)).toBe(true);
      const attribution = records.filter((record) => record.kind === 'attribution');
      const segments = sandbox.world.attribution('ALICE-1');
      expect(attribution).toHaveLength(segments.length);
      for (const segment of segments) {
        const record = attribution.find((candidate) => candidate.kind === 'attribution' && candidate.segment === segment.segment);
        if (record?.kind !== 'attribution') throw new Error(`no segment ${segment.segment}`);
        expect([record.startDate, record.endDate]).toEqual([segment.startDate, segment.endDate]);
        expect(same(record.allocationEffect, segment.allocationEffect) && same(record.selectionEffect, segment.selectionEffect) && same(record.totalEffect, segment.totalEffect)).toBe(true);
      }
      const comparisons = records.filter((record) => record.kind === 'benchmark_comparison');
      const truth = sandbox.world.benchmarkComparison('ALICE-1', 'MSCI-ACWI');
      expect(comparisons).toHaveLength(truth.length);
      for (const row of truth) {
        const record = comparisons.find((candidate) => candidate.kind === 'benchmark_comparison' && candidate.period === row.period);
        if (record?.kind !== 'benchmark_comparison') throw new Error(`no period ${row.period}`);
        expect(record.benchmarkId).toBe('MSCI-ACWI');
        expect(same(record.portfolioReturn, row.portfolioReturn) && same(record.benchmarkReturn, row.benchmarkReturn) && same(record.excessReturn, row.excessReturn)).toBe(true);
      }
    });

    it('an export whose results expired answers 410', async () => {
      const key = sandboxApiKey(owner);
      const auth = `Basic ${Buffer.from(`${key.apiKey}:${key.apiSecret}`).toString('base64')}`;
      const body = JSON.stringify({ data: { type: 'jobs', attributes: { job_type: 'transactions_query_results', parameters: { portfolio_type: 'ENTITY', portfolio_id: ['ALICE-1'], output_type: 'TSV' } } } });
      const created = await raw(sandbox, '/v1/jobs', { method: 'POST', auth, headers: { 'content-type': JSON_API }, body });
      expect(created.status).toBe(202);
      const job = (await created.json()) as { data: { id: string } };
      await new Promise((resolve) => setTimeout(resolve, 100));
      const ready = await raw(sandbox, `/v1/jobs/${job.data.id}/download`, { auth });
      expect(ready.status).toBe(303);
      await fetch(`${sandbox.url}/_control/addepar/jobs/${job.data.id}/expire`, { method: 'POST' });
      const gone = await raw(sandbox, `/v1/jobs/${job.data.id}/download`, { auth });
      expect(gone.status).toBe(410);
    });
  });

  describe('faults', () => {
    const holdingsOf = async (accountId: string, connectionHolder: CredentialHolder = holder) => collect<HoldingRecord>(adapter.open(connectionHolder).holdings(accountId));

    it.each([
      ['rate_limit', { kind: 'rate_limit', retryAfterSeconds: 1 }],
      ['server_error', { kind: 'server_error' }],
      ['unavailable', { kind: 'unavailable', retryAfterSeconds: 0 }],
      ['connection_reset', { kind: 'connection_reset' }],
      ['slow', { kind: 'slow', delayMs: 1_500 }],
    ] as const)('%s: the fetch recovers', async (kind, fault) => {
      sandbox.faults.enqueue(fault, { pathPrefix: `${API_ROOT}/v1/positions` });
      const started = Date.now();
      const { records, errors } = await holdingsOf('ALICE-1');
      expect(errors).toEqual([]);
      expect(records).toHaveLength(sandbox.world.holdingsCount('ALICE-1'));
      expect(sandbox.faults.applied(kind)).toBeGreaterThan(0);
      if (kind === 'rate_limit') expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    });

    it('a persistent outage ends in PLATFORM_UNAVAILABLE, and the breaker opens', async () => {
      const strict = adapterFor(sandbox, { breaker: { consecutiveFailures: 3, halfOpenAfterMs: 60_000 } });
      sandbox.faults.enqueue({ kind: 'unavailable', retryAfterSeconds: 0 }, { pathPrefix: `${API_ROOT}/v1/positions`, times: 100 });
      try {
        const connection = strict.open(holder);
        const first = await failure(() => collect(connection.holdings('ALICE-1')));
        expect(first.syncError).toMatchObject({ code: 'PLATFORM_UNAVAILABLE', retryable: true });
        const before = sandbox.faults.applied('unavailable');
        const second = await failure(() => collect(connection.holdings('ALICE-1')));
        expect(second.syncError.code).toBe('PLATFORM_UNAVAILABLE');
        expect(second.message).toContain('circuit open');
        expect(sandbox.faults.applied('unavailable')).toBe(before);
      } finally {
        sandbox.faults.clear();
      }
    });

    it('slow past the client timeout on every attempt ends in TIMEOUT', async () => {
      sandbox.faults.enqueue({ kind: 'slow', delayMs: 1_500 }, { pathPrefix: `${API_ROOT}/v1/entities`, times: 4 });
      const error = await failure(() => collect(adapter.open(holder).accounts()));
      expect(error.syncError.code).toBe('TIMEOUT');
      sandbox.faults.clear();
    });

    it('an expired token is refreshed transparently', async () => {
      const before = holder.credentials.accessToken;
      sandbox.faults.enqueue({ kind: 'expire_token' }, { pathPrefix: `${API_ROOT}/v1/positions` });
      const { records } = await holdingsOf('ALICE-2');
      expect(records).toHaveLength(sandbox.world.holdingsCount('ALICE-2'));
      expect(holder.credentials.accessToken).not.toBe(before);
    });

    it('a revoked token ends in AUTH_REVOKED, without a loop', async () => {
      const { holder: own } = await connect(sandbox, adapter);
      sandbox.faults.enqueue({ kind: 'revoke_token' }, { pathPrefix: `${API_ROOT}/v1/positions` });
      const started = Date.now();
      const error = await failure(() => holdingsOf('ALICE-2', own));
      expect(error.syncError).toMatchObject({ code: 'AUTH_REVOKED', retryable: false });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error.message).not.toContain(own.credentials.accessToken);
    });

    it('a malformed record becomes one SyncError naming it; the rest is delivered', async () => {
      sandbox.faults.enqueue({ kind: 'malformed_record' }, { pathPrefix: `${API_ROOT}/v1/positions` });
      const { records, errors } = await holdingsOf('ALICE-1');
      expect(errors).toHaveLength(1);
      const error = errors[0]!;
      if (error.kind !== 'error') throw new Error('expected an error');
      expect(error.error).toMatchObject({ code: 'RECORD_INVALID', severity: 'error' });
      expect(error.error.recordId).toMatch(/^ALICE-1-H\d+$/);
      expect(records).toHaveLength(sandbox.world.holdingsCount('ALICE-1') - 1);
      expect(records.some((record) => record.platformRecordId === error.error.recordId)).toBe(false);
    });

    it('a record repeated across pages is delivered once', async () => {
      sandbox.faults.enqueue({ kind: 'duplicate_record' }, { pathPrefix: `${API_ROOT}/v1/positions`, times: 2 });
      const { records } = await holdingsOf('ALICE-1');
      expect(sandbox.faults.applied('duplicate_record')).toBeGreaterThanOrEqual(2);
      expect(new Set(records.map((record) => record.platformRecordId)).size).toBe(records.length);
      expect(records).toHaveLength(sandbox.world.holdingsCount('ALICE-1'));
    });

    it('records inserted while paging are neither lost nor duplicated', async () => {
      const before = sandbox.world.holdingsCount('ALICE-1');
      sandbox.faults.enqueue({ kind: 'insert_while_paging' }, { pathPrefix: `${API_ROOT}/v1/positions`, times: 2 });
      const { records } = await holdingsOf('ALICE-1');
      expect(sandbox.world.holdingsCount('ALICE-1')).toBe(before + 2);
      expect(records.map((record) => record.platformRecordId)).toEqual([...sandbox.world.holdings('ALICE-1')].map((holding) => holding.id));
    });

    it('a token expiring in the middle of a paged fetch is refreshed, without duplicates or gaps', async () => {
      const connection = adapter.open(holder);
      const ids: string[] = [];
      let expired = false;
      for await (const item of connection.holdings('ALICE-1')) {
        if (item.kind !== 'record') continue;
        ids.push(item.record.platformRecordId);
        if (!expired && ids.length === 2_500) {
          expired = sandbox.tokens.expireAll(owner) > 0;
        }
      }
      expect(expired).toBe(true);
      expect(ids).toEqual([...sandbox.world.holdings('ALICE-1')].map((holding) => holding.id));
    });
  });

  describe('token lifecycle', () => {
    it('refreshes five minutes before expiry, and rotates after 30 days with the single-use refresh token replaced', async () => {
      let now = Date.now();
      const clocked = adapterFor(sandbox, { now: () => now });
      const { holder: own } = await connect(sandbox, clocked);
      const granted = own.credentials;
      now = granted.accessTokenExpiresAt - 4 * 60_000;
      await collect(clocked.open(own).accounts());
      expect(own.credentials.accessToken).not.toBe(granted.accessToken);
      expect(own.credentials.refreshToken).not.toBe(granted.refreshToken);
      expect(own.credentials.grantedAt).toBe(granted.grantedAt);

      const refreshed = own.credentials;
      now = granted.grantedAt + 31 * 24 * 3_600_000;
      await collect(clocked.open(own).accounts());
      expect(own.credentials.grantedAt).toBe(now);
      expect(own.credentials.refreshToken).not.toBe(refreshed.refreshToken);
      // The spent refresh token is refused by the platform.
      const reuse = await fetch(`${sandbox.url}${API_ROOT}/public/oauth2/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from('ledger-addepar-app:addepar-sandbox-client-secret-c71e04').toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshed.refreshToken! }),
      });
      expect(reuse.status).toBe(400);
    });
  });

  describe('push', () => {
    it('accepts a trade, a rebalance and an override, readable from the sandbox, and is idempotent on the client reference', async () => {
      const connection = adapter.open(holder);
      const trade = await connection.push({ kind: 'trade', clientRef: 'order-1', platformAccountId: 'ALICE-1', side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('15'), orderType: 'LIMIT', limitPrice: new Decimal('190.5') });
      expect(trade.status).toBe('accepted');
      const again = await connection.push({ kind: 'trade', clientRef: 'order-1', platformAccountId: 'ALICE-1', side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('15'), orderType: 'LIMIT', limitPrice: new Decimal('190.5') });
      expect(again).toEqual(trade);
      const holding = [...sandbox.world.holdings('ALICE-1', { limit: 2 })];
      const rebalance = await connection.push({
        kind: 'rebalance',
        clientRef: 'rebalance-1',
        platformAccountId: 'ALICE-1',
        targets: [
          { security: { isin: holding[0]!.security.isin }, weight: new Decimal('0.6') },
          { security: { cusip: holding[1]!.security.cusip }, weight: new Decimal('0.4') },
        ],
      });
      expect(rebalance.status).toBe('accepted');
      const override = await connection.push({ kind: 'manual_override', clientRef: 'ovr-1', platformAccountId: 'ALICE-1', platformRecordId: holding[0]!.id, field: 'costBasis', value: new Decimal('1234.56'), reason: 'custodian statement' });
      expect(override.status).toBe('accepted');
      const pushes = sandbox.world.pushes().filter((push) => push.platform === 'addepar');
      expect(pushes.map((push) => push.reference)).toEqual([trade, rebalance, override].map((receipt) => (receipt.status === 'accepted' ? receipt.platformReference : '')));
      expect(pushes[0]!.body).toMatchObject({ data: { type: 'orders', attributes: { owner_id: 'ALICE-1', side: 'BUY', units: '15', limit_price: '190.5', security: { ticker_symbol: 'AAPL' } } } });
    });

    it('rejects invalid instructions with the platform’s errors', async () => {
      const connection = adapter.open(holder);
      const count = sandbox.world.pushes().length;
      const badIsin = await connection.push({ kind: 'trade', clientRef: 'order-bad', platformAccountId: 'ALICE-1', side: 'SELL', security: { isin: 'US0378331006' }, quantity: new Decimal('1'), orderType: 'MARKET' });
      expect(badIsin).toMatchObject({ status: 'rejected', code: 'INVALID_IDENTIFIER' });
      const weights = await connection.push({ kind: 'rebalance', clientRef: 'rebalance-bad', platformAccountId: 'ALICE-1', targets: [{ security: { ticker: 'AAPL' }, weight: new Decimal('0.7') }] });
      expect(weights).toMatchObject({ status: 'rejected', code: 'WEIGHTS_DO_NOT_SUM_TO_ONE' });
      const foreign = await connection.push({ kind: 'trade', clientRef: 'order-foreign', platformAccountId: 'BOB-1', side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('1'), orderType: 'MARKET' });
      expect(foreign).toMatchObject({ status: 'rejected', code: 'UNKNOWN_ENTITY' });
      expect(sandbox.world.pushes()).toHaveLength(count);
    });
  });

  it('streams a 50,000-holding account with peak memory growth under 150 MB', async () => {
    sandbox.world.addAccount({ ownerId: owner, id: 'ALICE-BIG', holdings: 50_000, transactions: 0 });
    global.gc?.();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    let count = 0;
    for await (const item of adapter.open(holder).holdings('ALICE-BIG')) {
      if (item.kind === 'record') count++;
      if (count % 2_000 === 0) {
        const usage = process.memoryUsage();
        peakRss = Math.max(peakRss, usage.rss);
        peakHeap = Math.max(peakHeap, usage.heapUsed);
      }
    }
    expect(count).toBe(50_000);
    expect((peakHeap - baseline.heapUsed) / 1_048_576).toBeLessThan(150);
    expect((peakRss - baseline.rss) / 1_048_576).toBeLessThan(150);
  });
});
