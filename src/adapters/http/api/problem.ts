import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DomainRuleViolation } from '../../../domain/decider.ts';
import { ValidationError } from '../../../domain/validation.ts';
import { PlatformError } from '../../../ports/platform-adapter.ts';
import { AuthenticationError } from './auth.ts';

/**
 * Every error the API answers is an RFC 9457 problem document whose `type` is stable: clients
 * branch on it, never on the wording. The types are relative URIs under /problems/.
 */
export const PROBLEM_TYPES = {
  validation: { status: 400, title: 'The request is not valid' },
  unauthorized: { status: 401, title: 'A valid bearer token is required' },
  forbidden: { status: 403, title: "The token's roles do not allow this" },
  'not-found': { status: 404, title: 'No such resource' },
  'rule-violation': { status: 409, title: 'The ledger refuses the command' },
  'idempotency-key-reused': { status: 422, title: 'The Idempotency-Key was used for a different request' },
  'payload-too-large': { status: 413, title: 'The body is too large' },
  'unsupported-media-type': { status: 415, title: 'The body must be application/json' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'platform-unavailable': { status: 502, title: 'The platform did not answer as expected' },
  'read-model-lagging': { status: 503, title: 'The read models have not reached the requested position yet' },
  internal: { status: 500, title: 'Internal error' },
} as const;
export type ProblemType = keyof typeof PROBLEM_TYPES;

export const FieldErrorSchema = z.object({
  field: z.string().meta({ description: 'Where the failing value is: body.x.y, query.x, params.x or headers.x', example: 'body.baseCurrency' }),
  message: z.string().meta({ example: 'must be an ISO 4217 currency code' }),
});

export const ProblemSchema = z
  .object({
    type: z.string().meta({ example: '/problems/validation' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    /** The ledger's rule code when a command is refused (CONNECTION_NOT_FOUND, …). */
    code: z.string().optional(),
    errors: z.array(FieldErrorSchema).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });
export type Problem = z.infer<typeof ProblemSchema>;

/** A refusal a route raises on purpose; the error handler renders it. */
export class ApiProblem extends Error {
  override readonly name = 'ApiProblem';
  constructor(
    readonly type: ProblemType,
    detail: string,
    readonly extensions: { code?: string; errors?: z.infer<typeof FieldErrorSchema>[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

export const notFound = (what: string) => new ApiProblem('not-found', `${what} does not exist`);

/** Rule codes that mean "no such thing" are a 404, like any unknown id. */
const NOT_FOUND_CODE = /_NOT_FOUND$/;

function problemOf(error: unknown, request: FastifyRequest): { problem: Problem; headers: Record<string, string> } {
  const make = (type: ProblemType, detail?: string, extra: Partial<Problem> = {}): Problem => ({
    type: `/problems/${type}`,
    title: PROBLEM_TYPES[type].title,
    status: PROBLEM_TYPES[type].status,
    ...(detail ? { detail } : {}),
    instance: request.url.split('?')[0],
    ...extra,
  });
  if (error instanceof ApiProblem) {
    return { problem: make(error.type, error.message, { ...(error.extensions.code ? { code: error.extensions.code } : {}), ...(error.extensions.errors ? { errors: error.extensions.errors } : {}) }), headers: error.extensions.headers ?? {} };
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    // Fastify calls the query string "querystring"; the API names its fields query.x, as clients write them.
    const context = (error as FastifyError).validationContext ?? 'body';
    const part = context === 'querystring' ? 'query' : context;
    const errors = error.validation.flatMap((issue) => {
      const field = [part, ...issue.instancePath.split('/').filter(Boolean)].join('.');
      // An unknown key is the fault of that key, so it is named rather than its parent.
      const keys = issue.keyword === 'unrecognized_keys' ? ((issue.params as { keys?: string[] }).keys ?? []) : [];
      if (keys.length > 0) return keys.map((key) => ({ field: `${field}.${key}`, message: 'is not a known field' }));
      return [{ field, message: issue.message ?? 'is not valid' }];
    });
    return { problem: make('validation', errors.map((e) => `${e.field}: ${e.message}`).join('; '), { errors }), headers: {} };
  }
  if (error instanceof ValidationError) {
    const errors = error.issues.map((issue) => ({ field: issue.path, message: issue.message }));
    return { problem: make('validation', error.message, { errors }), headers: {} };
  }
  if (error instanceof AuthenticationError) return { problem: make('unauthorized', error.message), headers: { 'www-authenticate': 'Bearer' } };
  if (error instanceof DomainRuleViolation) {
    return { problem: make(NOT_FOUND_CODE.test(error.code) ? 'not-found' : 'rule-violation', error.message, { code: error.code }), headers: {} };
  }
  if (error instanceof PlatformError) return { problem: make('platform-unavailable', `${error.platform}: ${error.syncError.message}`, { code: error.syncError.code }), headers: {} };
  const fastifyError = error as Partial<FastifyError>;
  switch (fastifyError.statusCode) {
    case 400:
      // Fastify's own refusals of the body itself (malformed JSON, empty body with a JSON type).
      return { problem: make('validation', fastifyError.message, { errors: [{ field: 'body', message: fastifyError.message ?? 'is not valid JSON' }] }), headers: {} };
    case 414:
      return { problem: make('validation', fastifyError.message, { errors: [{ field: 'path', message: 'is too long' }] }), headers: {} };
    case 413:
      return { problem: make('payload-too-large', fastifyError.message), headers: {} };
    case 415:
      return { problem: make('unsupported-media-type', fastifyError.message), headers: {} };
    case 429:
      return { problem: make('rate-limited', fastifyError.message), headers: {} };
    default:
      return { problem: make('internal', 'the request could not be completed; the error is in the service log'), headers: {} };
  }
}

export function sendProblem(reply: FastifyReply, error: unknown): FastifyReply {
  const { problem, headers } = problemOf(error, reply.request);
  if (problem.status >= 500 && problem.type === '/problems/internal') reply.request.log.error({ err: error }, 'request failed');
  return reply.code(problem.status).headers(headers).type('application/problem+json').send(problem);
}

/** Error and not-found handlers of the API scope: everything leaves as problem+json. */
export function useProblemResponses(app: FastifyInstance): void {
  app.setErrorHandler((error, _request, reply) => sendProblem(reply, error));
  app.setNotFoundHandler((request, reply) => sendProblem(reply, new ApiProblem('not-found', `no route answers ${request.method} ${request.url.split('?')[0]}`)));
}
