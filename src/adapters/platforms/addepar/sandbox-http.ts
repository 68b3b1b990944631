import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FaultDialect } from '../sandbox-kit/index.ts';
import { JSON_API } from './defaults.ts';

/** The JSON:API plumbing the Addepar sandbox's routes share: errors, the caller, cursors. */

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  406: 'Not Acceptable',
  409: 'Conflict',
  410: 'Gone',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface ErrorMember {
  readonly status: string;
  readonly title: string;
  readonly detail: string;
  readonly code?: string;
  readonly source?: { readonly pointer: string };
}

export function errorMember(status: number, detail: string, extra: { code?: string; pointer?: string } = {}): ErrorMember {
  return {
    status: String(status),
    title: TITLES[status] ?? 'Error',
    detail,
    ...(extra.code === undefined ? {} : { code: extra.code }),
    ...(extra.pointer === undefined ? {} : { source: { pointer: extra.pointer } }),
  };
}

/** A refusal the route throws; the error handler writes it as a JSON:API error document. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    detail: string,
    readonly extra: { code?: string; pointer?: string } = {},
  ) {
    super(detail);
  }
}

export function sendErrors(reply: FastifyReply, status: number, errors: readonly ErrorMember[]): FastifyReply {
  return reply.code(status).type(JSON_API).send(JSON.stringify({ errors }));
}

export const ADDEPAR_DIALECT: FaultDialect = {
  retryAfterHeader: 'X-RateLimit-Retry-After',
  contentType: JSON_API,
  errorBody: (status, message) => ({ errors: [errorMember(status, message)] }),
};

/** Who is calling: the owner whose accounts they may see, and the scopes of their grant (Basic keys hold every scope). */
export interface Caller {
  readonly ownerId: string;
  readonly scopes: ReadonlySet<string> | 'all';
}

const callers = new WeakMap<FastifyRequest, Caller>();

export function setCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}

export function callerOf(request: FastifyRequest): Caller {
  const caller = callers.get(request);
  if (caller === undefined) throw new ApiError(401, 'authentication is required');
  return caller;
}

/** A read needs the scope or its _WRITE variant; a write needs the _WRITE variant. */
export function requireScope(request: FastifyRequest, scope: string): Caller {
  const caller = callerOf(request);
  if (caller.scopes === 'all') return caller;
  const ok = scope.endsWith('_WRITE') ? caller.scopes.has(scope) : caller.scopes.has(scope) || caller.scopes.has(`${scope}_WRITE`);
  if (!ok) throw new ApiError(403, `the access token lacks the ${scope} scope`);
  return caller;
}

/** Opaque cursors: the position to continue after, base64url-encoded JSON. */
export function encodeCursor(value: Record<string, string>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor(text: string): Record<string, string> {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && Object.values(value).every((item) => typeof item === 'string')) return value as Record<string, string>;
  } catch {
    // falls through to the refusal
  }
  throw new ApiError(400, 'page[after] is not a cursor this API issued', { pointer: 'page[after]' });
}

/** `page[limit]`: default and maximum per Addepar. */
export function pageLimit(raw: unknown, defaultLimit: number, maxLimit: number): number {
  if (raw === undefined) return defaultLimit;
  const limit = typeof raw === 'string' && /^[0-9]{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) throw new ApiError(400, `page[limit] must be an integer from 1 to ${maxLimit}`);
  return limit;
}

/** The body's `data.attributes` of a JSON:API request document, or a 400 naming what is missing. */
export function attributesOf(body: unknown, type: string): Record<string, unknown> {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
  if (typeof data !== 'object' || data === null) throw new ApiError(400, 'the request document has no data member', { pointer: '/data' });
  const { type: given, attributes } = data as { type?: unknown; attributes?: unknown };
  if (given !== type) throw new ApiError(409, `data.type must be "${type}"`, { pointer: '/data/type' });
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) throw new ApiError(400, 'data.attributes must be an object', { pointer: '/data/attributes' });
  return attributes as Record<string, unknown>;
}

/** A decimal as JSON:API answers carry it: a JSON number (the sandbox's values have at most 15 significant digits). */
export const num = (text: string): number => Number(text);
