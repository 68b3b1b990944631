import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { parseCursor } from '../../../ports/event-store.ts';
import { AuthenticationError } from './auth.ts';
import { principalOf, type ApiContext, type ApiRoutes } from './context.ts';
import { useIdempotencyKeys } from './idempotency.ts';
import { ApiProblem, useProblemResponses } from './problem.ts';

export const API_PREFIX = '/api/v1';
/** A query carrying this header waits until the read models hold that log position (read-your-writes). */
export const MIN_POSITION_HEADER = 'ledger-min-position';

/**
 * The query and command API: OpenAPI at /openapi.json and /docs, security headers and CORS for
 * everything, and under /api/v1 bearer authentication, a per-user rate limit, idempotency keys,
 * read-your-writes and problem+json errors around the route groups given.
 */
export async function registerApi(app: FastifyInstance, context: ApiContext, groups: readonly ApiRoutes[]): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(helmet, {
    // The docs page loads its own script and styles from this origin; nothing else is allowed.
    contentSecurityPolicy: { directives: { 'script-src': ["'self'"], 'style-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'] } },
  });
  await app.register(cors, { origin: context.settings.corsOrigins.length > 0 ? [...context.settings.corsOrigins] : false });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Portfolio sync ledger API',
        version: '1.0.0',
        description:
          'Consolidated, audited portfolios from Black Diamond, Orion and Addepar. Commands answer once their events are in the log ' +
          '(with the log position in `Ledger-Position`); queries read the read models, and wait for a position given in ' +
          '`Ledger-Min-Position`. Amounts and quantities are decimal strings, times ISO 8601 UTC, errors RFC 9457 problem+json.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(
    async (api) => {
      useProblemResponses(api);
      api.decorateRequest('principal', null);
      api.addHook('onRoute', (route) => {
        route.bodyLimit ??= context.settings.bodyLimit;
      });
      api.addHook('onRequest', async (request) => {
        const header = request.headers.authorization;
        const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
        if (!token) throw new AuthenticationError('send a bearer token in the Authorization header');
        request.principal = await context.auth.verify(token);
      });
      await api.register(rateLimit, {
        max: context.settings.rateLimitPerMinute,
        timeWindow: 60_000,
        hook: 'preHandler',
        keyGenerator: (request) => principalOf(request).userId,
        errorResponseBuilder: (_request, limit) =>
          new ApiProblem('rate-limited', `at most ${limit.max} requests a minute per user; try again in ${Math.ceil(limit.ttl / 1000)} s`, {
            headers: { 'retry-after': String(Math.ceil(limit.ttl / 1000)) },
          }),
      });
      useIdempotencyKeys(api, context.ledger.database.pool, context.ledger.credentials.vault, (request) => principalOf(request).userId);
      api.addHook('preHandler', async (request) => {
        const header = request.headers[MIN_POSITION_HEADER];
        if (request.method !== 'GET' || header === undefined) return;
        let target;
        try {
          target = parseCursor(String(header));
        } catch (error) {
          const message = (error as Error).message;
          throw new ApiProblem('validation', `headers.${MIN_POSITION_HEADER}: ${message}`, { errors: [{ field: `headers.${MIN_POSITION_HEADER}`, message }] });
        }
        const deadline = Date.now() + context.settings.readWaitMs;
        while (!(await context.ledger.engine.projectedTo(target))) {
          if (Date.now() >= deadline) {
            throw new ApiProblem('read-model-lagging', `the read models did not reach ${String(header)} within ${context.settings.readWaitMs} ms`, {
              headers: { 'retry-after': '1' },
            });
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      });
      const typed = api.withTypeProvider<ZodTypeProvider>();
      for (const group of groups) group(typed, context);
    },
    { prefix: API_PREFIX },
  );
}
