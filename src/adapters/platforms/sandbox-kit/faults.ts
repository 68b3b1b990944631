import type { FastifyReply, FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { Draws, hashText } from './deterministic.ts';
import type { TokenInvalidator } from './tokens.ts';

/**
 * Faults a sandbox injects on purpose. Request-level faults are applied by the `onRequest` hook
 * before the route runs; page-level faults are taken by the sandbox's page renderer, which knows
 * how to break a page in its own dialect.
 */

export const REQUEST_FAULT_KINDS = ['rate_limit', 'server_error', 'unavailable', 'slow', 'connection_reset', 'expire_token', 'revoke_token'] as const;
export const PAGE_FAULT_KINDS = ['malformed_record', 'duplicate_record', 'insert_while_paging'] as const;
export const FaultKindSchema = z.enum([...REQUEST_FAULT_KINDS, ...PAGE_FAULT_KINDS]);
export type FaultKind = z.infer<typeof FaultKindSchema>;
export type PageFaultKind = (typeof PAGE_FAULT_KINDS)[number];

export const FaultSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('rate_limit'), retryAfterSeconds: z.number().int().min(0).max(3600).optional() }),
  z.object({ kind: z.literal('server_error') }),
  z.object({ kind: z.literal('unavailable'), retryAfterSeconds: z.number().int().min(0).max(3600).optional() }),
  z.object({ kind: z.literal('slow'), delayMs: z.number().int().min(0).max(600_000) }),
  z.object({ kind: z.literal('connection_reset') }),
  z.object({ kind: z.literal('expire_token') }),
  z.object({ kind: z.literal('revoke_token') }),
  z.object({ kind: z.literal('malformed_record') }),
  z.object({ kind: z.literal('duplicate_record') }),
  z.object({ kind: z.literal('insert_while_paging') }),
]);
export type Fault = z.infer<typeof FaultSchema>;

/** How a platform writes a refusal: the retry header of its 429 and the shape of its error body. */
export interface FaultDialect {
  readonly retryAfterHeader: string;
  errorBody(status: number, message: string): unknown;
  /** Content type of error bodies; JSON by default. */
  readonly contentType?: string;
}

export interface EnqueueOptions {
  /** Only requests whose path starts with this (default: every path). */
  readonly pathPrefix?: string;
  /** How many matching requests take the fault (default 1). */
  readonly times?: number;
}

interface Queued {
  readonly fault: Fault;
  readonly pathPrefix: string;
  remaining: number;
}

export interface FaultInjectorOptions {
  /** Seeds the draws of fault rates, so a rate-driven run repeats. */
  readonly seed?: string;
  /** Who expires and revokes tokens for expire_token / revoke_token. */
  readonly tokens?: TokenInvalidator;
  /** The token a request presents; by default the last word of its Authorization header. */
  readonly tokenOf?: (request: FastifyRequest) => string | undefined;
}

const DEFAULT_RETRY_AFTER_SECONDS = 1;
const applied = new WeakSet<FastifyRequest>();

export class FaultInjector {
  private readonly queue: Queued[] = [];
  private readonly rates = new Map<FaultKind, number>();
  private readonly draws: Draws;
  private tokens: TokenInvalidator | undefined;
  private readonly tokenOf: (request: FastifyRequest) => string | undefined;
  private readonly counts = new Map<FaultKind, number>();

  constructor(options: FaultInjectorOptions = {}) {
    this.draws = new Draws(hashText(`faults\u0000${options.seed ?? ''}`), 0);
    this.tokens = options.tokens;
    this.tokenOf = options.tokenOf ?? bearerOf;
  }

  /** Wires the sandbox's token issuer (when it is created after the injector). */
  useTokens(tokens: TokenInvalidator): void {
    this.tokens = tokens;
  }

  /** Queues a fault for the next matching request(s); a bare kind takes defaults (slow: 5 s, retry after: 1 s). */
  enqueue(fault: Fault | FaultKind, options: EnqueueOptions = {}): void {
    const parsed = FaultSchema.parse(typeof fault === 'string' ? (fault === 'slow' ? { kind: 'slow', delayMs: 5000 } : { kind: fault }) : fault);
    const times = options.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new RangeError('times must be a positive integer');
    this.queue.push({ fault: parsed, pathPrefix: options.pathPrefix ?? '', remaining: times });
  }

  /** Every request (or page) takes this fault with the given probability, until cleared. Probability 0 removes it. */
  setRate(kind: FaultKind, probability: number): void {
    if (!(probability >= 0 && probability <= 1)) throw new RangeError('probability must be between 0 and 1');
    if (probability === 0) this.rates.delete(kind);
    else this.rates.set(kind, probability);
  }

  clear(): void {
    this.queue.length = 0;
    this.rates.clear();
  }

  /** Faults applied so far, by kind (tests assert a fault really happened). */
  applied(kind: FaultKind): number {
    return this.counts.get(kind) ?? 0;
  }

  /** The fastify onRequest hook applying request-level faults in the platform's dialect. Paths under /_control are never faulted. */
  onRequest(dialect: FaultDialect): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
    return async (request, reply) => {
      if (applied.has(request) || request.url.startsWith('/_control')) return undefined;
      applied.add(request);
      const fault = this.take(pathOf(request.url), REQUEST_FAULT_KINDS);
      if (fault === undefined) return undefined;
      this.counts.set(fault.kind, this.applied(fault.kind) + 1);
      switch (fault.kind) {
        case 'rate_limit':
        case 'unavailable': {
          const status = fault.kind === 'rate_limit' ? 429 : 503;
          const message = fault.kind === 'rate_limit' ? 'Rate limit exceeded; retry later' : 'Service temporarily unavailable';
          reply.header(dialect.retryAfterHeader, String(fault.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS));
          return refuse(reply, dialect, status, message);
        }
        case 'server_error':
          return refuse(reply, dialect, 500, 'Internal server error');
        case 'slow':
          await sleep(fault.delayMs);
          return undefined;
        case 'connection_reset':
          reply.hijack();
          request.raw.socket.destroy();
          return reply;
        case 'expire_token':
        case 'revoke_token': {
          const token = this.tokenOf(request);
          if (token !== undefined && this.tokens !== undefined) {
            if (fault.kind === 'expire_token') this.tokens.expireToken(token);
            else this.tokens.revokeToken(token);
          }
          return undefined;
        }
      }
    };
  }

  /** The page-level fault for a page served at `path`, if one is due. */
  takePageFault(path: string): PageFaultKind | undefined {
    const fault = this.take(pathOf(path), PAGE_FAULT_KINDS);
    if (fault === undefined) return undefined;
    this.counts.set(fault.kind, this.applied(fault.kind) + 1);
    return fault.kind as PageFaultKind;
  }

  private take(path: string, kinds: readonly FaultKind[]): Fault | undefined {
    const index = this.queue.findIndex((queued) => kinds.includes(queued.fault.kind) && path.startsWith(queued.pathPrefix));
    if (index >= 0) {
      const queued = this.queue[index]!;
      if (--queued.remaining === 0) this.queue.splice(index, 1);
      return queued.fault;
    }
    for (const [kind, probability] of this.rates) {
      if (!kinds.includes(kind) || this.draws.unit() >= probability) continue;
      return kind === 'slow' ? { kind, delayMs: 5000 } : FaultSchema.parse({ kind });
    }
    return undefined;
  }
}

function refuse(reply: FastifyReply, dialect: FaultDialect, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', dialect.contentType ?? 'application/json; charset=utf-8')
    .send(JSON.stringify(dialect.errorBody(status, message)));
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const parts = header.trim().split(/\s+/);
  return parts.length === 2 ? parts[1] : undefined;
}
