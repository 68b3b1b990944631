import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { SyncServices } from '../../../commands/sync-services.ts';
import type { Ledger } from '../../../composition.ts';
import type { Config } from '../../../config.ts';
import type { SyncQueue } from '../../scheduler/sync-queue.ts';
import type { Principal, Role, TokenAuthority } from './auth.ts';
import { ApiProblem } from './problem.ts';

export interface ApiSettings {
  /** Requests per minute per user. */
  readonly rateLimitPerMinute: number;
  /** Origins allowed to call the API from a browser; empty: no CORS headers. */
  readonly corsOrigins: readonly string[];
  /** Largest accepted request body, bytes. */
  readonly bodyLimit: number;
  /** How long a query waits for the read models to reach the position given in Ledger-Min-Position. */
  readonly readWaitMs: number;
  /** Where a platform sends the user back after consent; the client there posts code and state to /callback. */
  readonly oauthRedirectUri: string;
  /** How long a connection's authorization session stays usable, seconds. */
  readonly connectSessionTtlSeconds: number;
}

/** Everything the API's routes reach the ledger through. */
export interface ApiContext {
  readonly ledger: Pick<Ledger, 'database' | 'store' | 'engine' | 'credentials'>;
  readonly sync: SyncServices;
  readonly queue: SyncQueue;
  readonly auth: TokenAuthority;
  readonly settings: ApiSettings;
}

export type ApiInstance = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

/** One group of routes (connections, portfolios, …), registered under /api/v1. */
export type ApiRoutes = (app: ApiInstance, context: ApiContext) => void;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API's authentication hook before any handler runs. */
    principal: Principal | null;
  }
}

/** The caller; every API route runs after authentication, so it is always there. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principalOf called outside an authenticated route');
  return request.principal;
}

/** Refuses (403) a caller holding none of `roles`. */
export function requireRole(request: FastifyRequest, ...roles: Role[]): Principal {
  const principal = principalOf(request);
  if (!roles.some((role) => principal.roles.has(role))) {
    throw new ApiProblem('forbidden', `this needs one of the roles ${roles.join(', ')}; the token has ${[...principal.roles].join(', ')}`);
  }
  return principal;
}

/** Metadata for the events a request's command appends: who did it, through which door. */
export function commandMetadata(request: FastifyRequest): { actor: string; source: string; correlationId: string } {
  return { actor: principalOf(request).userId, source: 'api', correlationId: request.id };
}

/** The API's settings from the service configuration. */
export function apiSettings(config: Config): ApiSettings {
  return {
    rateLimitPerMinute: config.API_RATE_LIMIT_PER_MINUTE,
    corsOrigins: (config.API_CORS_ORIGINS ?? '').split(',').map((origin) => origin.trim()).filter(Boolean),
    bodyLimit: config.API_BODY_LIMIT_BYTES,
    readWaitMs: config.API_READ_WAIT_MS,
    oauthRedirectUri: config.OAUTH_REDIRECT_URI ?? `http://${config.HOST}:${config.PORT}/connect/callback`,
    connectSessionTtlSeconds: config.CONNECT_SESSION_TTL_SECONDS,
  };
}
