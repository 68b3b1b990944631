import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Dec } from '../../../domain/money/decimal.ts';
import { isValidCusip, isValidIsin } from '../../../domain/securities/identifiers.ts';
import {
  RateLimiter,
  SandboxInputError,
  securityIndexOfTicker,
  startSandbox,
  type FaultDialect,
  type PageFaultKind,
  type PlatformSandboxOptions,
  type RunningSandbox,
  type SandboxContext,
  type SandboxHolding,
  type SandboxPerformance,
  type SandboxTransaction,
  type SandboxWorld,
} from '../sandbox-kit/index.ts';
import {
  ACCESS_TOKEN_LIFETIME_MS,
  RATE_LIMIT,
  REFRESH_TOKEN_LIFETIME_MS,
  SANDBOX_CLIENT_ID,
  SANDBOX_CLIENT_SECRET,
  SANDBOX_REDIRECT_URI,
  SANDBOX_SUBSCRIPTION_KEY,
} from './defaults.ts';
import {
  ASSET_CLASS_NAMES,
  BatchRequestSchema,
  HoldingDetailSearchRequestSchema,
  HoldingOverrideSchema,
  PERIOD_NAME_OF,
  PerformanceSearchRequestSchema,
  RebalanceRequestSchema,
  SECURITY_TYPE_NAMES,
  TOKEN_EXPIRED_MESSAGE,
  TRANSACTION_STATUS_NAMES,
  TRANSACTION_TYPE_NAMES,
  TradeInstructionSchema,
  TransactionSearchRequestSchema,
  type BatchAccount,
  type BdPerformance,
  type BdTransaction,
  type ErrorBody,
  type HoldingDetail,
} from './wire.ts';
import { writeZip, type ZipEntry } from './zip.ts';

/**
 * Black Diamond's HTTP dialect over the sandbox world. What public material leaves open is chosen
 * here and documented in PLATFORMS.md terms:
 * - identity at /connect/authorize and /connect/token (the login host's paths, served on the same
 *   host), rotating refresh tokens, access 1 h and refresh 1 year;
 * - every API call needs `Authorization: Bearer` and `Ocp-Apim-Subscription-Key`; the key is
 *   checked first (as the API gateway does), then its rate limit, then the token;
 * - query endpoints page with `continuationToken` (request body and answer; null on the last page),
 *   keyset-ordered so records added while a client pages land in a later page;
 * - transactions: POST /account/Query/TransactionSearch by trade-date range, or incrementally with
 *   `modifiedSinceToken` (the `changeToken` an earlier search answered with);
 * - performance: POST /account/Query/PerformanceSearch; accounts through the bulk batch
 *   (POST /batchV5, GET /batch/{id} → a zip, accounts in files of 250);
 * - write-back: POST /tradeInstructions, /rebalanceRequests, /holdingOverrides, idempotent on
 *   `externalReference`;
 * - rate limit per subscription key: RATE_LIMIT, 429 with Retry-After (seconds).
 */

export const DIALECT: FaultDialect = {
  retryAfterHeader: 'Retry-After',
  errorBody: (status, message) => errorBody(status, message),
};

const ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  404: 'NotFound',
  409: 'Conflict',
  422: 'ValidationFailed',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};

function errorBody(status: number, message: string, code?: string): ErrorBody {
  return { message, code: code ?? ERROR_CODES[status] ?? String(status), correlationID: randomUUID() };
}

/** Batch zip files hold this many holdings or transactions each (accounts: 250, as the platform does). */
const BATCH_ROWS_PER_FILE = 10_000;
const ACCOUNTS_PER_FILE = 250;
const KEPT_BATCHES = 100;

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface BlackDiamondSandboxOptions extends PlatformSandboxOptions {
  readonly subscriptionKey?: string;
}

export function startBlackDiamondSandbox(options: BlackDiamondSandboxOptions): Promise<RunningSandbox> {
  const subscriptionKey = options.subscriptionKey ?? SANDBOX_SUBSCRIPTION_KEY;
  return startSandbox((app, context) => registerBlackDiamondApi(app, context, subscriptionKey), {
    ...options,
    dialect: DIALECT,
    tokenLifetimes: { accessTokenSeconds: ACCESS_TOKEN_LIFETIME_MS / 1000, refreshTokenSeconds: REFRESH_TOKEN_LIFETIME_MS / 1000, rotateRefreshTokens: true },
    oauth: {
      clients: [{ clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, redirectUris: [SANDBOX_REDIRECT_URI] }],
      authorizePath: '/connect/authorize',
      tokenPath: '/connect/token',
      revokePath: '/connect/revocation',
    },
  });
}

interface Batch {
  readonly ownerId: string;
  readonly includeHoldings: boolean;
  readonly includeTransactions: boolean;
}

interface Pushed {
  readonly id: string;
  readonly body: string;
  readonly createdDate: string;
}

export function registerBlackDiamondApi(app: FastifyInstance, context: SandboxContext, subscriptionKey: string): void {
  const { world, faults, tokens } = context;
  const limiter = new RateLimiter({ limit: RATE_LIMIT.requests, windowMs: RATE_LIMIT.perMs * context.rateLimitScale });
  const batches = new Map<string, Batch>();
  const pushed = new Map<string, Pushed>();
  const owners = new WeakMap<FastifyRequest, string>();

  const ownerOf = (request: FastifyRequest): string => owners.get(request)!;
  const ownedAccount = (request: FastifyRequest, accountId: string) => {
    const account = world.account(accountId);
    if (account === undefined || account.ownerId !== ownerOf(request)) throw new ApiError(404, `Account ${accountId} was not found.`, 'AccountNotFound');
    return account;
  };

  app.register(async (api) => {
    api.addHook('onRequest', async (request, reply) => {
      const key = request.headers['ocp-apim-subscription-key'];
      if (typeof key !== 'string' || key === '') {
        return refuse(reply, 401, 'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.', 'MissingSubscriptionKey');
      }
      if (key !== subscriptionKey) return refuse(reply, 401, 'Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.', 'InvalidSubscriptionKey');
      const decision = limiter.take(key);
      if (!decision.ok) {
        reply.header('Retry-After', String(decision.retryAfterSeconds));
        return refuse(reply, 429, `Rate limit is exceeded. Try again in ${decision.retryAfterSeconds} seconds.`, 'RateLimitExceeded');
      }
      const authorization = request.headers.authorization;
      const token = authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : undefined;
      if (token === undefined || token === '') return refuse(reply, 401, 'Authorization has been denied for this request.', 'Unauthorized');
      const verdict = tokens.verifyAccessToken(token);
      if (verdict === 'expired') return refuse(reply, 401, TOKEN_EXPIRED_MESSAGE, 'TokenExpired');
      if (verdict === 'revoked') return refuse(reply, 401, 'The access token has been revoked.', 'TokenRevoked');
      if (verdict === 'unknown') return refuse(reply, 401, 'The access token is invalid.', 'InvalidToken');
      owners.set(request, verdict.ownerId);
      return undefined;
    });

    api.setErrorHandler((error, _request, reply) => {
      if (error instanceof ApiError) return refuse(reply, error.status, error.message, error.code);
      if (error instanceof z.ZodError) return refuse(reply, 400, `The request is invalid: ${describe(error)}`, 'InvalidRequest');
      if (error instanceof SandboxInputError) return refuse(reply, error.status, error.message);
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== undefined && status >= 400 && status < 500) return refuse(reply, status, 'The request could not be read.', 'InvalidRequest');
      return refuse(reply, 500, 'An unexpected error occurred.');
    });

    api.post('/account/Query/HoldingDetailSearch', async (request, reply) => {
      const body = HoldingDetailSearchRequestSchema.parse(request.body);
      ownedAccount(request, body.accountID);
      const afterId = readContinuation(body.continuationToken);
      const fault = faults.takePageFault(request.url);
      if (fault === 'insert_while_paging') world.insertHolding(body.accountID);
      const rows: SandboxHolding[] = [...world.holdings(body.accountID, { ...(afterId === undefined ? {} : { afterId }), limit: body.limit + 1 })];
      const page = pageOf(rows, body.limit, fault, afterId === undefined ? undefined : world.holding(body.accountID, afterId), (holding) => holding.id);
      const json = page.rows.map((holding, index) => {
        if (fault !== 'malformed_record' || index !== page.malformedAt) return holdingJson(holding, body.include);
        const row = renderHolding(holding, body.include);
        return JSON.stringify({ ...row, returnInfo: { ...row.returnInfo, units: 'N/A' } });
      });
      return sendJson(reply, `{"data":[${json.join(',')}],"continuationToken":${JSON.stringify(page.next)}}`);
    });

    api.post('/account/Query/TransactionSearch', async (request, reply) => {
      const body = TransactionSearchRequestSchema.parse(request.body);
      ownedAccount(request, body.accountID);
      const changeToken = String(world.changeSeq());
      const afterId = readContinuation(body.continuationToken);
      const fault = faults.takePageFault(request.url);
      if (fault === 'insert_while_paging') world.insertTransaction(body.accountID);
      const rows: SandboxTransaction[] = [
        ...world.transactions(body.accountID, {
          ...(body.startDate === undefined ? {} : { from: body.startDate }),
          ...(body.endDate === undefined ? {} : { to: body.endDate }),
          ...(body.modifiedSinceToken === undefined ? {} : { modifiedAfter: Number(body.modifiedSinceToken) }),
          ...(afterId === undefined ? {} : { afterId }),
          limit: body.limit + 1,
        }),
      ];
      const page = pageOf(rows, body.limit, fault, afterId === undefined ? undefined : world.transaction(body.accountID, afterId), (transaction) => transaction.id);
      const json = page.rows.map((transaction, index) =>
        fault === 'malformed_record' && index === page.malformedAt ? JSON.stringify({ ...renderTransaction(transaction), MarketValue: 'N/A' }) : transactionJson(transaction),
      );
      return sendJson(reply, `{"data":[${json.join(',')}],"continuationToken":${JSON.stringify(page.next)},"changeToken":${JSON.stringify(changeToken)}}`);
    });

    api.post('/account/Query/PerformanceSearch', async (request) => {
      const body = PerformanceSearchRequestSchema.parse(request.body);
      ownedAccount(request, body.accountID);
      const wanted = body.periods === undefined ? undefined : new Set<string>(body.periods);
      return { data: world.performance(body.accountID).map(renderPerformance).filter((row) => wanted === undefined || wanted.has(row.period)) };
    });

    api.post('/batchV5', async (request) => {
      const body = BatchRequestSchema.parse(request.body);
      const batchId = randomUUID();
      batches.set(batchId, { ownerId: ownerOf(request), includeHoldings: body.includeHoldings, includeTransactions: body.includeTransactions });
      // Batches are kept for a while on the platform; here the oldest go once there are many.
      if (batches.size > KEPT_BATCHES) batches.delete(batches.keys().next().value!);
      return { batchId };
    });

    api.get('/batch/:batchId', async (request, reply) => {
      const { batchId } = z.object({ batchId: z.string().min(1) }).parse(request.params);
      const batch = batches.get(batchId);
      if (batch === undefined || batch.ownerId !== ownerOf(request)) throw new ApiError(404, `Batch ${batchId} was not found.`, 'BatchNotFound');
      return reply
        .type('application/zip')
        .header('content-disposition', `attachment; filename="batch-${batchId}.zip"`)
        .send(Readable.from(writeZip(batchFiles(world, batch))));
    });

    api.post('/tradeInstructions', async (request, reply) => {
      const body = TradeInstructionSchema.parse(request.body);
      ownedAccount(request, body.accountID);
      checkSecurity(body.security);
      if (new Dec(body.units).lte(0)) throw new ApiError(422, 'units must be greater than zero.', 'InvalidUnits');
      if (body.orderType === 'Limit' && body.limitPrice === undefined) throw new ApiError(422, 'A limit order needs a limitPrice.', 'LimitPriceRequired');
      if (body.orderType === 'Market' && body.limitPrice !== undefined) throw new ApiError(422, 'A market order takes no limitPrice.', 'LimitPriceNotAllowed');
      if (body.limitPrice !== undefined && new Dec(body.limitPrice).lte(0)) throw new ApiError(422, 'limitPrice must be greater than zero.', 'InvalidLimitPrice');
      return accept(reply, 'TI', body.accountID, body.externalReference, body);
    });

    api.post('/rebalanceRequests', async (request, reply) => {
      const body = RebalanceRequestSchema.parse(request.body);
      ownedAccount(request, body.accountID);
      for (const target of body.targets) checkSecurity(target.security);
      const total = body.targets.reduce((sum, target) => sum.plus(target.weightPercent), new Dec(0));
      if (!total.eq(100)) throw new ApiError(422, `Target weights must add up to 100 (they add up to ${total.toFixed()}).`, 'WeightsDoNotSumTo100');
      return accept(reply, 'RB', body.accountID, body.externalReference, body);
    });

    api.post('/holdingOverrides', async (request, reply) => {
      const body = HoldingOverrideSchema.parse(request.body);
      ownedAccount(request, body.accountID);
      if (world.holding(body.accountID, body.holdingId) === undefined) throw new ApiError(404, `Holding ${body.holdingId} was not found in account ${body.accountID}.`, 'HoldingNotFound');
      if (body.field === 'Price' && new Dec(body.value).lte(0)) throw new ApiError(422, 'A price override must be greater than zero.', 'InvalidValue');
      return accept(reply, 'HO', body.accountID, body.externalReference, body);
    });
  });

  /** Records an accepted instruction once per external reference; a replay answers the first acceptance. */
  function accept(reply: FastifyReply, prefix: string, accountId: string, externalReference: string, body: unknown) {
    const text = JSON.stringify(body);
    const key = `${prefix}\u0000${externalReference}`;
    const earlier = pushed.get(key);
    if (earlier !== undefined) {
      if (earlier.body !== text) throw new ApiError(409, `externalReference ${externalReference} was already used for a different instruction.`, 'DuplicateReference');
      return reply.code(200).send({ id: earlier.id, status: 'Accepted', createdDate: earlier.createdDate });
    }
    const id = `${prefix}-${String(pushed.size + 1).padStart(8, '0')}`;
    const createdDate = new Date().toISOString();
    pushed.set(key, { id, body: text, createdDate });
    world.recordPush({ platform: 'black_diamond', accountId, body, reference: id });
    return reply.code(201).send({ id, status: 'Accepted', createdDate });
  }
}

function refuse(reply: FastifyReply, status: number, message: string, code?: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(errorBody(status, message, code));
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  const path = issue.path.join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}

function checkSecurity(security: { ticker?: string | undefined; cusip?: string | undefined; isin?: string | undefined }): void {
  if (security.ticker !== undefined && securityIndexOfTicker(security.ticker) === undefined) throw new ApiError(422, `No security with ticker ${security.ticker}.`, 'UnknownSecurity');
  if (security.cusip !== undefined && !isValidCusip(security.cusip)) throw new ApiError(422, `${security.cusip} is not a valid CUSIP.`, 'InvalidIdentifier');
  if (security.isin !== undefined && !isValidIsin(security.isin)) throw new ApiError(422, `${security.isin} is not a valid ISIN.`, 'InvalidIdentifier');
}

// ---- paging ----

/** The token is opaque to clients: the id of the last row served, base64url-encoded. */
function continuationOf(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId })).toString('base64url');
}

function readContinuation(token: string | null | undefined): string | undefined {
  if (token === undefined || token === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    const after = (parsed as { after?: unknown }).after;
    if (typeof after === 'string' && after.length > 0) return after;
  } catch {
    // fall through to the refusal below
  }
  throw new ApiError(400, 'The continuationToken is not valid.', 'InvalidContinuationToken');
}

/**
 * One page out of `limit + 1` rows read (the extra one tells whether another page follows), with
 * a page fault applied: a duplicate repeats a row across the page boundary, a malformed record
 * breaks the middle row.
 */
function pageOf<T>(
  read: T[],
  limit: number,
  fault: PageFaultKind | undefined,
  previous: T | undefined,
  idOf: (row: T) => string,
): { rows: T[]; next: string | null; malformedAt: number } {
  const more = read.length > limit;
  const rows = more ? read.slice(0, limit) : read;
  let next = more ? continuationOf(idOf(rows[rows.length - 1]!)) : null;
  if (fault === 'duplicate_record' && rows.length > 0) {
    if (previous !== undefined) rows.unshift(previous);
    else if (more && rows.length > 1) next = continuationOf(idOf(rows[rows.length - 2]!));
    else rows.push(rows[0]!);
  }
  return { rows, next, malformedAt: Math.floor(rows.length / 2) };
}

// ---- rendering ----

const date = (isoDate: string) => `${isoDate}T00:00:00`;

function renderHolding(holding: SandboxHolding, include: { returnInfo: boolean; assets: boolean; costBasis: boolean }): HoldingDetail {
  const security = holding.security;
  return {
    holdingId: holding.id,
    accountID: holding.accountId,
    asset: {
      assetId: assetIdOf(security.index),
      name: security.name,
      cusip: security.cusip,
      ticker: security.ticker,
      identifier: security.isin,
      assetClass: ASSET_CLASS_NAMES[security.assetClass],
      securityType: SECURITY_TYPE_NAMES[security.securityType],
      currencyCode: holding.currency,
    },
    returnInfo: { units: Number(holding.quantity), emv: Number(holding.marketValue), returnDate: date(holding.asOf) },
    ...(include.costBasis ? { costBasis: { totalCost: Number(holding.costBasis) } } : {}),
  };
}

function renderTransaction(transaction: SandboxTransaction): BdTransaction {
  const security = transaction.security;
  const amount = Number(transaction.amount);
  return {
    TransactionID: transaction.id,
    AccountID: transaction.accountId,
    TransactionType: TRANSACTION_TYPE_NAMES[transaction.type],
    Status: TRANSACTION_STATUS_NAMES[transaction.status],
    TradeDate: date(transaction.tradeDate),
    SettleDate: date(transaction.settleDate),
    AssetID: security === undefined ? null : assetIdOf(security.index),
    Ticker: security?.ticker ?? null,
    Cusip: security?.cusip ?? null,
    Identifier: security?.isin ?? null,
    AssetName: security?.name ?? null,
    AssetClass: security === undefined ? null : ASSET_CLASS_NAMES[security.assetClass],
    SecurityType: security === undefined ? null : SECURITY_TYPE_NAMES[security.securityType],
    Units: transaction.quantity === undefined ? null : Number(transaction.quantity),
    Price: transaction.price === undefined ? null : Number(transaction.price),
    MarketValue: Math.abs(amount),
    CurrencyCode: transaction.currency,
    ExternalFlowAffect: transaction.type !== 'TRANSFER' ? 'NotExternalFlow' : amount < 0 ? 'Withdrawal' : 'Contribution',
    Description: transaction.description,
  };
}

// Pages of holdings and transactions run to thousands of rows: their JSON is written directly, the
// same document renderHolding and renderTransaction give through JSON.stringify. Decimal texts
// are written as they are, which a JSON reader takes as the same numbers Number(text) would give.
// Names, descriptions and ids are quoted by JSON.stringify; codes, dates and identifiers need no
// escaping.

function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}

const quoted = (text: string) => JSON.stringify(text);
const unsigned = (amount: string) => (amount.startsWith('-') ? amount.slice(1) : amount);

function holdingJson(holding: SandboxHolding, include: { costBasis: boolean }): string {
  const security = holding.security;
  const asset = `{"assetId":"${assetIdOf(security.index)}","name":${quoted(security.name)},"cusip":"${security.cusip}","ticker":"${security.ticker}","identifier":"${security.isin}","assetClass":"${ASSET_CLASS_NAMES[security.assetClass]}","securityType":"${SECURITY_TYPE_NAMES[security.securityType]}","currencyCode":"${holding.currency}"}`;
  const costBasis = include.costBasis ? `,"costBasis":{"totalCost":${holding.costBasis}}` : '';
  return `{"holdingId":${quoted(holding.id)},"accountID":${quoted(holding.accountId)},"asset":${asset},"returnInfo":{"units":${holding.quantity},"emv":${holding.marketValue},"returnDate":"${date(holding.asOf)}"}${costBasis}}`;
}

function transactionJson(transaction: SandboxTransaction): string {
  const security = transaction.security;
  const asset =
    security === undefined
      ? '"AssetID":null,"Ticker":null,"Cusip":null,"Identifier":null,"AssetName":null,"AssetClass":null,"SecurityType":null'
      : `"AssetID":"${assetIdOf(security.index)}","Ticker":"${security.ticker}","Cusip":"${security.cusip}","Identifier":"${security.isin}","AssetName":${quoted(security.name)},"AssetClass":"${ASSET_CLASS_NAMES[security.assetClass]}","SecurityType":"${SECURITY_TYPE_NAMES[security.securityType]}"`;
  const flow = transaction.type !== 'TRANSFER' ? 'NotExternalFlow' : Number(transaction.amount) < 0 ? 'Withdrawal' : 'Contribution';
  return `{"TransactionID":${quoted(transaction.id)},"AccountID":${quoted(transaction.accountId)},"TransactionType":"${TRANSACTION_TYPE_NAMES[transaction.type]}","Status":"${TRANSACTION_STATUS_NAMES[transaction.status]}","TradeDate":"${date(transaction.tradeDate)}","SettleDate":"${date(transaction.settleDate)}",${asset},"Units":${transaction.quantity ?? 'null'},"Price":${transaction.price ?? 'null'},"MarketValue":${unsigned(transaction.amount)},"CurrencyCode":"${transaction.currency}","ExternalFlowAffect":"${flow}","Description":${quoted(transaction.description)}}`;
}

function renderPerformance(performance: SandboxPerformance): BdPerformance {
  return {
    accountID: performance.accountId,
    period: PERIOD_NAME_OF[performance.period],
    startDate: date(performance.startDate),
    endDate: date(performance.endDate),
    twrPercent: new Dec(performance.returnRate).times(100).toFixed(),
    bmv: Number(performance.beginningValue),
    emv: Number(performance.endingValue),
    netFlows: Number(performance.netFlows),
    currencyCode: performance.currency,
  };
}

function assetIdOf(securityIndex: number): string {
  return String(100_000 + securityIndex);
}

function* batchFiles(world: SandboxWorld, batch: Batch): Generator<ZipEntry> {
  const accounts = world.accounts(batch.ownerId);
  for (let start = 0, file = 1; start < accounts.length || file === 1; start += ACCOUNTS_PER_FILE, file++) {
    const rows: BatchAccount[] = accounts.slice(start, start + ACCOUNTS_PER_FILE).map((account) => ({
      AccountID: account.id,
      Name: account.name,
      LongNumber: account.number,
      AccountType: account.accountType,
      Custodian: account.custodian,
      CurrencyCode: account.currency,
      StartDate: date(account.openedOn),
      IsClosed: account.status === 'closed',
      MarketValue: Number(world.accountValue(account.id)),
    }));
    yield json(`accounts_${pad(file)}.json`, rows);
  }
  if (batch.includeHoldings) {
    yield* chunked('holdings', accounts.map((account) => world.holdings(account.id)), (holding: SandboxHolding) => renderHolding(holding, { returnInfo: true, assets: true, costBasis: true }));
  }
  if (batch.includeTransactions) yield* chunked('transactions', accounts.map((account) => world.transactions(account.id)), renderTransaction);
}

function* chunked<T>(name: string, sources: Iterable<T>[], render: (row: T) => unknown): Generator<ZipEntry> {
  let rows: unknown[] = [];
  let file = 1;
  for (const source of sources) {
    for (const row of source) {
      rows.push(render(row));
      if (rows.length === BATCH_ROWS_PER_FILE) {
        yield json(`${name}_${pad(file++)}.json`, rows);
        rows = [];
      }
    }
  }
  if (rows.length > 0) yield json(`${name}_${pad(file)}.json`, rows);
}

function json(name: string, rows: unknown): ZipEntry {
  return { name, content: Buffer.from(JSON.stringify(rows)) };
}

function pad(file: number): string {
  return String(file).padStart(4, '0');
}
