import type { FastifyInstance, FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { RateLimiter, SandboxInputError, startSandbox, type PlatformSandboxOptions, type RunningSandbox, type SandboxAccount, type SandboxContext, type SandboxHolding, type SandboxSecurity, type SandboxWorld } from '../sandbox-kit/index.ts';
import {
  ACCESS_TOKEN_LIFETIME_SECONDS,
  API_ROOT,
  AUTHORIZE_PATH,
  DEFAULT_PAGE_LIMIT,
  DEMO_OWNER_ID,
  JSON_API,
  MAX_PAGE_LIMIT,
  RATE_LIMITS,
  REFRESH_TOKEN_LIFETIME_SECONDS,
  REVOKE_PATH,
  SANDBOX_CLIENT_ID,
  SANDBOX_CLIENT_SECRET,
  SANDBOX_FIRM_ID,
  SANDBOX_REDIRECT_URI,
  TOKEN_PATH,
  sandboxApiKey,
} from './defaults.ts';
import { registerPortfolioQuery } from './sandbox-portfolio.ts';
import { registerPushes } from './sandbox-pushes.ts';
import { registerTransactions } from './sandbox-transactions.ts';
import {
  ADDEPAR_DIALECT,
  ApiError,
  decodeCursor,
  encodeCursor,
  errorMember,
  pageLimit,
  requireScope,
  sendErrors,
  setCaller,
  num,
  type Caller,
} from './sandbox-http.ts';
import { ACCOUNT_MODEL_TYPE, ASSET_CLASS_LABELS, PERSON_MODEL_TYPE, SECURITY_MODEL_TYPES } from './wire.ts';

/**
 * Addepar's API as a local sandbox: JSON:API under /api, the Addepar-Firm header, OAuth bearer
 * tokens or Basic key:secret, per-firm rate limits, cursor pages, portfolio queries, transaction
 * queries and exports through jobs, and write-back. The world's truth rendered in that dialect.
 */

/** rateLimitScale multiplies the rate-limit windows (0.001: 50 requests per 0.9 s). */
export type AddeparSandboxOptions = PlatformSandboxOptions;

export function startAddeparSandbox(options: AddeparSandboxOptions): Promise<RunningSandbox> {
  return startSandbox(addeparPlugin, {
    ...options,
    dialect: ADDEPAR_DIALECT,
    // Refresh tokens rotate (single-use, each refresh issues a fresh 90-day one): unconfirmed for Addepar.
    tokenLifetimes: { accessTokenSeconds: ACCESS_TOKEN_LIFETIME_SECONDS, refreshTokenSeconds: REFRESH_TOKEN_LIFETIME_SECONDS, rotateRefreshTokens: true },
    oauth: {
      clients: [{ clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, redirectUris: [SANDBOX_REDIRECT_URI] }],
      authorizePath: API_ROOT + AUTHORIZE_PATH,
      tokenPath: API_ROOT + TOKEN_PATH,
      revokePath: API_ROOT + REVOKE_PATH,
      defaultOwnerId: DEMO_OWNER_ID,
    },
  });
}

/** Entity ids of held instruments: Addepar ids are numbers written as text. */
export const securityEntityId = (security: SandboxSecurity): string => String(900_000 + security.index);
export const personEntityId = (ownerId: string): string => `person-${ownerId}`;

/** The caller's account, or 404 (another owner's account is not admitted to exist). */
export function ownedAccount(world: SandboxWorld, caller: Caller, accountId: string, pointer?: string): SandboxAccount {
  const account = world.account(accountId);
  if (account === undefined || account.ownerId !== caller.ownerId) throw new ApiError(404, `no entity ${accountId}`, pointer === undefined ? {} : { pointer });
  return account;
}

export async function addeparPlugin(app: FastifyInstance, context: SandboxContext): Promise<void> {
  const limiters = RATE_LIMITS.map((limit) => new RateLimiter({ limit: limit.requests, windowMs: Math.max(1, Math.round(limit.perMs * context.rateLimitScale)) }));
  await app.register(
    async (api) => {
      api.addContentTypeParser(JSON_API, { parseAs: 'string' }, (_request, body, done) => {
        try {
          done(null, body === '' ? undefined : JSON.parse(body as string));
        } catch {
          done(new ApiError(400, 'the request body is not valid JSON'), undefined);
        }
      });
      api.setErrorHandler((error, _request, reply) => {
        if (error instanceof RateLimited) reply.header(ADDEPAR_DIALECT.retryAfterHeader, String(error.retryAfterSeconds));
        if (error instanceof ApiError) return sendErrors(reply, error.status, [errorMember(error.status, error.message, error.extra)]);
        if (error instanceof SandboxInputError) return sendErrors(reply, error.status, [errorMember(error.status, error.message, { pointer: `/data/attributes/${error.field}` })]);
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== undefined && status >= 400 && status < 500) return sendErrors(reply, status, [errorMember(status, (error as Error).message)]);
        return sendErrors(reply, 500, [errorMember(500, 'Internal server error')]);
      });
      api.setNotFoundHandler((request, reply) => sendErrors(reply, 404, [errorMember(404, `no route ${request.method} ${request.url.split('?')[0]}`)]));
      api.addHook('onRequest', async (request) => {
        if (!request.url.startsWith(`${API_ROOT}/v1/`)) return;
        checkMediaTypes(request);
        checkFirm(request);
        setCaller(request, authenticate(request, context));
        for (const limiter of limiters) {
          const decision = limiter.take(SANDBOX_FIRM_ID);
          if (!decision.ok) throw new RateLimited(decision.retryAfterSeconds);
        }
      });
      api.addHook('onSend', async (_request, reply, payload) => {
        const type = reply.getHeader('content-type');
        if (type === undefined || (typeof type === 'string' && type.startsWith('application/json'))) reply.type(JSON_API);
        return payload;
      });
      registerEntities(api, context.world);
      registerPositions(api, context);
      registerPortfolioQuery(api, context.world);
      const jobs = registerTransactions(api, context);
      app.post('/_control/addepar/jobs/:id/expire', async (request, reply) => {
        if (!jobs.expireJob((request.params as { id: string }).id)) return reply.code(404).send({ error: 'no such job' });
        return reply.code(204).send();
      });
      registerPushes(api, context.world);
    },
    { prefix: API_ROOT },
  );
}

class RateLimited extends ApiError {
  constructor(readonly retryAfterSeconds: number) {
    super(429, `the firm's rate limit is exhausted; retry after ${retryAfterSeconds} s`);
  }
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Bodies must be JSON:API (415 otherwise); an Accept header must admit it (406 otherwise). */
function checkMediaTypes(request: FastifyRequest): void {
  const accept = request.headers.accept;
  if (accept !== undefined && accept !== '') {
    const admitted = accept.split(',').some((part) => ['*/*', 'application/*', JSON_API].includes(mediaType(part)));
    if (!admitted) throw new ApiError(406, `answers are ${JSON_API}; the Accept header does not admit it`);
  }
  const hasBody = request.method === 'POST' || request.method === 'PATCH' || request.method === 'PUT';
  if (hasBody && mediaType(request.headers['content-type']) !== JSON_API) {
    throw new ApiError(415, `request bodies must be sent as ${JSON_API}`);
  }
}

function checkFirm(request: FastifyRequest): void {
  const firm = request.headers['addepar-firm'];
  if (firm === undefined || firm === '') throw new ApiError(400, 'the Addepar-Firm header is required');
  if (firm !== SANDBOX_FIRM_ID) throw new ApiError(403, `no access to firm ${String(firm)}`);
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function authenticate(request: FastifyRequest, context: SandboxContext): Caller {
  const header = request.headers.authorization ?? '';
  if (header.startsWith('Bearer ')) {
    const verdict = context.tokens.verifyAccessToken(header.slice(7).trim());
    if (typeof verdict === 'string') throw new ApiError(401, verdict === 'expired' ? 'the access token has expired' : verdict === 'revoked' ? 'the access token has been revoked' : 'the access token is not valid');
    return { ownerId: verdict.ownerId, scopes: new Set(verdict.scope.split(' ').filter(Boolean)) };
  }
  if (header.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const key = colon < 0 ? '' : decoded.slice(0, colon);
    const dot = key.lastIndexOf('.');
    const ownerId = dot <= 0 ? '' : key.slice(0, dot);
    const expected = ownerId === '' ? undefined : sandboxApiKey(ownerId);
    if (expected === undefined || !sameText(key, expected.apiKey) || !sameText(decoded.slice(colon + 1), expected.apiSecret)) throw new ApiError(401, 'the API key or secret is not valid');
    return { ownerId, scopes: 'all' };
  }
  throw new ApiError(401, 'authentication is required: a Bearer token or Basic API key and secret');
}

function accountEntity(account: SandboxAccount) {
  const created = `${account.openedOn}T00:00:00Z`;
  return {
    id: account.id,
    type: 'entities',
    attributes: {
      original_name: account.name,
      display_name: account.name,
      model_type: ACCOUNT_MODEL_TYPE,
      ownership_type: 'SHARE_BASED',
      currency_factor: account.currency,
      account_number: account.number,
      custodian_name: account.custodian,
      account_type: account.accountType,
      inception_date: account.openedOn,
      account_status: account.status === 'closed' ? 'Closed' : 'Open',
      created_at: created,
      modified_at: created,
    },
  };
}

function personEntity(ownerId: string) {
  return {
    id: personEntityId(ownerId),
    type: 'entities',
    attributes: { original_name: `Client ${ownerId}`, display_name: `Client ${ownerId}`, model_type: PERSON_MODEL_TYPE, ownership_type: 'PERCENT_BASED', created_at: null, modified_at: null },
  };
}

export function securityEntity(security: SandboxSecurity) {
  return {
    id: securityEntityId(security),
    type: 'entities',
    attributes: {
      original_name: security.name,
      display_name: security.name,
      model_type: SECURITY_MODEL_TYPES[security.securityType],
      ownership_type: 'SHARE_BASED',
      ticker_symbol: security.ticker,
      cusip: security.cusip,
      isin: security.isin,
      asset_class: ASSET_CLASS_LABELS[security.assetClass],
      currency_factor: security.currency,
    },
  };
}

function positionResource(holding: SandboxHolding) {
  return {
    id: holding.id,
    type: 'positions',
    attributes: {
      name: holding.security.ticker,
      units: num(holding.quantity),
      price: num(holding.price),
      value: num(holding.marketValue),
      cost_basis: num(holding.costBasis),
      currency: holding.currency,
      as_of_date: holding.asOf,
    },
    relationships: {
      owner: { data: { type: 'entities', id: holding.accountId } },
      owned: { data: { type: 'entities', id: securityEntityId(holding.security) } },
    },
  };
}

type Query = Record<string, string | undefined>;

/** The link to the next page: the same query with the new cursor, relative to the API root as Addepar writes it. */
function nextLink(path: string, query: Query, after: string): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined && name !== 'page[after]') params.set(name, value);
  params.set('page[after]', after);
  return `${path}?${params.toString()}`;
}

function registerEntities(api: FastifyInstance, world: SandboxWorld): void {
  api.get('/v1/entities', async (request) => {
    const caller = requireScope(request, 'ENTITIES');
    const query = request.query as Query;
    const limit = pageLimit(query['page[limit]'], DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
    const types = query['filter[model_types]']?.split(',').map((type) => type.trim().toUpperCase());
    const all = [personEntity(caller.ownerId), ...world.accounts(caller.ownerId).map(accountEntity)].filter((entity) => types === undefined || types.includes(entity.attributes.model_type));
    const start = query['page[after]'] === undefined ? 0 : all.findIndex((entity) => entity.id === decodeCursor(query['page[after]']!)['id']) + 1;
    const data = all.slice(start, start + limit);
    const more = start + limit < all.length;
    return { data, links: { next: more ? nextLink('/v1/entities', query, encodeCursor({ id: data[data.length - 1]!.id })) : null } };
  });

  api.get('/v1/entities/:id', async (request) => {
    const caller = requireScope(request, 'ENTITIES');
    const { id } = request.params as { id: string };
    if (id === personEntityId(caller.ownerId)) return { data: personEntity(caller.ownerId) };
    return { data: accountEntity(ownedAccount(world, caller, id)) };
  });
}

function registerPositions(api: FastifyInstance, context: SandboxContext): void {
  const { world, faults } = context;

  api.get('/v1/positions', async (request) => {
    const caller = requireScope(request, 'POSITIONS');
    const query = request.query as Query;
    const limit = pageLimit(query['page[limit]'], DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
    const includeOwned = (query['include'] ?? '').split(',').includes('owned');
    const owners = query['filter[owner_ids]'] === undefined ? world.accounts(caller.ownerId).map((account) => account.id) : query['filter[owner_ids]'].split(',').map((id) => ownedAccount(world, caller, id.trim()).id);
    const cursor = query['page[after]'] === undefined ? undefined : decodeCursor(query['page[after]']);
    let accountIndex = cursor === undefined ? 0 : owners.indexOf(cursor['a'] ?? '');
    if (accountIndex < 0) throw new ApiError(400, 'page[after] does not belong to this query', { pointer: 'page[after]' });

    const fault = faults.takePageFault(`${API_ROOT}/v1/positions`);
    if (fault === 'insert_while_paging' && owners[accountIndex] !== undefined) world.insertHolding(owners[accountIndex]!);

    // One more than the page, to know whether a next page exists.
    const holdings: SandboxHolding[] = [];
    let afterId = cursor?.['h'];
    for (; accountIndex < owners.length && holdings.length <= limit; accountIndex++, afterId = undefined) {
      const range = { limit: limit + 1 - holdings.length, ...(afterId === undefined ? {} : { afterId }) };
      for (const holding of world.holdings(owners[accountIndex]!, range)) holdings.push(holding);
    }
    const more = holdings.length > limit;
    if (more) holdings.length = limit;
    const last = holdings[holdings.length - 1];

    const data: unknown[] = holdings.map(positionResource);
    if (fault === 'duplicate_record') {
      const previous = cursor === undefined ? undefined : world.holding(cursor['a']!, cursor['h']!);
      if (previous !== undefined) data.unshift(positionResource(previous));
      else if (data[0] !== undefined) data.push(data[0]);
    }
    if (fault === 'malformed_record' && data.length > 0) {
      const index = Math.floor(data.length / 2);
      const record = data[index] as ReturnType<typeof positionResource>;
      data[index] = { ...record, attributes: { ...record.attributes, units: 'twelve' } };
    }
    const document: Record<string, unknown> = {
      data,
      links: { next: more && last !== undefined ? nextLink('/v1/positions', query, encodeCursor({ a: last.accountId, h: last.id })) : null },
    };
    if (includeOwned) {
      const included = new Map<string, ReturnType<typeof securityEntity>>();
      for (const holding of holdings) {
        const id = securityEntityId(holding.security);
        if (!included.has(id)) included.set(id, securityEntity(holding.security));
      }
      document['included'] = [...included.values()];
    }
    return document;
  });

  api.get('/v1/positions/:id', async (request) => {
    const caller = requireScope(request, 'POSITIONS');
    return { data: positionResource(ownedHolding(world, caller, (request.params as { id: string }).id)) };
  });
}

/** A position of one of the caller's accounts, found by id (`<account>-H<n>`). */
export function ownedHolding(world: SandboxWorld, caller: Caller, positionId: string): SandboxHolding {
  for (const account of world.accounts(caller.ownerId)) {
    if (!positionId.startsWith(`${account.id}-H`)) continue;
    const holding = world.holding(account.id, positionId);
    if (holding !== undefined) return holding;
  }
  throw new ApiError(404, `no position ${positionId}`);
}
