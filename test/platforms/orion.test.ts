import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orion, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, sandboxApiUser, startOrionSandbox, type RunningOrionSandbox } from '../../src/adapters/platforms/orion/index.ts';
import { checkedAsset, checkedTransaction, lotTerm, mapAsset, mapTransaction, mapVerboseAsset } from '../../src/adapters/platforms/orion/mapping.ts';
import { OrionAccountSchema, OrionAssetSchema, OrionPerformanceSchema, OrionTransactionSchema, OrionVerboseAssetSchema } from '../../src/adapters/platforms/orion/wire.ts';
import { signWebhook, type SandboxHolding, type SandboxSecurity } from '../../src/adapters/platforms/sandbox-kit/index.ts';
import type { SecurityType } from '../../src/domain/platforms/records.ts';
import { PlatformError, type PlatformAdapter, type PlatformConnection } from '../../src/ports/platform-adapter.ts';
import { MemoryHolder, collect, failure, platformTestKit } from '../support/platforms.ts';

const OWNER = 'orion-advisor-1';
const { adapterFor, connect } = platformTestKit(orion, { owner: OWNER, adapter: { clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET } });
const DAY_MS = 86_400_000;

/** Orion's productType says StockOrETF for both; custodial cash is flagged apart. */
function orionSecurityType(security: SandboxSecurity): SecurityType {
  return security.securityType === 'etf' ? 'stock' : security.securityType;
}

function expectHoldingsEqualTruth(records: { platformRecordId: string; quantity: Decimal; price: Decimal; marketValue: Decimal; costBasis?: Decimal | undefined }[], truth: SandboxHolding[]): void {
  expect(records.map((record) => record.platformRecordId)).toEqual(truth.map((holding) => holding.id));
  for (const [index, holding] of truth.entries()) {
    const record = records[index]!;
    expect(record.quantity.eq(holding.quantity), holding.id).toBe(true);
    expect(record.price.eq(holding.price), holding.id).toBe(true);
    expect(record.marketValue.eq(holding.marketValue), holding.id).toBe(true);
    expect(record.costBasis?.eq(holding.costBasis), holding.id).toBe(true);
  }
}

async function token(sandbox: RunningOrionSandbox, authorization: string, accept = 'application/json'): Promise<Response> {
  return fetch(`${sandbox.url}/api/v1/security/token`, { headers: { authorization, accept } });
}

describe('Orion sandbox and adapter', () => {
  let sandbox: RunningOrionSandbox;
  let adapter: PlatformAdapter;
  let accountId: string;
  let smallId: string;

  beforeAll(async () => {
    sandbox = await startOrionSandbox({ seed: 'orion-test' });
    accountId = sandbox.world.addAccount({ ownerId: OWNER, holdings: 150, transactions: 400 }).id;
    smallId = sandbox.world.addAccount({ ownerId: OWNER, holdings: 12, transactions: 30, currency: 'CAD' }).id;
    sandbox.world.addAccount({ ownerId: 'someone-else', holdings: 5, transactions: 5 });
    adapter = adapterFor(sandbox, { pageSize: 40 });
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  describe('connect with an API key and secret', () => {
    it('exchanges the key and secret for a 10-hour session and a refresh token, keeping the key for re-authentication', async () => {
      const before = Date.now();
      const credentials = await orion.connectWithoutUser(adapter, sandbox, OWNER);
      const user = sandboxApiUser(OWNER);
      expect(credentials).toMatchObject({ apiKey: user.apiKey, apiSecret: user.apiSecret, refreshToken: expect.any(String) });
      expect(credentials.accessTokenExpiresAt - before).toBeGreaterThanOrEqual(36_000_000 - 1000);
      expect(credentials.accessTokenExpiresAt - Date.now()).toBeLessThanOrEqual(36_000_000);
      expect(credentials.grantedAt).toBeGreaterThanOrEqual(before);
    });

    it('answers the token as XML unless JSON is asked for', async () => {
      const user = sandboxApiUser(OWNER);
      const response = await token(sandbox, `Basic ${Buffer.from(`${user.apiKey}:${user.apiSecret}`).toString('base64')}`, 'text/xml');
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('xml');
      expect(await response.text()).toMatch(/<access_token>.+<\/access_token><expires_in>36000<\/expires_in><refresh_token>.+<\/refresh_token>/);
    });

    it('refuses a wrong secret and a wrong partner secret, without repeating either', async () => {
      const user = sandboxApiUser(OWNER);
      const wrongSecret = await failure(() => adapter.onboardApiKey(user.apiKey, 'not-the-secret-at-all'));
      expect(wrongSecret.syncError.code).toBe('AUTH_REVOKED');
      expect(wrongSecret.message).not.toContain('not-the-secret-at-all');
      const wrongPartner = adapterFor(sandbox, { clientSecret: 'not-the-partner-secret' });
      const partnerError = await failure(() => orion.connectWithoutUser(wrongPartner, sandbox, OWNER));
      expect(partnerError.syncError.code).toBe('AUTH_REVOKED');
      expect(partnerError.message).not.toContain('not-the-partner-secret');
    });

    it('does not offer the authorization-code flow', async () => {
      expect(adapter.authMethod).toBe('api_key');
      expect((await failure(() => adapter.beginAuthorization('http://127.0.0.1/callback'))).syncError.code).toBe('UNSUPPORTED');
    });

    it('calls without a session, or with a bearer token in place of one, answer 401 with the Web API body', async () => {
      const { holder } = await connect(sandbox, adapter);
      for (const authorization of [undefined, `Bearer ${holder.credentials.accessToken}`]) {
        const response = await fetch(`${sandbox.url}/api/v1/Portfolio/Accounts`, { headers: authorization ? { authorization } : {} });
        expect(response.status).toBe(401);
        expect(await response.json()).toEqual({ Message: 'Authorization has been denied for this request.' });
      }
    });
  });

  describe('fetch, compared with the sandbox truth', () => {
    let connection: PlatformConnection;
    beforeAll(async () => {
      ({ connection } = await connect(sandbox, adapter));
    });

    it('serves pages in Orion\'s shape: bare arrays, camelCase fields, numbers as JSON numbers', async () => {
      const { holder } = await connect(sandbox, adapter);
      const get = async (path: string) => {
        const response = await fetch(`${sandbox.url}/api/v1${path}`, { headers: { authorization: `Session ${holder.credentials.accessToken}`, accept: 'application/json' } });
        expect(response.status).toBe(200);
        return (await response.json()) as unknown[];
      };
      for (const account of await get('/Portfolio/Accounts')) OrionAccountSchema.parse(account);
      const assets = await get(`/Portfolio/Assets?accountId=${accountId}&includeCostBasis=true&$top=25&$skip=25`);
      expect(assets).toHaveLength(25);
      for (const asset of assets) OrionAssetSchema.parse(asset);
      for (const asset of await get(`/Portfolio/Assets/Verbose?accountId=${smallId}`)) OrionVerboseAssetSchema.parse(asset);
      for (const transaction of await get(`/Portfolio/Transactions?accountId=${accountId}&$top=50`)) OrionTransactionSchema.parse(transaction);
      for (const period of await get(`/Reporting/Performance?accountId=${accountId}`)) OrionPerformanceSchema.parse(period);
      expect(await get(`/Portfolio/Assets?accountId=${accountId}&$skip=150`)).toEqual([]);
    });

    it('the fast mapping path agrees with the schema path on every record served and on edge cases', async () => {
      const { holder } = await connect(sandbox, adapter);
      const get = async (path: string) =>
        (await (await fetch(`${sandbox.url}/api/v1${path}`, { headers: { authorization: `Session ${holder.credentials.accessToken}`, accept: 'application/json' } })).json()) as Record<string, unknown>[];
      const assets = await get(`/Portfolio/Assets?accountId=${accountId}&includeCostBasis=true&$top=5000`);
      const transactions = await get(`/Portfolio/Transactions?accountId=${accountId}&$top=5000`);
      const asset = assets[0]!;
      const transaction = transactions.find((candidate) => candidate.financialType === 'Buy')!;
      const assetVariants = [
        ...assets,
        { ...asset, id: 42, accountId: 7, ticker: ' aapl ', currentShares: '12.50', costBasis: null, currency: null },
        { ...asset, currentShares: 1e-7, currentValue: 1e21, asOfDate: '2025-06-30' },
        { ...asset, currentShares: ' 3 ', cusip: '', isin: null, ticker: 'msft' },
        { ...asset, cusip: '037833101' },
        { ...asset, ticker: null, cusip: null, isin: null },
        { ...asset, currency: 'usd' },
        { ...asset, asOfDate: '2025-02-30T00:00:00' },
        { ...asset, id: '' },
        { ...asset, name: '' },
        { ...asset, isCustodialCash: true, productType: 'Cash' },
      ];
      for (const variant of assetVariants) expect(mapAsset(variant), String(variant.id)).toEqual(checkedAsset(variant));
      const transactionVariants = [
        ...transactions,
        { ...transaction, transAmount: -0, noUnits: -5, settleDate: null, transactionDescription: '  ' },
        { ...transaction, transAmount: '100.10', navPrice: null, ticker: null, cusip: null, isin: null },
        { ...transaction, status: 'Unknown' },
        { ...transaction, financialType: 'Mystery', type: 'Withdrawal' },
        { ...transaction, transDate: 'yesterday' },
        { ...transaction, ticker: 'brk.b', cusip: null, isin: ' us0378331005 ' },
        { ...transaction, transactionDescription: 12 },
        { ...transaction, currency: 'ABC' },
      ];
      for (const variant of transactionVariants) expect(mapTransaction(variant), String(variant.id)).toEqual(checkedTransaction(variant));
    });

    it('accounts are the API user\'s accounts', async () => {
      const { records, errors } = await collect(connection.accounts());
      expect(errors).toEqual([]);
      const truth = sandbox.world.accounts(OWNER);
      expect(records.map((record) => record.platformAccountId)).toEqual(truth.map((account) => account.id));
      for (const [index, account] of truth.entries()) {
        expect(records[index]).toMatchObject({ name: account.name, number: account.number, accountType: account.accountType, custodian: account.custodian, currency: account.currency, status: 'open', openedOn: account.openedOn });
        expect(records[index]!.marketValue!.eq(sandbox.world.accountValue(account.id))).toBe(true);
      }
    });

    it('holdings: quantity, price, market value and cost basis equal the truth, with identifiers and classes', async () => {
      const { records, errors } = await collect(connection.holdings(accountId));
      expect(errors).toEqual([]);
      const truth = [...sandbox.world.holdings(accountId)];
      expectHoldingsEqualTruth(records, truth);
      for (const [index, holding] of truth.entries()) {
        const record = records[index]!;
        expect(record.security).toEqual({
          ticker: holding.security.ticker,
          cusip: holding.security.cusip,
          isin: holding.security.isin,
          name: holding.security.name,
          assetClass: holding.security.assetClass,
          securityType: orionSecurityType(holding.security),
        });
        expect(record).toMatchObject({ platformAccountId: accountId, currency: holding.currency, asOf: holding.asOf });
      }
      expect(new Set(records.map((record) => record.currency)).size).toBeGreaterThan(1);
    });

    it('transactions: every field equals the truth, amounts signed from the account\'s side', async () => {
      const { records, errors, cursor } = await collect(connection.transactions(accountId));
      expect(errors).toEqual([]);
      expect(cursor).toMatch(/^orion-changes:\d+$/);
      const truth = [...sandbox.world.transactions(accountId)];
      expect(records.map((record) => record.platformRecordId)).toEqual(truth.map((transaction) => transaction.id));
      for (const [index, transaction] of truth.entries()) {
        const record = records[index]!;
        expect(record).toMatchObject({ type: transaction.type, status: transaction.status, tradeDate: transaction.tradeDate, settleDate: transaction.settleDate, currency: transaction.currency, description: transaction.description });
        expect(record.amount.eq(transaction.amount), transaction.id).toBe(true);
        expect(record.quantity === undefined ? undefined : record.quantity.toFixed()).toBe(transaction.quantity === undefined ? undefined : new Decimal(transaction.quantity).toFixed());
        expect(record.price === undefined ? undefined : record.price.toFixed()).toBe(transaction.price === undefined ? undefined : new Decimal(transaction.price).toFixed());
        expect(record.security === undefined ? undefined : { ticker: record.security.ticker, cusip: record.security.cusip, isin: record.security.isin }).toEqual(
          transaction.security === undefined ? undefined : { ticker: transaction.security.ticker, cusip: transaction.security.cusip, isin: transaction.security.isin },
        );
      }
      expect(new Set(records.map((record) => record.type))).toEqual(new Set(['BUY', 'SELL', 'DIVIDEND', 'INTEREST', 'FEE', 'TRANSFER']));
    });

    it('transactions by trade-date range', async () => {
      const all = [...sandbox.world.transactions(accountId)];
      const from = all[100]!.tradeDate;
      const to = all[200]!.tradeDate;
      const { records } = await collect(connection.transactions(accountId, { from, to }));
      const truth = all.filter((transaction) => transaction.tradeDate >= from && transaction.tradeDate <= to);
      expect(records.map((record) => record.platformRecordId)).toEqual(truth.map((transaction) => transaction.id));
    });

    it('transactions since a cursor: only what was created, amended or cancelled after it, then nothing', async () => {
      const { cursor } = await collect(connection.transactions(smallId));
      const [first, second] = [...sandbox.world.transactions(smallId)];
      sandbox.world.cancelTransaction(smallId, first!.id);
      sandbox.world.amendTransaction(smallId, second!.id, { description: 'Corrected by operations' });
      const bought = sandbox.world.buy(smallId, { ticker: 'SHOP', quantity: '10', price: '98.40' });
      const changed = await collect(connection.transactions(smallId, { since: cursor! }));
      expect(changed.records.map((record) => record.platformRecordId)).toEqual([first!.id, second!.id, bought.id]);
      expect(changed.records[0]!.status).toBe('CANCELLED');
      expect(changed.records[1]!.description).toBe('Corrected by operations');
      expect(changed.records[2]).toMatchObject({ type: 'BUY', currency: 'CAD' });
      expect(changed.records[2]!.amount.eq('-984')).toBe(true);
      const after = await collect(connection.transactions(smallId, { since: changed.cursor! }));
      expect(after.records).toEqual([]);
      expect(after.cursor).toBe(changed.cursor);
    });

    it('performance per period, Orion\'s percent turned into a fraction', async () => {
      const { records, errors } = await collect(connection.performance(accountId));
      expect(errors).toEqual([]);
      const truth = sandbox.world.performance(accountId);
      expect(records.map((record) => record.period)).toEqual(truth.map((period) => period.period));
      for (const [index, period] of truth.entries()) {
        const record = records[index]!;
        expect(record).toMatchObject({ startDate: period.startDate, endDate: period.endDate, currency: period.currency });
        expect(record.returnRate.eq(period.returnRate), period.period).toBe(true);
        expect(record.beginningValue.eq(period.beginningValue) && record.endingValue.eq(period.endingValue) && record.netFlows.eq(period.netFlows), period.period).toBe(true);
      }
      const some = await collect(connection.performance(accountId, ['YTD', 'INCEPTION']));
      expect(some.records.map((record) => record.period)).toEqual(['YTD', 'INCEPTION']);
    });

    it('tax lots from the verbose assets equal the truth and add up to each holding', async () => {
      const { records, errors } = await collect(connection.taxLots(accountId));
      expect(errors).toEqual([]);
      const truth = [...sandbox.world.taxLots(accountId)];
      expect(records.map((record) => record.platformRecordId)).toEqual(truth.map((lot) => lot.id));
      for (const [index, lot] of truth.entries()) {
        const record = records[index]!;
        expect(record).toMatchObject({ holdingRecordId: lot.holdingId, platformAccountId: accountId, acquiredOn: lot.acquiredOn, method: lot.method, term: lot.term, currency: lot.currency });
        expect(record.quantity.eq(lot.quantity) && record.costBasis.eq(lot.costBasis), lot.id).toBe(true);
        expect(record.security.cusip).toBe(lot.security.cusip);
      }
      expect(new Set(records.map((record) => record.term))).toEqual(new Set(['SHORT', 'LONG']));
    });

    it('another owner\'s account is not found', async () => {
      const other = sandbox.world.accounts('someone-else')[0]!.id;
      const error = await failure(() => collect(connection.holdings(other)));
      expect(error.syncError).toMatchObject({ code: 'RECORD_INVALID', retryable: false });
      expect(error.message).toContain(`404: Account '${other}' was not found.`);
    });
  });

  describe('faults', () => {
    let connection: PlatformConnection;
    beforeAll(async () => {
      ({ connection } = await connect(sandbox, adapter));
    });

    it('429 with Retry-After: the adapter waits as asked and completes', async () => {
      const before = sandbox.faults.applied('rate_limit');
      sandbox.faults.enqueue({ kind: 'rate_limit', retryAfterSeconds: 1 }, { pathPrefix: '/api/v1/Portfolio/Assets' });
      const started = Date.now();
      const { records } = await collect(connection.holdings(accountId));
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(sandbox.faults.applied('rate_limit')).toBe(before + 1);
      expectHoldingsEqualTruth(records, [...sandbox.world.holdings(accountId)]);
    });

    it('500 and 503 are retried', async () => {
      sandbox.faults.enqueue('server_error', { pathPrefix: '/api/v1/Portfolio/Transactions' });
      sandbox.faults.enqueue({ kind: 'unavailable', retryAfterSeconds: 0 }, { pathPrefix: '/api/v1/Portfolio/Transactions' });
      const { records } = await collect(connection.transactions(smallId));
      expect(records).toHaveLength(sandbox.world.transactionsCount(smallId));
    });

    it('a persistent outage ends in PLATFORM_UNAVAILABLE after the retries, and the breaker then fails fast', async () => {
      const brittle = adapterFor(sandbox, { breaker: { consecutiveFailures: 4, halfOpenAfterMs: 60_000 } });
      const { connection: brittleConnection } = await connect(sandbox, brittle);
      sandbox.faults.enqueue('unavailable', { pathPrefix: '/api/v1/Reporting', times: 4 });
      const outage = await failure(() => collect(brittleConnection.performance(accountId)));
      expect(outage.syncError).toMatchObject({ code: 'PLATFORM_UNAVAILABLE', retryable: true });
      const started = Date.now();
      const open = await failure(() => collect(brittleConnection.performance(accountId)));
      expect(open.syncError.code).toBe('PLATFORM_UNAVAILABLE');
      expect(open.message).toContain('circuit open');
      expect(Date.now() - started).toBeLessThan(500);
    });

    it('a response slower than the timeout is retried; one that stays slow ends in TIMEOUT', async () => {
      const impatient = adapterFor(sandbox, { timeoutMs: 300 });
      const { connection: impatientConnection } = await connect(sandbox, impatient);
      sandbox.faults.enqueue({ kind: 'slow', delayMs: 1000 }, { pathPrefix: '/api/v1/Reporting' });
      expect((await collect(impatientConnection.performance(accountId))).records.length).toBeGreaterThan(0);
      sandbox.faults.enqueue({ kind: 'slow', delayMs: 1000 }, { pathPrefix: '/api/v1/Reporting', times: 4 });
      expect((await failure(() => collect(impatientConnection.performance(accountId)))).syncError.code).toBe('TIMEOUT');
    });

    it('a reset connection is retried', async () => {
      sandbox.faults.enqueue('connection_reset', { pathPrefix: '/api/v1/Portfolio/Assets' });
      expectHoldingsEqualTruth((await collect(connection.holdings(accountId))).records, [...sandbox.world.holdings(accountId)]);
      expect(sandbox.faults.applied('connection_reset')).toBeGreaterThan(0);
    });

    it('an expired session is refreshed with the single-use refresh token, transparently', async () => {
      const { holder, connection: fresh } = await connect(sandbox, adapter);
      const spent = holder.credentials.refreshToken!;
      sandbox.faults.enqueue('expire_token', { pathPrefix: '/api/v1/Portfolio/Assets' });
      expectHoldingsEqualTruth((await collect(fresh.holdings(accountId))).records, [...sandbox.world.holdings(accountId)]);
      expect(holder.replacements).toBe(1);
      expect(holder.credentials.refreshToken).not.toBe(spent);
      expect((await token(sandbox, `Bearer ${spent}`)).status).toBe(401);
    });

    it('a revoked user ends in AUTH_REVOKED without looping, also on the next call', async () => {
      const owner = 'orion-revoked-user';
      const revokedAccount = sandbox.world.addAccount({ ownerId: owner, holdings: 3, transactions: 3 }).id;
      const { holder, connection: doomed } = await connect(sandbox, adapter, owner);
      sandbox.faults.enqueue('revoke_token', { pathPrefix: '/api/v1/Portfolio/Assets' });
      const refusedBefore = sandbox.sessions.refusedRefreshes();
      const error = await failure(() => collect(doomed.holdings(revokedAccount)));
      expect(error.syncError).toMatchObject({ code: 'AUTH_REVOKED', retryable: false });
      expect(sandbox.sessions.refusedRefreshes() - refusedBefore).toBe(1);
      expect((await failure(() => collect(doomed.holdings(revokedAccount)))).syncError.code).toBe('AUTH_REVOKED');
      expect(sandbox.sessions.refusedRefreshes() - refusedBefore).toBe(1);
      expect(holder.replacements).toBe(0);
      const user = sandboxApiUser(owner);
      expect((await token(sandbox, `Basic ${Buffer.from(`${user.apiKey}:${user.apiSecret}`).toString('base64')}`)).status).toBe(401);
    });

    it('a malformed record in a page becomes one SyncError naming it; the rest is delivered', async () => {
      sandbox.faults.enqueue('malformed_record', { pathPrefix: '/api/v1/Portfolio/Assets' });
      const { records, errors } = await collect(connection.holdings(accountId));
      const truth = [...sandbox.world.holdings(accountId)];
      expect(errors).toHaveLength(1);
      const broken = truth[20]!.id;
      expect(errors[0]!.error).toMatchObject({ recordId: broken, code: 'RECORD_INVALID', retryable: false });
      expect(errors[0]!.error.message).toContain('currentShares');
      expectHoldingsEqualTruth(records, truth.filter((holding) => holding.id !== broken));
    });

    it('a record served on two pages is delivered once', async () => {
      sandbox.faults.enqueue('duplicate_record', { pathPrefix: '/api/v1/Portfolio/Transactions', times: 3 });
      const { records } = await collect(connection.transactions(accountId));
      expect(sandbox.faults.applied('duplicate_record')).toBeGreaterThanOrEqual(3);
      expect(records.map((record) => record.platformRecordId)).toEqual([...sandbox.world.transactions(accountId)].map((transaction) => transaction.id));
    });

    it('records inserted while paging are neither lost nor duplicated', async () => {
      const owner = 'orion-inserts';
      const growing = sandbox.world.addAccount({ ownerId: owner, holdings: 100, transactions: 100 }).id;
      const { connection: paging } = await connect(sandbox, adapter, owner);
      sandbox.faults.enqueue('insert_while_paging', { pathPrefix: '/api/v1/Portfolio/Assets', times: 2 });
      sandbox.faults.enqueue('insert_while_paging', { pathPrefix: '/api/v1/Portfolio/Transactions', times: 2 });
      const holdings = await collect(paging.holdings(growing));
      expect(sandbox.world.holdingsCount(growing)).toBe(102);
      expectHoldingsEqualTruth(holdings.records, [...sandbox.world.holdings(growing)]);
      const transactions = await collect(paging.transactions(growing));
      expect(transactions.records.map((record) => record.platformRecordId)).toEqual([...sandbox.world.transactions(growing)].map((transaction) => transaction.id));
      expect(transactions.records).toHaveLength(102);
    });

    it('a session that expires in the middle of a paged fetch is refreshed, without duplicates or gaps', async () => {
      const { holder, connection: fresh } = await connect(sandbox, adapter);
      const seen: string[] = [];
      for await (const item of fresh.transactions(accountId)) {
        if (item.kind !== 'record') continue;
        seen.push(item.record.platformRecordId);
        if (seen.length === 60) sandbox.tokens.expireAll(OWNER);
      }
      expect(holder.replacements).toBe(1);
      expect(seen).toEqual([...sandbox.world.transactions(accountId)].map((transaction) => transaction.id));
    });
  });

  describe('refresh tokens and rotation', () => {
    it('a refresh token works once: spent, it answers 401', async () => {
      const credentials = await orion.connectWithoutUser(adapter, sandbox, OWNER);
      const first = await token(sandbox, `Bearer ${credentials.refreshToken}`);
      expect(first.status).toBe(200);
      const renewed = (await first.json()) as { access_token: string; expires_in: number; refresh_token: string };
      expect(renewed.expires_in).toBe(36_000);
      expect(renewed.refresh_token).not.toBe(credentials.refreshToken);
      expect((await token(sandbox, `Bearer ${credentials.refreshToken}`)).status).toBe(401);
      expect((await token(sandbox, `Bearer ${renewed.refresh_token}`)).status).toBe(200);
    });

    it('two connections sharing one credential refresh once: the loser loads the winner\'s token instead of spending a new one', async () => {
      const credentials = await orion.connectWithoutUser(adapter, sandbox, OWNER);
      const holder = new MemoryHolder(credentials);
      const [one, two] = [adapterFor(sandbox).open(holder), adapterFor(sandbox).open(holder)];
      sandbox.tokens.expireAll(OWNER);
      const refusedBefore = sandbox.sessions.refusedRefreshes();
      const [a, b] = await Promise.all([collect(one.holdings(smallId)), collect(two.holdings(smallId))]);
      expect(a.records).toHaveLength(sandbox.world.holdingsCount(smallId));
      expect(b.records).toHaveLength(sandbox.world.holdingsCount(smallId));
      expect(holder.replacements).toBe(1);
      expect(sandbox.sessions.refusedRefreshes() - refusedBefore).toBeLessThanOrEqual(1);
      expect((await token(sandbox, `Bearer ${holder.credentials.refreshToken}`)).status).toBe(200);
    });

    it('a refresh token lost after being spent is replaced by logging in again with the key and secret', async () => {
      const credentials = await orion.connectWithoutUser(adapter, sandbox, OWNER);
      expect((await token(sandbox, `Bearer ${credentials.refreshToken}`)).status).toBe(200);
      const holder = new MemoryHolder(credentials);
      sandbox.tokens.expireAll(OWNER);
      expect((await collect(adapter.open(holder).holdings(smallId))).records).toHaveLength(sandbox.world.holdingsCount(smallId));
      expect(holder.credentials.refreshToken).not.toBe(credentials.refreshToken);
      expect(holder.credentials.grantedAt).toBe(credentials.grantedAt);
    });

    it('30 days after the grant the credentials are rotated: a new login with the key and secret', async () => {
      const credentials = await orion.connectWithoutUser(adapter, sandbox, OWNER);
      const holder = new MemoryHolder(credentials);
      const later = Date.now() + 31 * DAY_MS;
      const future = adapterFor(sandbox, { now: () => later });
      expect((await collect(future.open(holder).accounts())).records.length).toBe(2);
      expect(holder.replacements).toBe(1);
      expect(holder.credentials.grantedAt).toBe(later);
      expect(holder.credentials.accessToken).not.toBe(credentials.accessToken);
      expect(holder.credentials).toMatchObject({ apiKey: credentials.apiKey, apiSecret: credentials.apiSecret });
      // A rotation is a login, not a refresh: the old refresh token was never spent.
      expect((await token(sandbox, `Bearer ${credentials.refreshToken}`)).status).toBe(200);
    });
  });

  describe('push', () => {
    let connection: PlatformConnection;
    beforeAll(async () => {
      ({ connection } = await connect(sandbox, adapter));
    });

    it('accepted trade, rebalance and override are readable from the sandbox; a repeated clientRef is idempotent', async () => {
      const holding = [...sandbox.world.holdings(accountId)][0]!;
      const trade = await connection.push({ kind: 'trade', clientRef: 'ref-trade-1', platformAccountId: accountId, side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('12.5'), orderType: 'LIMIT', limitPrice: new Decimal('190.25') });
      const rebalance = await connection.push({
        kind: 'rebalance',
        clientRef: 'ref-rebalance-1',
        platformAccountId: accountId,
        targets: [
          { security: { ticker: 'VTI' }, weight: new Decimal('0.6') },
          { security: { ticker: 'BND' }, weight: new Decimal('0.4') },
        ],
      });
      const override = await connection.push({ kind: 'manual_override', clientRef: 'ref-override-1', platformAccountId: accountId, platformRecordId: holding.id, field: 'price', value: new Decimal('101.5'), reason: 'custodian feed stale' });
      for (const receipt of [trade, rebalance, override]) expect(receipt.status).toBe('accepted');
      const pushes = sandbox.world.pushes().filter((push) => push.platform === 'orion');
      const byReference = new Map(pushes.map((push) => [push.reference, push]));
      expect(byReference.get(trade.status === 'accepted' ? trade.platformReference : '')!.body).toMatchObject({ kind: 'trade', accountId, action: 'Buy', ticker: 'AAPL', quantity: 12.5, orderType: 'Limit', limitPrice: 190.25 });
      expect(byReference.get(rebalance.status === 'accepted' ? rebalance.platformReference : '')!.body).toMatchObject({ kind: 'rebalance', targets: [{ ticker: 'VTI', targetPercent: 60 }, { ticker: 'BND', targetPercent: 40 }] });
      expect(byReference.get(override.status === 'accepted' ? override.platformReference : '')!.body).toMatchObject({ kind: 'manual_override', assetId: holding.id, field: 'Price', value: 101.5, reason: 'custodian feed stale' });
      const again = await connection.push({ kind: 'trade', clientRef: 'ref-trade-1', platformAccountId: accountId, side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('12.5'), orderType: 'LIMIT', limitPrice: new Decimal('190.25') });
      expect(again).toEqual(trade);
      expect(sandbox.world.pushes().filter((push) => push.platform === 'orion')).toHaveLength(pushes.length);
    });

    it('invalid instructions are refused with Orion\'s own words and nothing is recorded', async () => {
      const before = sandbox.world.pushes().length;
      const refusals = await Promise.all([
        connection.push({ kind: 'trade', clientRef: 'bad-1', platformAccountId: accountId, side: 'SELL', security: { ticker: 'ZZZZZZ' }, quantity: new Decimal('1'), orderType: 'MARKET' }),
        connection.push({ kind: 'trade', clientRef: 'bad-2', platformAccountId: accountId, side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('0'), orderType: 'MARKET' }),
        connection.push({ kind: 'trade', clientRef: 'bad-3', platformAccountId: accountId, side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('1'), orderType: 'LIMIT' }),
        connection.push({ kind: 'rebalance', clientRef: 'bad-4', platformAccountId: accountId, targets: [{ security: { ticker: 'VTI' }, weight: new Decimal('0.7') }] }),
        connection.push({ kind: 'manual_override', clientRef: 'bad-5', platformAccountId: accountId, platformRecordId: `${accountId}-H9999`, field: 'quantity', value: new Decimal('3'), reason: 'x' }),
        connection.push({ kind: 'trade', clientRef: 'bad-6', platformAccountId: sandbox.world.accounts('someone-else')[0]!.id, side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('1'), orderType: 'MARKET' }),
      ]);
      const messages = refusals.map((receipt) => {
        expect(receipt.status).toBe('rejected');
        return receipt.status === 'rejected' ? receipt.message : '';
      });
      expect(messages[0]).toContain("Product 'ZZZZZZ' was not found.");
      expect(messages[1]).toContain('The quantity must be greater than zero.');
      expect(messages[2]).toContain('A Limit order needs a limitPrice.');
      expect(messages[3]).toContain('The targets must add up to 100 percent; they add up to 70.');
      expect(messages[4]).toContain('was not found in account');
      expect(messages[5]).toContain('was not found');
      expect(sandbox.world.pushes().length).toBe(before);
    });
  });

  it('Orion sends no data webhooks: a delivery, even one signed like the sandboxes sign, is refused', () => {
    const body = JSON.stringify({ accountId, dataType: 'transactions', recordIds: ['x'] });
    const signature = signWebhook(body, 'any-secret-of-sixteen', Math.floor(Date.now() / 1000));
    const run = () => adapter.parseWebhook(body, { 'x-sandbox-signature': signature });
    expect(run).toThrow(PlatformError);
    try {
      run();
    } catch (error) {
      expect((error as PlatformError).syncError.code).toBe('UNSUPPORTED');
    }
  });

  it('the sandbox enforces 1,000 requests a minute per API user (window scaled down)', async () => {
    const limited = await startOrionSandbox({ seed: 'orion-limit', rateLimitScale: 0.25 });
    try {
      limited.world.addAccount({ ownerId: OWNER, holdings: 1, transactions: 1 });
      const credentials = await orion.connectWithoutUser(adapterFor(limited), limited, OWNER);
      let refused: Response | undefined;
      let sent = 0;
      while (refused === undefined && sent < 2100) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, () => fetch(`${limited.url}/api/v1/Portfolio/Accounts`, { headers: { authorization: `Session ${credentials.accessToken}` } })),
        );
        sent += batch.length;
        refused = batch.find((response) => response.status === 429);
        await Promise.all(batch.map((response) => response.body?.cancel()));
      }
      expect(refused?.status).toBe(429);
      expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(sent).toBeGreaterThan(1000);
      // Another API user has a window of its own.
      const other = await orion.connectWithoutUser(adapterFor(limited), limited, 'orion-other-user');
      expect((await fetch(`${limited.url}/api/v1/Portfolio/Accounts`, { headers: { authorization: `Session ${other.accessToken}` } })).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('a 50,000-holding account streams through the adapter with peak memory growth under 150 MB', async () => {
    const owner = 'orion-large';
    const large = sandbox.world.addAccount({ ownerId: owner, holdings: 50_000, transactions: 0 }).id;
    const { connection } = await connect(sandbox, adapterFor(sandbox, { timeoutMs: 30_000 }), owner);
    global.gc?.();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    let count = 0;
    let last = '';
    for await (const item of connection.holdings(large)) {
      if (item.kind !== 'record') throw new Error(`unexpected ${item.kind}`);
      count++;
      last = item.record.platformRecordId;
      if (count % 1000 === 0) {
        const usage = process.memoryUsage();
        peakRss = Math.max(peakRss, usage.rss);
        peakHeap = Math.max(peakHeap, usage.heapUsed);
      }
    }
    expect(count).toBe(50_000);
    expect(last).toBe(`${large}-H50000`);
    expect((peakRss - baseline.rss) / 1_048_576).toBeLessThan(150);
    expect((peakHeap - baseline.heapUsed) / 1_048_576).toBeLessThan(150);
  }, 120_000);
});

describe('Orion mapping', () => {
  const asset = {
    id: 7001,
    accountId: 55,
    name: 'Apple Inc.',
    ticker: 'aapl',
    cusip: '037833100',
    currentShares: 10,
    currentPrice: 189.84,
    currentValue: 1898.4,
    costBasis: 1500,
    assetClass: 'Large Cap Equity',
    productType: 'StockOrETF',
    isCustodialCash: false,
    asOfDate: '2025-06-30T00:00:00',
  };

  it('takes integer ids as text, upper-cases tickers and defaults the currency to dollars', () => {
    const mapped = mapAsset(asset);
    expect(mapped.kind).toBe('record');
    if (mapped.kind !== 'record') return;
    expect(mapped.record).toMatchObject({ platformRecordId: '7001', platformAccountId: '55', currency: 'USD', asOf: '2025-06-30', security: { ticker: 'AAPL', assetClass: 'equity', securityType: 'stock' } });
    expect(mapped.record.marketValue.eq('1898.4')).toBe(true);
  });

  it('a bad CUSIP is IDENTIFIER_INVALID, an unknown currency CURRENCY_NOT_SUPPORTED, a non-number RECORD_INVALID', () => {
    expect(mapAsset({ ...asset, cusip: '037833101' })).toMatchObject({ kind: 'error', error: { recordId: '7001', code: 'IDENTIFIER_INVALID' } });
    expect(mapAsset({ ...asset, currency: 'ABC' })).toMatchObject({ kind: 'error', error: { recordId: '7001', code: 'CURRENCY_NOT_SUPPORTED' } });
    expect(mapAsset({ ...asset, currentPrice: 'N/A' })).toMatchObject({ kind: 'error', error: { recordId: '7001', code: 'RECORD_INVALID', message: expect.stringContaining('currentPrice') } });
    expect(mapAsset('not a record', 'asset#3')).toMatchObject({ kind: 'error', error: { recordId: 'asset#3', code: 'RECORD_INVALID' } });
  });

  it('signs unsigned amounts by financial type and refuses an unknown one', () => {
    const transaction = { id: 1, accountId: 55, transDate: '2025-01-02T00:00:00', transAmount: 250.5, status: 'Complete', currency: 'USD' };
    const amountOf = (financialType: string) => {
      const mapped = mapTransaction({ ...transaction, financialType });
      return mapped.kind === 'record' ? mapped.record.amount.toFixed() : mapped.kind;
    };
    expect(['Contribution', 'Distribution', 'DivReinvest', 'DivCash', 'MgmntFees', 'Buy', 'Sell'].map(amountOf)).toEqual(['250.5', '-250.5', '250.5', '250.5', '-250.5', '-250.5', '250.5']);
    expect(mapTransaction({ ...transaction, financialType: 'StockSplit', type: 'Split' })).toMatchObject({ kind: 'error', error: { recordId: '1', code: 'RECORD_INVALID' } });
    expect(mapTransaction({ ...transaction, financialType: 'Buy', status: 'Reversed' })).toMatchObject({ kind: 'record', record: { status: 'CANCELLED', type: 'BUY' } });
  });

  it('verbose assets: sold lots are skipped, a broken lot is an error of its own, terms follow the holding-period date', () => {
    const results = mapVerboseAsset({
      ...asset,
      taxLots: [
        { id: 1, acquiredDate: '2024-06-30T00:00:00', holdingPeriodDate: '2024-06-30T00:00:00', costAmount: 700, numberOfUnits: 5, method: 'FIFO' },
        { id: 2, acquiredDate: '2025-01-15T00:00:00', costAmount: 800, numberOfUnits: 5, method: 'AverageCost' },
        { id: 3, acquiredDate: '2023-01-15T00:00:00', sellDate: '2024-01-15T00:00:00', costAmount: 100, numberOfUnits: 1, method: 'FIFO', proceedAmount: 150 },
        { id: 4, acquiredDate: '2023-01-15T00:00:00', costAmount: 100, numberOfUnits: 1, method: 'HIFO' },
      ],
    });
    expect(results.map((result) => (result.kind === 'record' ? [result.record.platformRecordId, result.record.term, result.record.method] : [result.kind === 'error' ? result.error.recordId : '']))).toEqual([
      ['1', 'SHORT', 'FIFO'],
      ['2', 'SHORT', 'AVERAGE_COST'],
      ['4'],
    ]);
    expect(lotTerm('2024-06-29', '2025-06-30')).toBe('LONG');
    expect(lotTerm('2024-06-30', '2025-06-30')).toBe('SHORT');
  });
});
