import { Decimal } from 'decimal.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blackDiamond, SANDBOX_CLIENT_ID, SANDBOX_REDIRECT_URI, SANDBOX_SUBSCRIPTION_KEY, SANDBOX_WEBHOOK_SECRET } from '../../src/adapters/platforms/black-diamond/index.ts';
import { readZip } from '../../src/adapters/platforms/black-diamond/zip.ts';
import { PRICE_DECIMALS, checkedHolding, checkedTransaction, mapHolding, mapTransaction } from '../../src/adapters/platforms/black-diamond/mapping.ts';
import { signWebhook, type RunningSandbox } from '../../src/adapters/platforms/sandbox-kit/index.ts';
import { minorUnits } from '../../src/domain/money/minor-units.ts';
import type { HoldingRecord, TransactionRecord } from '../../src/domain/platforms/records.ts';
import { PlatformError, type PlatformAdapter, type PlatformConnection } from '../../src/ports/platform-adapter.ts';
import { eventually } from '../support/eventually.ts';
import { MemoryHolder, collect, failure, platformTestKit } from '../support/platforms.ts';

const OWNER = 'bd-user-1';
const { adapterFor, connect } = platformTestKit(blackDiamond, { owner: OWNER });

/** The price is market value / units; the truth's market value is rounded to the currency's minor unit. */
function expectPriceConsistent(record: HoldingRecord, truthPrice: string, currency: string): void {
  const tolerance = new Decimal(10).pow(-minorUnits(currency)).div(2).div(record.quantity).plus(new Decimal(10).pow(-PRICE_DECIMALS));
  expect(record.price.minus(truthPrice).abs().lte(tolerance), `${record.platformRecordId}: ${record.price.toFixed()} vs ${truthPrice}`).toBe(true);
}

describe('Black Diamond sandbox and adapter', () => {
  let sandbox: RunningSandbox;
  let adapter: PlatformAdapter;
  let accountId: string;
  let smallId: string;

  beforeAll(async () => {
    sandbox = await blackDiamond.startSandbox({ seed: 'bd-test', autoApprove: true });
    accountId = sandbox.world.addAccount({ ownerId: OWNER, holdings: 1200, transactions: 2500, currency: 'USD' }).id;
    smallId = sandbox.world.addAccount({ ownerId: OWNER, holdings: 40, transactions: 60, currency: 'EUR' }).id;
    sandbox.world.addAccount({ ownerId: 'someone-else', holdings: 5, transactions: 5 });
    adapter = adapterFor(sandbox, { pageSize: 500 });
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  describe('connect', () => {
    it('builds an authorization URL with state and a PKCE S256 challenge and exchanges the code for credentials', async () => {
      const start = await adapter.beginAuthorization(SANDBOX_REDIRECT_URI);
      const url = new URL(start.authorizationUrl);
      expect(url.pathname).toBe('/connect/authorize');
      expect(url.searchParams.get('client_id')).toBe(SANDBOX_CLIENT_ID);
      expect(url.searchParams.get('state')).toBe(start.state);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);

      const credentials = await blackDiamond.connectWithoutUser(adapter, sandbox, OWNER);
      expect(credentials.refreshToken).toBeDefined();
      expect(credentials.accessTokenExpiresAt - Date.now()).toBeGreaterThan(55 * 60_000);
      expect(credentials.accessTokenExpiresAt - Date.now()).toBeLessThanOrEqual(60 * 60_000);
      expect(credentials.refreshTokenExpiresAt! - Date.now()).toBeGreaterThan(364 * 86_400_000);
    });

    it('completes through the consent page when the sandbox does not approve by itself', async () => {
      const manual = await blackDiamond.startSandbox({ seed: 'bd-consent' });
      try {
        manual.world.addAccount({ ownerId: OWNER, holdings: 2, transactions: 2 });
        const manualAdapter = adapterFor(manual);
        const start = await manualAdapter.beginAuthorization(SANDBOX_REDIRECT_URI);
        const page = await fetch(start.authorizationUrl);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('Approve');
        const { connection } = await connect(manual, manualAdapter);
        expect((await collect(connection.accounts())).records).toHaveLength(1);
      } finally {
        await manual.close();
      }
    });

    it('refuses a callback whose state is not the one the flow started with', async () => {
      const start = await adapter.beginAuthorization(SANDBOX_REDIRECT_URI);
      const url = new URL(start.authorizationUrl);
      url.searchParams.set('login_hint', OWNER);
      const response = await fetch(url, { redirect: 'manual' });
      const callbackUrl = new URL(response.headers.get('location')!);
      callbackUrl.searchParams.set('state', 'forged-state');
      const error = await failure(() =>
        adapter.completeAuthorization({ callbackUrl: callbackUrl.toString(), expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri: SANDBOX_REDIRECT_URI }),
      );
      expect(error.syncError.code).toBe('AUTH_REVOKED');
      expect(error.message).toContain('state');
    });

    it('refuses a client with a wrong secret, and never repeats the secret', async () => {
      const wrong = adapterFor(sandbox, { clientSecret: 'not-the-secret-at-all' });
      const error = await failure(() => blackDiamond.connectWithoutUser(wrong, sandbox, OWNER));
      expect(error.syncError.code).toBe('AUTH_REVOKED');
      expect(error.message).not.toContain('not-the-secret-at-all');
    });

    it('needs the subscription key on every call: missing or wrong answers 401 with the platform error body', async () => {
      const { holder } = await connect(sandbox, adapter);
      const token = holder.credentials.accessToken;
      const attempts: Record<string, string>[] = [{ authorization: `Bearer ${token}` }, { authorization: `Bearer ${token}`, 'ocp-apim-subscription-key': 'wrong-key' }];
      for (const headers of attempts) {
        const response = await fetch(`${sandbox.url}/account/Query/PerformanceSearch`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ accountID: accountId }),
        });
        expect(response.status).toBe(401);
        const body = (await response.json()) as Record<string, unknown>;
        expect(body).toEqual({ message: expect.stringContaining('subscription key'), code: expect.any(String), correlationID: expect.any(String) });
      }
      const wrongKey = adapterFor(sandbox, { subscriptionKey: 'wrong-key' });
      const error = await failure(() => collect(wrongKey.open(holder).performance(accountId)));
      expect(error.syncError.code).toBe('AUTH_REVOKED');
      expect(error.message).toContain('subscription key');
    });
  });

  describe('fetch, compared with the sandbox truth', () => {
    let connection: PlatformConnection;
    beforeAll(async () => {
      ({ connection } = await connect(sandbox, adapter));
    });

    it('accounts (through the batchV5 zip) are the owner\'s accounts', async () => {
      const { records, errors } = await collect(connection.accounts());
      expect(errors).toEqual([]);
      const truth = sandbox.world.accounts(OWNER);
      expect(records.map((record) => record.platformAccountId)).toEqual(truth.map((account) => account.id));
      for (const [index, account] of truth.entries()) {
        const record = records[index]!;
        expect(record).toMatchObject({ name: account.name, number: account.number, accountType: account.accountType, custodian: account.custodian, currency: account.currency, status: account.status, openedOn: account.openedOn });
        expect(record.marketValue!.eq(sandbox.world.accountValue(account.id))).toBe(true);
      }
    });

    it('holdings: quantities, market values and cost basis equal the truth; prices follow from them', async () => {
      const { records, errors } = await collect(connection.holdings(accountId));
      expect(errors).toEqual([]);
      const truth = [...sandbox.world.holdings(accountId)];
      expect(records).toHaveLength(truth.length);
      for (const [index, holding] of truth.entries()) {
        const record = records[index]!;
        expect(record.platformRecordId).toBe(holding.id);
        expect(record.platformAccountId).toBe(accountId);
        expect(record.security).toMatchObject({ ticker: holding.security.ticker, cusip: holding.security.cusip, isin: holding.security.isin, name: holding.security.name, assetClass: holding.security.assetClass, securityType: holding.security.securityType });
        expect(record.quantity.eq(holding.quantity), holding.id).toBe(true);
        expect(record.marketValue.eq(holding.marketValue), holding.id).toBe(true);
        expect(record.costBasis!.eq(holding.costBasis), holding.id).toBe(true);
        expect(record.currency).toBe(holding.currency);
        expect(record.asOf).toBe(holding.asOf);
        expectPriceConsistent(record, holding.price, holding.currency);
      }
    });

    it('transactions by date range equal the truth, signs included, and end with a cursor', async () => {
      const from = '2024-01-01';
      const to = '2024-12-31';
      const { records, errors, cursor } = await collect(connection.transactions(accountId, { from, to }));
      expect(errors).toEqual([]);
      expect(cursor).toMatch(/^[0-9]+$/);
      const truth = [...sandbox.world.transactions(accountId, { from, to })];
      expect(truth.length).toBeGreaterThan(100);
      expect(records).toHaveLength(truth.length);
      for (const [index, transaction] of truth.entries()) expectTransaction(records[index]!, transaction);
    });

    it('transactions since a cursor: only what was created or changed after it', async () => {
      const first = await collect(connection.transactions(smallId));
      expect(first.records).toHaveLength(60);
      const bought = sandbox.world.buy(smallId, { ticker: 'AAPL', quantity: '3', price: '190.25' });
      const someId = first.records[10]!.platformRecordId;
      const cancelled = sandbox.world.cancelTransaction(smallId, someId);
      const next = await collect(connection.transactions(smallId, { since: first.cursor! }));
      expect(next.errors).toEqual([]);
      expect(next.records.map((record) => record.platformRecordId).sort()).toEqual([bought.id, cancelled.id].sort());
      expectTransaction(next.records.find((record) => record.platformRecordId === bought.id)!, bought);
      expect(next.records.find((record) => record.platformRecordId === someId)!.status).toBe('CANCELLED');
      const none = await collect(connection.transactions(smallId, { since: next.cursor! }));
      expect(none.records).toEqual([]);
    });

    it('performance for every period equals the truth (returns come in percent, kept as fractions)', async () => {
      const { records, errors } = await collect(connection.performance(accountId));
      expect(errors).toEqual([]);
      const truth = sandbox.world.performance(accountId);
      expect(records.map((record) => record.period)).toEqual(truth.map((row) => row.period));
      for (const [index, row] of truth.entries()) {
        const record = records[index]!;
        expect(record.returnRate.eq(row.returnRate)).toBe(true);
        expect(record.beginningValue.eq(row.beginningValue)).toBe(true);
        expect(record.endingValue.eq(row.endingValue)).toBe(true);
        expect(record.netFlows.eq(row.netFlows)).toBe(true);
        expect(record).toMatchObject({ startDate: row.startDate, endDate: row.endDate, currency: row.currency });
      }
      const some = await collect(connection.performance(accountId, ['YTD', '1Y']));
      expect(some.records.map((record) => record.period)).toEqual(['YTD', '1Y']);
    });

    it('another owner\'s account is not found', async () => {
      const other = sandbox.world.accounts('someone-else')[0]!.id;
      const error = await failure(() => collect(connection.holdings(other)));
      expect(error.syncError).toMatchObject({ code: 'RECORD_INVALID', retryable: false });
      expect(error.message).toContain('404');
    });
  });

  describe('faults', () => {
    let connection: PlatformConnection;
    let holder: MemoryHolder;
    beforeAll(async () => {
      ({ connection, holder } = await connect(sandbox, adapter));
    });

    const holdingsPath = '/account/Query/HoldingDetailSearch';

    async function fetchSmallHoldings(target: PlatformConnection = connection) {
      return collect(target.holdings(smallId));
    }

    it('429 with Retry-After: waits and recovers', async () => {
      sandbox.faults.enqueue({ kind: 'rate_limit', retryAfterSeconds: 1 }, { pathPrefix: holdingsPath });
      const started = Date.now();
      const { records } = await fetchSmallHoldings();
      expect(records).toHaveLength(sandbox.world.holdingsCount(smallId));
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(sandbox.faults.applied('rate_limit')).toBeGreaterThanOrEqual(1);
    });

    it('500 and 503: retried and recovered', async () => {
      sandbox.faults.enqueue('server_error', { pathPrefix: holdingsPath });
      sandbox.faults.enqueue({ kind: 'unavailable', retryAfterSeconds: 0 }, { pathPrefix: holdingsPath });
      const { records } = await fetchSmallHoldings();
      expect(records).toHaveLength(sandbox.world.holdingsCount(smallId));
    });

    it('a persistent outage ends in PLATFORM_UNAVAILABLE after the retries, and the breaker opens', async () => {
      const fragile = adapterFor(sandbox, { breaker: { consecutiveFailures: 4, halfOpenAfterMs: 60_000 } });
      const { connection: fragileConnection } = await connect(sandbox, fragile);
      sandbox.faults.enqueue('server_error', { pathPrefix: holdingsPath, times: 4 });
      const error = await failure(() => fetchSmallHoldings(fragileConnection));
      expect(error.syncError).toMatchObject({ code: 'PLATFORM_UNAVAILABLE', retryable: true });
      const served = sandbox.faults.applied('server_error');
      const open = await failure(() => fetchSmallHoldings(fragileConnection));
      expect(open.syncError.code).toBe('PLATFORM_UNAVAILABLE');
      expect(open.message).toContain('circuit open');
      expect(sandbox.faults.applied('server_error')).toBe(served);
    });

    it('slow past the client timeout: retried; always slow: TIMEOUT', async () => {
      const impatient = adapterFor(sandbox, { timeoutMs: 300, retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 50 } });
      const { connection: impatientConnection } = await connect(sandbox, impatient);
      sandbox.faults.enqueue({ kind: 'slow', delayMs: 800 }, { pathPrefix: holdingsPath });
      expect((await fetchSmallHoldings(impatientConnection)).records).toHaveLength(sandbox.world.holdingsCount(smallId));
      sandbox.faults.enqueue({ kind: 'slow', delayMs: 800 }, { pathPrefix: holdingsPath, times: 2 });
      const error = await failure(() => fetchSmallHoldings(impatientConnection));
      expect(error.syncError.code).toBe('TIMEOUT');
    });

    it('connection reset: retried and recovered', async () => {
      sandbox.faults.enqueue('connection_reset', { pathPrefix: holdingsPath });
      expect((await fetchSmallHoldings()).records).toHaveLength(sandbox.world.holdingsCount(smallId));
      expect(sandbox.faults.applied('connection_reset')).toBeGreaterThanOrEqual(1);
    });

    it('an expired token is refreshed transparently (the refresh token rotates)', async () => {
      const before = holder.credentials;
      sandbox.faults.enqueue('expire_token', { pathPrefix: holdingsPath });
      expect((await fetchSmallHoldings()).records).toHaveLength(sandbox.world.holdingsCount(smallId));
      expect(holder.credentials.accessToken).not.toBe(before.accessToken);
      expect(holder.credentials.refreshToken).not.toBe(before.refreshToken);
      expect(holder.credentials.grantedAt).toBe(before.grantedAt);
    });

    it('a revoked token ends in AUTH_REVOKED without looping', async () => {
      const { connection: doomed, holder: doomedHolder } = await connect(sandbox, adapter, 'bd-revoked-user');
      sandbox.world.addAccount({ ownerId: 'bd-revoked-user', holdings: 3, transactions: 3, id: 'bd-revoked-acct' });
      sandbox.faults.enqueue('revoke_token', { pathPrefix: holdingsPath });
      const error = await failure(() => collect(doomed.holdings('bd-revoked-acct')));
      expect(error.syncError).toMatchObject({ code: 'AUTH_REVOKED', retryable: false });
      const again = await failure(() => collect(doomed.holdings('bd-revoked-acct')));
      expect(again.syncError.code).toBe('AUTH_REVOKED');
      expect(doomedHolder.replacements).toBe(0);
    });

    it('a malformed record in a page: one SyncError naming it, the rest delivered', async () => {
      sandbox.faults.enqueue('malformed_record', { pathPrefix: holdingsPath });
      const { records, errors } = await fetchSmallHoldings();
      expect(errors).toHaveLength(1);
      const error = (errors[0] as { error: { recordId: string; code: string; message: string } }).error;
      expect(error.code).toBe('RECORD_INVALID');
      expect(error.recordId).toMatch(new RegExp(`^${smallId}-H\\d+$`));
      expect(records).toHaveLength(sandbox.world.holdingsCount(smallId) - 1);
      expect(records.some((record) => record.platformRecordId === error.recordId)).toBe(false);
    });

    it('a duplicate record across pages is delivered once', async () => {
      const paged = adapterFor(sandbox, { pageSize: 7 });
      const { connection: pagedConnection } = await connect(sandbox, paged);
      await collect(pagedConnection.holdings(smallId));
      sandbox.faults.enqueue('duplicate_record', { pathPrefix: holdingsPath, times: 3 });
      const { records } = await collect(pagedConnection.holdings(smallId));
      expect(sandbox.faults.applied('duplicate_record')).toBeGreaterThanOrEqual(3);
      const ids = records.map((record) => record.platformRecordId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual([...sandbox.world.holdings(smallId)].map((holding) => holding.id));
    });

    it('records inserted while paging are neither lost nor duplicated', async () => {
      const paged = adapterFor(sandbox, { pageSize: 9 });
      const { connection: pagedConnection } = await connect(sandbox, paged);
      const transactionsPath = '/account/Query/TransactionSearch';
      sandbox.faults.enqueue('insert_while_paging', { pathPrefix: holdingsPath, times: 2 });
      sandbox.faults.enqueue('insert_while_paging', { pathPrefix: transactionsPath, times: 2 });
      const holdings = await collect(pagedConnection.holdings(smallId));
      const transactions = await collect(pagedConnection.transactions(smallId));
      expect(holdings.records.map((record) => record.platformRecordId)).toEqual([...sandbox.world.holdings(smallId)].map((holding) => holding.id));
      expect(transactions.records.map((record) => record.platformRecordId)).toEqual([...sandbox.world.transactions(smallId)].map((transaction) => transaction.id));
    });

    it('token expiry in the middle of a paged fetch: refreshed, no duplicates or gaps', async () => {
      const { connection: paging, holder: pagingHolder } = await connect(sandbox, adapterFor(sandbox, { pageSize: 100 }), OWNER);
      const ids: string[] = [];
      for await (const item of paging.holdings(accountId)) {
        if (item.kind !== 'record') throw new Error('unexpected item');
        ids.push(item.record.platformRecordId);
        if (ids.length === 150) sandbox.tokens.expireAll(OWNER);
      }
      expect(pagingHolder.replacements).toBe(1);
      expect(ids).toEqual([...sandbox.world.holdings(accountId)].map((holding) => holding.id));
    });
  });

  describe('refresh-token rules', () => {
    it('a refresh token is single-use: the rotated-out one is refused', async () => {
      const { holder, connection } = await connect(sandbox, adapter);
      const original = holder.credentials;
      sandbox.tokens.expireToken(original.accessToken);
      await collect(connection.performance(smallId));
      expect(holder.credentials.refreshToken).not.toBe(original.refreshToken);
      const response = await fetch(`${sandbox.url}/connect/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${SANDBOX_CLIENT_ID}:wrong`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: original.refreshToken! }),
      });
      expect(response.status).toBe(401);
      const stale = new MemoryHolder({ ...original, accessTokenExpiresAt: Date.now() - 1 });
      const error = await failure(() => collect(adapter.open(stale).performance(smallId)));
      expect(error.syncError.code).toBe('AUTH_REVOKED');
    });

    it('rotates 30 days after the grant: new tokens and a new grant time', async () => {
      const { holder, connection } = await connect(sandbox, adapter);
      const old = { ...holder.credentials, grantedAt: Date.now() - 31 * 86_400_000 };
      holder.credentials = old;
      await collect(connection.performance(smallId));
      expect(holder.credentials.accessToken).not.toBe(old.accessToken);
      expect(holder.credentials.refreshToken).not.toBe(old.refreshToken);
      expect(Date.now() - holder.credentials.grantedAt).toBeLessThan(60_000);
    });
  });

  describe('push', () => {
    let connection: PlatformConnection;
    beforeAll(async () => {
      ({ connection } = await connect(sandbox, adapter));
    });

    it('accepted instructions are recorded by the platform; a replay answers the same reference', async () => {
      const trade = await connection.push({
        kind: 'trade',
        clientRef: 'bd-trade-1',
        platformAccountId: accountId,
        side: 'BUY',
        security: { ticker: 'MSFT' },
        quantity: new Decimal('12.5'),
        orderType: 'LIMIT',
        limitPrice: new Decimal('410.10'),
      });
      expect(trade.status).toBe('accepted');
      const rebalance = await connection.push({
        kind: 'rebalance',
        clientRef: 'bd-rebalance-1',
        platformAccountId: accountId,
        targets: [
          { security: { ticker: 'AAPL' }, weight: new Decimal('0.6') },
          { security: { ticker: 'MSFT' }, weight: new Decimal('0.4') },
        ],
      });
      expect(rebalance.status).toBe('accepted');
      const holdingId = [...sandbox.world.holdings(accountId, { limit: 1 })][0]!.id;
      const override = await connection.push({ kind: 'manual_override', clientRef: 'bd-override-1', platformAccountId: accountId, platformRecordId: holdingId, field: 'price', value: new Decimal('101.5'), reason: 'custodian statement' });
      expect(override.status).toBe('accepted');

      const pushes = sandbox.world.pushes().filter((push) => push.platform === 'black_diamond');
      const references = [trade, rebalance, override].map((receipt) => (receipt as { platformReference: string }).platformReference);
      expect(pushes.map((push) => push.reference)).toEqual(references);
      expect(pushes[0]!.body).toMatchObject({ externalReference: 'bd-trade-1', accountID: accountId, action: 'Buy', units: '12.5', orderType: 'Limit', limitPrice: '410.1' });
      expect(pushes[1]!.body).toMatchObject({ targets: [{ weightPercent: '60' }, { weightPercent: '40' }] });
      expect(pushes[2]!.body).toMatchObject({ holdingId, field: 'Price', value: '101.5' });

      const replay = await connection.push({ kind: 'trade', clientRef: 'bd-trade-1', platformAccountId: accountId, side: 'BUY', security: { ticker: 'MSFT' }, quantity: new Decimal('12.5'), orderType: 'LIMIT', limitPrice: new Decimal('410.10') });
      expect(replay).toMatchObject({ status: 'accepted', platformReference: references[0] });
      expect(sandbox.world.pushes().filter((push) => push.platform === 'black_diamond')).toHaveLength(3);
    });

    it('invalid instructions are refused with the platform\'s error and not recorded', async () => {
      const before = sandbox.world.pushes().length;
      const receipts = await Promise.all([
        connection.push({ kind: 'rebalance', clientRef: 'bd-bad-1', platformAccountId: accountId, targets: [{ security: { ticker: 'AAPL' }, weight: new Decimal('0.7') }] }),
        connection.push({ kind: 'trade', clientRef: 'bd-bad-2', platformAccountId: accountId, side: 'SELL', security: { ticker: 'NOPE1' }, quantity: new Decimal('1'), orderType: 'MARKET' }),
        connection.push({ kind: 'trade', clientRef: 'bd-bad-3', platformAccountId: accountId, side: 'BUY', security: { cusip: '037833101' }, quantity: new Decimal('1'), orderType: 'MARKET' }),
        connection.push({ kind: 'trade', clientRef: 'bd-bad-4', platformAccountId: accountId, side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('1'), orderType: 'LIMIT' }),
        connection.push({ kind: 'manual_override', clientRef: 'bd-bad-5', platformAccountId: accountId, platformRecordId: 'no-such-holding', field: 'quantity', value: new Decimal('1'), reason: 'x' }),
        connection.push({ kind: 'trade', clientRef: 'bd-bad-6', platformAccountId: 'not-my-account', side: 'BUY', security: { ticker: 'AAPL' }, quantity: new Decimal('1'), orderType: 'MARKET' }),
      ]);
      expect(receipts.map((receipt) => (receipt.status === 'rejected' ? receipt.code : 'accepted'))).toEqual([
        'WeightsDoNotSumTo100',
        'UnknownSecurity',
        'InvalidIdentifier',
        'LimitPriceRequired',
        'HoldingNotFound',
        'AccountNotFound',
      ]);
      for (const receipt of receipts) expect((receipt as { message: string }).message.length).toBeGreaterThan(5);
      expect(sandbox.world.pushes().length).toBe(before);
    });
  });

  describe('webhooks', () => {
    let server: Server;
    const deliveries: { body: string; headers: Record<string, string | undefined> }[] = [];

    beforeAll(async () => {
      server = createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () => {
          deliveries.push({ body: Buffer.concat(chunks).toString('utf8'), headers: Object.fromEntries(Object.entries(request.headers).map(([key, value]) => [key, Array.isArray(value) ? value[0] : value])) });
          response.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('a signed delivery for a new transaction is verified; a forged one is refused', async () => {
      const port = (server.address() as AddressInfo).port;
      sandbox.webhooks.subscribe({ url: `http://127.0.0.1:${port}/bd-hook`, secret: SANDBOX_WEBHOOK_SECRET, accountId: smallId });
      const inserted = sandbox.world.insertTransaction(smallId);
      await eventually(async () => deliveries.length > 0);
      const delivery = deliveries[0]!;
      expect(adapter.parseWebhook(delivery.body, delivery.headers)).toEqual({ deliveryId: (JSON.parse(delivery.body) as { id: string }).id, platformAccountId: smallId, dataType: 'transactions', platformRecordIds: [inserted.id] });

      const forgedBody = delivery.body.replace(inserted.id, `${smallId}-T999999`);
      expect(() => adapter.parseWebhook(forgedBody, delivery.headers)).toThrow(PlatformError);
      const wrongSecret = signWebhook(delivery.body, 'another-secret-entirely', Math.floor(Date.now() / 1000));
      expect(() => adapter.parseWebhook(delivery.body, { ...delivery.headers, 'x-sandbox-signature': wrongSecret })).toThrow(/signature/);
      const stale = signWebhook(delivery.body, SANDBOX_WEBHOOK_SECRET, Math.floor(Date.now() / 1000) - 3600);
      expect(() => adapter.parseWebhook(delivery.body, { ...delivery.headers, 'x-sandbox-signature': stale })).toThrow(/tolerance/);
    });
  });

  it('the sandbox enforces its per-subscription-key rate limit with 429 and Retry-After', async () => {
    const limited = await blackDiamond.startSandbox({ seed: 'bd-limit', autoApprove: true, rateLimitScale: 1 });
    try {
      limited.world.addAccount({ ownerId: OWNER, holdings: 1, transactions: 1, id: 'bd-limit-acct' });
      const credentials = await blackDiamond.connectWithoutUser(adapterFor(limited), limited, OWNER);
      const call = () =>
        fetch(`${limited.url}/account/Query/PerformanceSearch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${credentials.accessToken}`, 'ocp-apim-subscription-key': SANDBOX_SUBSCRIPTION_KEY, 'content-type': 'application/json' },
          body: JSON.stringify({ accountID: 'bd-limit-acct', periods: ['YearToDate'] }),
        });
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let round = 0; round < 25 && refused === undefined; round++) {
        const responses = await Promise.all(Array.from({ length: 40 }, call));
        for (const response of responses) {
          statuses.push(response.status);
          if (response.status === 429 && refused === undefined) refused = response;
          else await response.arrayBuffer();
        }
      }
      expect(refused).toBeDefined();
      expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(600);
      expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused!.json()).toEqual({ message: expect.stringContaining('Rate limit'), code: 'RateLimitExceeded', correlationID: expect.any(String) });
    } finally {
      await limited.close();
    }
  });

  it('the batchV5 download is a zip of JSON files: accounts in files of 250, transactions with the documented fields', async () => {
    const batchOwner = 'bd-batch-user';
    for (let i = 0; i < 260; i++) sandbox.world.addAccount({ ownerId: batchOwner, holdings: 0, transactions: i === 0 ? 30 : 0 });
    const credentials = await blackDiamond.connectWithoutUser(adapter, sandbox, batchOwner);
    const headers = { authorization: `Bearer ${credentials.accessToken}`, 'ocp-apim-subscription-key': SANDBOX_SUBSCRIPTION_KEY };
    const created = await fetch(`${sandbox.url}/batchV5`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ returnDate: '06-30-2025', batchFiles: ['accounts'], includeTransactions: true, includeHoldings: false }),
    });
    const { batchId } = (await created.json()) as { batchId: string };
    const download = await fetch(`${sandbox.url}/batch/${batchId}`, { headers });
    expect(download.headers.get('content-type')).toContain('application/zip');
    const files = [...readZip(Buffer.from(await download.arrayBuffer()))].map((entry) => ({ name: entry.name, rows: JSON.parse(entry.content.toString('utf8')) as Record<string, unknown>[] }));
    expect(files.map((file) => [file.name, file.rows.length])).toEqual([
      ['accounts_0001.json', 250],
      ['accounts_0002.json', 10],
      ['transactions_0001.json', 30],
    ]);
    expect(Object.keys(files[2]!.rows[0]!)).toEqual(expect.arrayContaining(['TransactionID', 'TradeDate', 'MarketValue', 'ExternalFlowAffect']));
    const refused = await fetch(`${sandbox.url}/batchV5`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ returnDate: '2025-06-30', batchFiles: ['accounts'] }) });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ message: expect.stringContaining('returnDate'), code: 'InvalidRequest' });
  });

  it('mapping names what is wrong with a row: identifiers, currency, values; signs and percentages are converted', () => {
    const holding = {
      holdingId: 'h-1',
      accountID: 'a-1',
      asset: { assetId: '1', name: 'Apple Inc.', cusip: '037833100', ticker: 'AAPL', identifier: 'US0378331005', assetClass: 'Equity', securityType: 'Common Stock', currencyCode: 'USD' },
      returnInfo: { units: 3, emv: 10, returnDate: '2025-06-30T00:00:00' },
      costBasis: null,
    };
    const mapped = mapHolding(holding, 'row 0');
    expect(mapped.kind).toBe('record');
    const record = (mapped as { record: HoldingRecord }).record;
    expect(record.price.toFixed()).toBe('3.333333');
    expect(record.costBasis).toBeUndefined();
    expect(record.security).toMatchObject({ assetClass: 'equity', securityType: 'stock' });
    const errorOf = (row: unknown) => (mapHolding(row, 'row 7') as { kind: string; error?: { recordId: string; code: string; message: string } }).error;
    expect(errorOf({ ...holding, asset: { ...holding.asset, cusip: '037833109' } })).toMatchObject({ recordId: 'h-1', code: 'IDENTIFIER_INVALID', message: expect.stringContaining('cusip') });
    expect(errorOf({ ...holding, asset: { ...holding.asset, currencyCode: 'ABC' } })).toMatchObject({ recordId: 'h-1', code: 'CURRENCY_NOT_SUPPORTED' });
    expect(errorOf({ ...holding, returnInfo: { ...holding.returnInfo, emv: 'lots' } })).toMatchObject({ recordId: 'h-1', code: 'RECORD_INVALID' });
    expect(errorOf({ nothing: true })).toMatchObject({ recordId: 'row 7', code: 'RECORD_INVALID' });

    const withdrawal = {
      TransactionID: 't-1', AccountID: 'a-1', TransactionType: 'Transfer', Status: 'Settled', TradeDate: '2025-01-02T00:00:00', SettleDate: null,
      AssetID: null, Ticker: null, Cusip: null, Identifier: null, AssetName: null, AssetClass: null, SecurityType: null,
      Units: null, Price: null, MarketValue: 2500.5, CurrencyCode: 'USD', ExternalFlowAffect: 'Withdrawal', Description: 'Withdrawal',
    };
    const transfer = (mapTransaction(withdrawal, 'row 0') as { record: TransactionRecord }).record;
    expect(transfer.amount.toFixed()).toBe('-2500.5');
    expect(transfer.security).toBeUndefined();
    const contribution = (mapTransaction({ ...withdrawal, ExternalFlowAffect: 'Contribution' }, 'row 0') as { record: TransactionRecord }).record;
    expect(contribution.amount.toFixed()).toBe('2500.5');
    const fee = (mapTransaction({ ...withdrawal, TransactionType: 'Fee', ExternalFlowAffect: 'NotExternalFlow' }, 'row 0') as { record: TransactionRecord }).record;
    expect(fee).toMatchObject({ type: 'FEE', status: 'COMPLETED' });
    expect(fee.amount.isNegative()).toBe(true);
  });

  it('the fast mapping path and the schema path give the same records and refuse the same rows', () => {
    const holdings = [...sandbox.world.holdings(accountId, { limit: 300 })];
    const transactions = [...sandbox.world.transactions(accountId, { limit: 600 })];
    const render = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
    const holdingRows = holdings.map((holding) =>
      render({
        holdingId: holding.id,
        accountID: holding.accountId,
        asset: { assetId: '1', name: holding.security.name, cusip: holding.security.cusip, ticker: holding.security.ticker, identifier: holding.security.isin, assetClass: 'Equity', securityType: 'ETF', currencyCode: holding.currency },
        returnInfo: { units: Number(holding.quantity), emv: Number(holding.marketValue), returnDate: `${holding.asOf}T00:00:00` },
        costBasis: { totalCost: Number(holding.costBasis) },
      }),
    );
    const broken = (row: Record<string, unknown>, path: string[], value: unknown) => {
      const copy = render(row);
      let target = copy;
      for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
      target[path[path.length - 1]!] = value;
      return copy;
    };
    const first = holdingRows[0]!;
    holdingRows.push(
      broken(first, ['asset', 'cusip'], '037833101'),
      broken(first, ['asset', 'identifier'], 'US0378331006'),
      broken(first, ['asset', 'currencyCode'], 'XYZ'),
      broken(first, ['returnInfo', 'returnDate'], '2025-02-30T00:00:00'),
      broken(first, ['returnInfo', 'units'], '1e5'),
      broken(first, ['asset', 'ticker'], 'lower'),
      broken(first, ['asset', 'assetClass'], null),
      broken(first, ['holdingId'], ''),
    );
    for (const row of holdingRows) expect(mapHolding(row, 'row')).toEqual(checkedHolding(row, 'row'));
    const transactionRows = transactions.map((transaction) =>
      render({
        TransactionID: transaction.id,
        AccountID: transaction.accountId,
        TransactionType: { BUY: 'Buy', SELL: 'Sell', DIVIDEND: 'Dividend', INTEREST: 'Interest', FEE: 'Fee', TRANSFER: 'Transfer' }[transaction.type],
        Status: { PENDING: 'Pending', COMPLETED: 'Settled', FAILED: 'Failed', CANCELLED: 'Cancelled' }[transaction.status],
        TradeDate: `${transaction.tradeDate}T00:00:00`,
        SettleDate: `${transaction.settleDate}T00:00:00`,
        AssetID: transaction.security === undefined ? null : '1',
        Ticker: transaction.security?.ticker ?? null,
        Cusip: transaction.security?.cusip ?? null,
        Identifier: transaction.security?.isin ?? null,
        AssetName: transaction.security?.name ?? null,
        AssetClass: null,
        SecurityType: null,
        Units: transaction.quantity === undefined ? null : Number(transaction.quantity),
        Price: transaction.price === undefined ? null : Number(transaction.price),
        MarketValue: Math.abs(Number(transaction.amount)),
        CurrencyCode: transaction.currency,
        ExternalFlowAffect: transaction.type === 'TRANSFER' ? (transaction.amount.startsWith('-') ? 'Withdrawal' : 'Contribution') : 'NotExternalFlow',
        Description: transaction.description,
      }),
    );
    const firstTransaction = transactionRows[0]!;
    transactionRows.push(
      broken(firstTransaction, ['Status'], 'Unknown'),
      broken(firstTransaction, ['MarketValue'], 'N/A'),
      broken(firstTransaction, ['SettleDate'], 'soon'),
      broken(firstTransaction, ['Description'], 12),
      broken(firstTransaction, ['ExternalFlowAffect'], 'Sideways'),
    );
    for (const row of transactionRows) expect(mapTransaction(row, 'row')).toEqual(checkedTransaction(row, 'row'));
  });

  it('a 50,000-holding account streams through the adapter with peak memory growth under 150 MB', async () => {
    const big = sandbox.world.addAccount({ ownerId: OWNER, holdings: 50_000, transactions: 0, id: 'bd-big' }).id;
    const { connection } = await connect(sandbox, adapterFor(sandbox));
    global.gc?.();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    let count = 0;
    let quantity = new Decimal(0);
    for await (const item of connection.holdings(big)) {
      if (item.kind !== 'record') throw new Error('unexpected item');
      count++;
      quantity = quantity.plus(item.record.quantity);
      if (count % 1000 === 0) {
        const usage = process.memoryUsage();
        peakRss = Math.max(peakRss, usage.rss);
        peakHeap = Math.max(peakHeap, usage.heapUsed);
      }
    }
    expect(count).toBe(50_000);
    const truth = [...sandbox.world.holdings(big)].reduce((sum, holding) => sum.plus(holding.quantity), new Decimal(0));
    expect(quantity.eq(truth)).toBe(true);
    const megabytes = (bytes: number) => bytes / 1_048_576;
    expect(megabytes(peakRss - baseline.rss)).toBeLessThan(150);
    expect(megabytes(peakHeap - baseline.heapUsed)).toBeLessThan(150);
  }, 120_000);
});

function expectTransaction(record: TransactionRecord, truth: { id: string; type: string; status: string; tradeDate: string; settleDate: string; amount: string; currency: string; quantity?: string; price?: string; description: string; security?: { ticker: string; cusip: string; isin: string } }): void {
  expect(record.platformRecordId).toBe(truth.id);
  expect(record).toMatchObject({ type: truth.type, status: truth.status, tradeDate: truth.tradeDate, settleDate: truth.settleDate, currency: truth.currency, description: truth.description });
  expect(record.amount.eq(truth.amount), `${truth.id} amount ${record.amount.toFixed()} vs ${truth.amount}`).toBe(true);
  if (truth.quantity === undefined) expect(record.quantity).toBeUndefined();
  else expect(record.quantity!.eq(truth.quantity)).toBe(true);
  if (truth.price === undefined) expect(record.price).toBeUndefined();
  else expect(record.price!.eq(truth.price)).toBe(true);
  if (truth.security === undefined) expect(record.security).toBeUndefined();
  else expect(record.security).toMatchObject({ ticker: truth.security.ticker, cusip: truth.security.cusip, isin: truth.security.isin });
}
