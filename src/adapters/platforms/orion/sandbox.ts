import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  RateLimiter,
  startSandbox,
  type FaultDialect,
  type PlatformSandboxOptions,
  type RunningSandbox,
  type SandboxAccount,
  type SandboxContext,
} from '../sandbox-kit/index.ts';
import { API_ROOT, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, RATE_LIMIT } from './defaults.ts';
import { clientIdOf, malformed, renderAccount, renderAsset, renderPerformance, renderTaxLot, renderTransaction, worldStatusOf } from './sandbox-render.ts';
import { ORION_TOKEN_LIFETIMES, OrionSessions } from './sandbox-sessions.ts';
import { OrionTradingDesk, type DeskAnswer } from './sandbox-trading.ts';

/**
 * Orion's REST API as a sandbox, under `/api/v1`:
 * - `GET /v1/security/token`: Basic key:secret (partner `client_id`/`client_secret` headers
 *   checked when sent) or `Bearer <refresh token>` -> `{access_token, expires_in, refresh_token}`,
 *   JSON when asked for, XML otherwise.
 * - `GET /v1/Portfolio/Accounts`, `/Portfolio/Assets`, `/Portfolio/Assets/Verbose` (assets with
 *   their tax lots, one page of assets per request rather than one request per asset),
 *   `/Portfolio/Assets/{id}/Verbose`, `/Portfolio/Transactions`: bare arrays paged by
 *   `$top`/`$skip` (default 1000, at most 5000), no next link.
 * - Sandbox choice for incremental fetch: `GET /v1/Portfolio/Transactions?modifiedAfter=<n>` lists
 *   what was created, amended or cancelled after change number n, and every transaction listing
 *   answers the platform's current change number in `X-Change-Number`.
 * - `GET /v1/Reporting/Performance?accountId=`: returns per reporting period.
 * - Write-back: `POST /v1/Trading/Orders`, `POST /v1/Trading/Rebalances`,
 *   `POST /v1/Portfolio/Assets/{id}/Overrides`.
 * Calls carry `Authorization: Session <token>`; 1,000 requests a minute per API user (429 with
 * Retry-After). Errors are ASP.NET Web API bodies (`{Message, ModelState?}`). No webhooks: Orion
 * has no data-change webhooks.
 */

export const ORION_DIALECT: FaultDialect = {
  retryAfterHeader: 'Retry-After',
  errorBody: (status, message) => ({ Message: status >= 500 ? 'An error has occurred.' : message }),
};

/** rateLimitScale multiplies the one-minute rate-limit window (tests shrink it); Orion has no consent page to approve. */
export type OrionSandboxOptions = Omit<PlatformSandboxOptions, 'autoApprove'>;

export interface RunningOrionSandbox extends RunningSandbox {
  readonly sessions: OrionSessions;
}

export async function startOrionSandbox(options: OrionSandboxOptions): Promise<RunningOrionSandbox> {
  let sessions: OrionSessions | undefined;
  const running = await startSandbox(
    async (app, context) => {
      sessions = new OrionSessions(context.tokens);
      registerOrionApi(app, context, sessions);
    },
    {
      ...options,
      dialect: ORION_DIALECT,
      tokenLifetimes: ORION_TOKEN_LIFETIMES,
    },
  );
  return { ...running, sessions: sessions! };
}

const UNAUTHORIZED = { Message: 'Authorization has been denied for this request.' };

declare module 'fastify' {
  interface FastifyRequest {
    orionOwner?: string;
  }
}

type Query = Record<string, string | undefined>;

function registerOrionApi(app: FastifyInstance, context: SandboxContext, sessions: OrionSessions): void {
  const { world, faults } = context;
  const limiter = new RateLimiter({ limit: RATE_LIMIT.requests, windowMs: Math.max(1, Math.round(RATE_LIMIT.perMs * context.rateLimitScale)) });
  const desk = new OrionTradingDesk(world);

  app.register(
    async (api) => {
      api.get('/security/token', async (request, reply) => {
        const authorization = request.headers.authorization ?? '';
        const [scheme, credential] = authorization.trim().split(/\s+/, 2);
        const partner = { clientId: header(request, 'client_id'), clientSecret: header(request, 'client_secret') };
        const issued =
          scheme?.toLowerCase() === 'basic' && credential ? sessions.login(credential, partner)
          : scheme?.toLowerCase() === 'bearer' && credential ? sessions.refresh(credential)
          : 'bad_credentials';
        if (typeof issued === 'string') return reply.code(401).send(UNAUTHORIZED);
        const token = { access_token: issued.accessToken, expires_in: issued.expiresIn, refresh_token: issued.refreshToken };
        if ((request.headers.accept ?? '').includes('json')) return token;
        return reply
          .type('application/xml; charset=utf-8')
          .send(`<?xml version="1.0" encoding="utf-8"?><TokenResponse><access_token>${token.access_token}</access_token><expires_in>${token.expires_in}</expires_in><refresh_token>${token.refresh_token}</refresh_token></TokenResponse>`);
      });

      api.register(async (data) => {
        data.addHook('onRequest', async (request, reply) => {
          const [scheme, token] = (request.headers.authorization ?? '').trim().split(/\s+/, 2);
          const verdict = scheme?.toLowerCase() === 'session' && token ? sessions.verify(token) : 'unknown';
          if (typeof verdict === 'string') return reply.code(401).send(UNAUTHORIZED);
          const decision = limiter.take(verdict.ownerId);
          if (!decision.ok) {
            return reply
              .code(429)
              .header('Retry-After', String(decision.retryAfterSeconds))
              .send({ Message: `API calls quota exceeded! maximum admitted ${RATE_LIMIT.requests} per 1m.` });
          }
          request.orionOwner = verdict.ownerId;
          return undefined;
        });

        data.get('/Portfolio/Accounts', async (request, reply) => {
          const query = request.query as Query;
          const paging = pagingOf(query, reply);
          if (paging === undefined) return reply;
          const isActive = booleanOf(query.isActive);
          const hasValue = booleanOf(query.hasValue);
          const clientId = query.clientId === undefined ? undefined : Number(query.clientId);
          if (isActive === null || hasValue === null || Number.isNaN(clientId) || !validDate(query.asOfDate)) return badQuery(reply, 'The request is invalid.');
          const accounts = world.accounts(owner(request)).filter(
            (account) =>
              (query.accountId === undefined || account.id === query.accountId) &&
              (isActive === undefined || (account.status === 'open') === isActive) &&
              (clientId === undefined || clientIdOf(account.ownerId) === clientId),
          );
          const rendered = accounts.map((account) => renderAccount(account, world.accountValue(account.id), world.asOf));
          const listed = hasValue === undefined ? rendered : rendered.filter((account) => (Number(account.currentValue) > 0) === hasValue);
          return sendPage(reply, request, paging, (skip, top) => listed.slice(skip, skip + top), (account) => account, 'isActive');
        });

        data.get('/Portfolio/Assets', async (request, reply) => {
          const query = request.query as Query;
          const paging = pagingOf(query, reply);
          const account = paging && accountOf(request, reply, query.accountId);
          if (paging === undefined || account === undefined) return reply;
          if (!validDate(query.asOfDate)) return badQuery(reply, "The value of 'asOfDate' is not a valid date.");
          const includeCostBasis = booleanOf(query.includeCostBasis) === true;
          return sendPage(reply, request, paging, (skip, top) => world.holdings(account.id, { offset: skip, limit: top }), (holding) => renderAsset(holding, account, includeCostBasis), 'currentShares', () =>
            world.insertHolding(account.id),
          );
        });

        data.get('/Portfolio/Assets/Verbose', async (request, reply) => {
          const query = request.query as Query;
          const paging = pagingOf(query, reply);
          const account = paging && accountOf(request, reply, query.accountId);
          if (paging === undefined || account === undefined) return reply;
          return sendPage(
            reply,
            request,
            paging,
            (skip, top) => world.holdings(account.id, { offset: skip, limit: top }),
            (holding) => ({ ...renderAsset(holding, account, true), taxLots: Array.from(world.taxLots(account.id, holding.id), renderTaxLot) }),
            'currentShares',
            () => world.insertHolding(account.id),
          );
        });

        data.get('/Portfolio/Assets/:assetId/Verbose', async (request, reply) => {
          const { assetId } = request.params as { assetId: string };
          for (const account of world.accounts(owner(request))) {
            const holding = world.holding(account.id, assetId);
            if (holding !== undefined) return { ...renderAsset(holding, account, true), taxLots: Array.from(world.taxLots(account.id, holding.id), renderTaxLot) };
          }
          return reply.code(404).send({ Message: `Asset '${assetId}' was not found.` });
        });

        data.get('/Portfolio/Transactions', async (request, reply) => {
          const query = request.query as Query;
          const paging = pagingOf(query, reply);
          const account = paging && accountOf(request, reply, query.accountId);
          if (paging === undefined || account === undefined) return reply;
          const from = dateOf(query.startDate);
          const to = dateOf(query.endDate);
          const status = query.status === undefined ? undefined : worldStatusOf(query.status);
          const modifiedAfter = query.modifiedAfter === undefined ? undefined : /^\d{1,15}$/.test(query.modifiedAfter) ? Number(query.modifiedAfter) : null;
          if (from === null || to === null) return badQuery(reply, "The value of 'startDate' or 'endDate' is not a valid date.");
          if (status === undefined && query.status !== undefined) return badQuery(reply, `The value '${query.status}' is not a valid transaction status.`);
          if (modifiedAfter === null) return badQuery(reply, "The value of 'modifiedAfter' must be a change number.");
          // Taken before the page is read: whatever changes after it is listed again next time.
          reply.header('X-Change-Number', String(world.changeSeq()));
          const filter = { ...(from ? { from } : {}), ...(to ? { to } : {}), ...(modifiedAfter === undefined ? {} : { modifiedAfter }) };
          const select =
            status === undefined
              ? (skip: number, top: number) => world.transactions(account.id, { ...filter, offset: skip, limit: top })
              : (skip: number, top: number) => take(filterIterable(world.transactions(account.id, filter), (t) => t.status === status), skip, top);
          return sendPage(reply, request, paging, select, (transaction) => renderTransaction(transaction, account), 'transAmount', () => world.insertTransaction(account.id));
        });

        data.get('/Reporting/Performance', async (request, reply) => {
          const query = request.query as Query;
          const account = accountOf(request, reply, query.accountId);
          if (account === undefined) return reply;
          return world.performance(account.id).map(renderPerformance);
        });

        data.post('/Trading/Orders', async (request, reply) => answer(reply, desk.order(owner(request), request.body)));
        data.post('/Trading/Rebalances', async (request, reply) => answer(reply, desk.rebalance(owner(request), request.body)));
        data.post('/Portfolio/Assets/:assetId/Overrides', async (request, reply) => {
          const { assetId } = request.params as { assetId: string };
          return answer(reply, desk.override(owner(request), assetId, request.body));
        });
      });

      api.setNotFoundHandler((request, reply) => reply.code(404).send({ Message: `No HTTP resource was found that matches the request URI '${request.url.split('?')[0]}'.` }));
      api.setErrorHandler((error, _request, reply) => {
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send({ Message: 'The request is invalid.' });
        return reply.code(500).send({ Message: 'An error has occurred.' });
      });
    },
    { prefix: API_ROOT },
  );

  /** A page of a listing, with the page faults the injector has due for this path. */
  function sendPage<T, R extends object>(
    reply: FastifyReply,
    request: FastifyRequest,
    paging: { skip: number; top: number },
    select: (skip: number, top: number) => Iterable<T>,
    render: (item: T) => R,
    malformedField: string,
    insert?: () => unknown,
  ): FastifyReply {
    const fault = faults.takePageFault(request.url);
    const { skip, top } = paging;
    let page: object[];
    if (fault === 'duplicate_record') {
      // The record before this page is served again at its head (or, on the first page, the first again at its end).
      page = Array.from(select(Math.max(0, skip - 1), skip === 0 ? top : top + 1), render);
      if (skip === 0 && page.length > 0) page.push(page[0]!);
    } else {
      page = Array.from(select(skip, top), render);
    }
    if (fault === 'malformed_record' && page.length > 0) {
      const index = page.length >> 1;
      page[index] = malformed(page[index]!, malformedField);
    }
    if (fault === 'insert_while_paging') insert?.();
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(page));
  }

  function accountOf(request: FastifyRequest, reply: FastifyReply, accountId: string | undefined): SandboxAccount | undefined {
    if (accountId === undefined || accountId === '') {
      badQuery(reply, "The 'accountId' query parameter is required.");
      return undefined;
    }
    const account = world.account(accountId);
    if (account === undefined || account.ownerId !== owner(request)) {
      reply.code(404).send({ Message: `Account '${accountId}' was not found.` });
      return undefined;
    }
    return account;
  }
}

function owner(request: FastifyRequest): string {
  if (request.orionOwner === undefined) throw new Error('the session hook did not run');
  return request.orionOwner;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function pagingOf(query: Query, reply: FastifyReply): { skip: number; top: number } | undefined {
  const top = query.$top === undefined ? DEFAULT_PAGE_SIZE : /^\d{1,9}$/.test(query.$top) ? Number(query.$top) : NaN;
  const skip = query.$skip === undefined ? 0 : /^\d{1,9}$/.test(query.$skip) ? Number(query.$skip) : NaN;
  if (Number.isNaN(top) || Number.isNaN(skip) || top === 0) {
    badQuery(reply, "The query parameters '$top' and '$skip' must be non-negative integers ($top at least 1).");
    return undefined;
  }
  return { skip, top: Math.min(top, MAX_PAGE_SIZE) };
}

function badQuery(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ Message: message });
}

function answer(reply: FastifyReply, desk: DeskAnswer): FastifyReply {
  return reply.code(desk.status).send(desk.body);
}

/** "true"/"false" -> boolean; absent -> undefined; anything else -> null (refused). */
function booleanOf(value: string | undefined): boolean | undefined | null {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : null;
}

/** Orion takes dates as YYYY-MM-DD or an ASP.NET date-time; the date part is what filters. */
function dateOf(value: string | undefined): string | undefined | null {
  if (value === undefined) return undefined;
  const date = value.slice(0, 10);
  return /^\d{4}-\d{2}-\d{2}$/.test(date) && (value.length === 10 || value[10] === 'T') && !Number.isNaN(Date.parse(`${date}T00:00:00Z`)) ? date : null;
}

function validDate(value: string | undefined): boolean {
  return dateOf(value) !== null;
}

function* filterIterable<T>(items: Iterable<T>, keep: (item: T) => boolean): Iterable<T> {
  for (const item of items) if (keep(item)) yield item;
}

function* take<T>(items: Iterable<T>, skip: number, top: number): Iterable<T> {
  let skipped = 0;
  let taken = 0;
  for (const item of items) {
    if (taken >= top) return;
    if (skipped < skip) {
      skipped++;
      continue;
    }
    taken++;
    yield item;
  }
}
