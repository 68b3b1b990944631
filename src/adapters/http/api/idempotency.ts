import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { canonicalJson } from '../../../domain/events/hash-chain.ts';
import type { CredentialVault } from '../../crypto/credential-vault.ts';
import { ApiProblem } from './problem.ts';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotency-replayed';
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;
/** How long a key's first answer is kept: a client retrying later than this starts a new request. */
const RETENTION = '24 hours';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** POSTs that start work: an Idempotency-Key replays the first answer. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotencyKey: string | null;
  }
}

/**
 * Idempotency-Key on the routes marked `config.idempotent`: the first request with a key claims it
 * (per user) and its answer is stored; a repeat with the same method, path and body gets that
 * answer back (marked Idempotency-Replayed) without running the handler; the same key with a
 * different request is refused. A 5xx answer releases the key, so the client may try again.
 * Answers are stored encrypted under the credential vault's keys.
 */
export function useIdempotencyKeys(app: FastifyInstance, pool: pg.Pool, vault: CredentialVault, userOf: (request: FastifyRequest) => string): void {
  // Stored answers may carry secrets (a connect session's token): they are kept encrypted, bound to their user and key.
  const context = (user: string, key: string) => `idempotency:${user}:${key}`;
  app.decorateRequest('idempotencyKey', null);

  app.addHook('preHandler', async (request, reply) => {
    if (!request.routeOptions.config.idempotent) return;
    const header = request.headers[IDEMPOTENCY_HEADER];
    if (header === undefined) return;
    if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
      throw new ApiProblem('validation', 'headers.idempotency-key: must be 1 to 200 visible ASCII characters', {
        errors: [{ field: 'headers.idempotency-key', message: 'must be 1 to 200 visible ASCII characters' }],
      });
    }
    const user = userOf(request);
    const requestHash = hashRequest(request);
    const claimed = await pool.query(
      `INSERT INTO idempotency_keys (user_id, idempotency_key, request_hash) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash, status_code = NULL, content_type = NULL,
              response_body = NULL, created_at = now()
        WHERE idempotency_keys.created_at < now() - $4::interval
       RETURNING 1`,
      [user, header, requestHash, RETENTION],
    );
    if (claimed.rowCount === 1) {
      request.idempotencyKey = header;
      return;
    }
    const stored = await pool.query<{ request_hash: string; status_code: number | null; content_type: string | null; response_body: string | null }>(
      'SELECT request_hash, status_code, content_type, response_body FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2',
      [user, header],
    );
    const first = stored.rows[0];
    if (!first) throw new ApiProblem('rule-violation', 'the request with this Idempotency-Key failed meanwhile; send it again', { code: 'IDEMPOTENCY_KEY_RELEASED' });
    if (first.request_hash !== requestHash) {
      throw new ApiProblem('idempotency-key-reused', `Idempotency-Key "${header}" was first used for a different request; use a new key`);
    }
    if (first.status_code === null) {
      throw new ApiProblem('rule-violation', `the first request with Idempotency-Key "${header}" is still running; try again shortly`, {
        code: 'IDEMPOTENT_REQUEST_IN_PROGRESS',
        headers: { 'retry-after': '1' },
      });
    }
    return reply
      .code(first.status_code)
      .header(REPLAYED_HEADER, 'true')
      .type(first.content_type ?? 'application/json')
      .serializer((payload: unknown) => payload as string)
      .send(first.response_body === null ? '' : vault.decrypt(first.response_body, context(user, header)));
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const key = request.idempotencyKey;
    if (key === null) return payload;
    request.idempotencyKey = null;
    const user = userOf(request);
    if (reply.statusCode >= 500) {
      await pool.query('DELETE FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2', [user, key]);
    } else {
      await pool.query('UPDATE idempotency_keys SET status_code = $3, content_type = $4, response_body = $5 WHERE user_id = $1 AND idempotency_key = $2', [
        user,
        key,
        reply.statusCode,
        String(reply.getHeader('content-type') ?? 'application/json'),
        vault.encrypt(typeof payload === 'string' ? payload : String(payload ?? ''), context(user, key)),
      ]);
    }
    return payload;
  });
}

function hashRequest(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.url}\n`)
    .update(canonicalJson(request.body ?? null))
    .digest('hex');
}
