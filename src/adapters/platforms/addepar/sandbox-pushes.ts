import type { Decimal } from 'decimal.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Dec, DecimalStringSchema } from '../../../domain/money/decimal.ts';
import { isValidCusip, isValidIsin } from '../../../domain/securities/identifiers.ts';
import { SandboxInputError, type SandboxWorld } from '../sandbox-kit/index.ts';
import { ApiError, attributesOf, errorMember, requireScope, sendErrors, type Caller, type ErrorMember } from './sandbox-http.ts';
import { ownedHolding } from './sandbox.ts';

/**
 * Write-back. Addepar publishes no order or rebalancing API; the sandbox's choices are
 * `POST /v1/orders` (a trade instruction), `POST /v1/rebalances` (target weights) and, for
 * manual overrides, `PATCH /v1/positions/:id` (Addepar does let positions be edited) with the
 * reason in the document's meta. Every push is recorded in the world (not applied to it); an
 * invalid one is refused with 422 and one JSON:API error per problem, each with a pointer.
 * `external_id` makes orders and rebalances idempotent: the same one again answers the first
 * receipt, a different document under it 409.
 */

const PLATFORM = 'addepar';

class Refusal {
  readonly errors: ErrorMember[] = [];
  add(detail: string, pointer: string, code = 'INVALID_ATTRIBUTE'): void {
    this.errors.push(errorMember(422, detail, { code, pointer: `/data/attributes/${pointer}` }));
  }
}

function decimal(value: unknown, refusal: Refusal, pointer: string, rule: 'positive' | 'non_negative'): Decimal | undefined {
  const text = typeof value === 'number' && Number.isFinite(value) ? new Dec(value).toFixed() : value;
  if (typeof text !== 'string' || !DecimalStringSchema.safeParse(text).success) {
    refusal.add(`${pointer} must be a decimal number`, pointer);
    return undefined;
  }
  const parsed = new Dec(text);
  if (rule === 'positive' ? parsed.lte(0) : parsed.lt(0)) {
    refusal.add(`${pointer} must be ${rule === 'positive' ? 'greater than zero' : 'zero or more'}`, pointer);
    return undefined;
  }
  return parsed;
}

function text(value: unknown, refusal: Refusal, pointer: string, max = 200): string | undefined {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) {
    refusal.add(`${pointer} must be a non-empty string of at most ${max} characters`, pointer);
    return undefined;
  }
  return value;
}

/** A security named by ticker_symbol, cusip or isin; identifiers must carry valid check digits, a ticker must be known. */
function security(world: SandboxWorld, value: unknown, refusal: Refusal, pointer: string): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null) {
    refusal.add(`${pointer} must name a security by ticker_symbol, cusip or isin`, pointer);
    return undefined;
  }
  const { ticker_symbol: ticker, cusip, isin } = value as Record<string, unknown>;
  if (ticker === undefined && cusip === undefined && isin === undefined) {
    refusal.add(`${pointer} must name a security by ticker_symbol, cusip or isin`, pointer);
    return undefined;
  }
  const out: Record<string, string> = {};
  if (cusip !== undefined) {
    if (typeof cusip !== 'string' || !isValidCusip(cusip)) refusal.add(`${pointer}.cusip is not a valid CUSIP`, `${pointer}/cusip`, 'INVALID_IDENTIFIER');
    else out['cusip'] = cusip;
  }
  if (isin !== undefined) {
    if (typeof isin !== 'string' || !isValidIsin(isin)) refusal.add(`${pointer}.isin is not a valid ISIN`, `${pointer}/isin`, 'INVALID_IDENTIFIER');
    else out['isin'] = isin;
  }
  if (ticker !== undefined) {
    if (typeof ticker !== 'string') refusal.add(`${pointer}.ticker_symbol must be a string`, `${pointer}/ticker_symbol`);
    else {
      try {
        world.security({ ticker });
        out['ticker_symbol'] = ticker;
      } catch (error) {
        if (!(error instanceof SandboxInputError)) throw error;
        refusal.add(`no security with ticker ${ticker}`, `${pointer}/ticker_symbol`, 'UNKNOWN_SECURITY');
      }
    }
  }
  return out;
}

function account(world: SandboxWorld, caller: Caller, value: unknown, refusal: Refusal): string | undefined {
  const id = text(value, refusal, 'owner_id');
  if (id === undefined) return undefined;
  const found = world.account(id);
  if (found === undefined || found.ownerId !== caller.ownerId) refusal.add(`no entity ${id}`, 'owner_id', 'UNKNOWN_ENTITY');
  else if (found.status === 'closed') refusal.add(`account ${id} is closed`, 'owner_id', 'ACCOUNT_CLOSED');
  else return id;
  return undefined;
}

interface Receipt {
  readonly body: string;
  readonly document: unknown;
}

export function registerPushes(api: FastifyInstance, world: SandboxWorld): void {
  const receipts = new Map<string, Receipt>();
  let sequence = 0;

  /** Idempotency on external_id, then validation, then the record of the push. */
  const accept = (
    request: FastifyRequest,
    reply: FastifyReply,
    type: 'orders' | 'rebalances',
    validate: (attributes: Record<string, unknown>, refusal: Refusal, caller: Caller) => { accountId: string } | undefined,
  ) => {
    const caller = requireScope(request, 'PORTFOLIO_WRITE');
    const attributes = attributesOf(request.body, type);
    const refusal = new Refusal();
    const externalId = text(attributes['external_id'], refusal, 'external_id', 100);
    const key = `${caller.ownerId}\u0000${type}\u0000${externalId}`;
    const body = JSON.stringify(attributes);
    const earlier = externalId === undefined ? undefined : receipts.get(key);
    if (earlier !== undefined) {
      if (earlier.body !== body) throw new ApiError(409, `external_id ${externalId} was already used for a different ${type.slice(0, -1)}`, { code: 'DUPLICATE_EXTERNAL_ID', pointer: '/data/attributes/external_id' });
      return reply.code(200).send(earlier.document);
    }
    const valid = validate(attributes, refusal, caller);
    if (refusal.errors.length > 0 || valid === undefined || externalId === undefined) return sendErrors(reply, 422, refusal.errors);
    const id = String(++sequence + 510_000);
    const createdAt = new Date().toISOString();
    world.recordPush({ platform: PLATFORM, accountId: valid.accountId, body: request.body, reference: id });
    const document = { data: { id, type, attributes: { ...attributes, status: 'RECEIVED', created_at: createdAt } } };
    receipts.set(key, { body, document });
    return reply.code(201).header('location', `/api/v1/${type}/${id}`).send(document);
  };

  api.post('/v1/orders', async (request, reply) =>
    accept(request, reply, 'orders', (attributes, refusal, caller) => {
      const accountId = account(world, caller, attributes['owner_id'], refusal);
      const side = attributes['side'];
      if (side !== 'BUY' && side !== 'SELL') refusal.add('side must be BUY or SELL', 'side');
      security(world, attributes['security'], refusal, 'security');
      decimal(attributes['units'], refusal, 'units', 'positive');
      const orderType = attributes['order_type'];
      if (orderType === 'LIMIT') decimal(attributes['limit_price'], refusal, 'limit_price', 'positive');
      else if (orderType === 'MARKET') {
        if (attributes['limit_price'] !== undefined && attributes['limit_price'] !== null) refusal.add('a MARKET order takes no limit_price', 'limit_price');
      } else refusal.add('order_type must be MARKET or LIMIT', 'order_type');
      return accountId === undefined ? undefined : { accountId };
    }),
  );

  api.post('/v1/rebalances', async (request, reply) =>
    accept(request, reply, 'rebalances', (attributes, refusal, caller) => {
      const accountId = account(world, caller, attributes['owner_id'], refusal);
      const targets = attributes['targets'];
      if (!Array.isArray(targets) || targets.length === 0) {
        refusal.add('targets must be a non-empty array of {security, weight}', 'targets');
        return undefined;
      }
      let sum = new Dec(0);
      const seen = new Set<string>();
      targets.forEach((target: unknown, i) => {
        const item = (typeof target === 'object' && target !== null ? target : {}) as Record<string, unknown>;
        const named = security(world, item['security'], refusal, `targets/${i}/security`);
        const key = named === undefined ? undefined : JSON.stringify(named);
        if (key !== undefined && seen.has(key)) refusal.add('the same security appears twice', `targets/${i}/security`);
        if (key !== undefined) seen.add(key);
        const weight = decimal(item['weight'], refusal, `targets/${i}/weight`, 'non_negative');
        if (weight !== undefined && weight.gt(1)) refusal.add(`targets/${i}/weight must be at most 1`, `targets/${i}/weight`);
        if (weight !== undefined) sum = sum.plus(weight);
      });
      if (refusal.errors.length === 0 && !sum.eq(1)) refusal.add(`target weights must sum to 1; they sum to ${sum.toFixed()}`, 'targets', 'WEIGHTS_DO_NOT_SUM_TO_ONE');
      return accountId === undefined ? undefined : { accountId };
    }),
  );

  api.patch('/v1/positions/:id', async (request, reply) => {
    const caller = requireScope(request, 'POSITIONS_WRITE');
    const positionId = (request.params as { id: string }).id;
    const holding = ownedHolding(world, caller, positionId);
    const attributes = attributesOf(request.body, 'positions');
    const document = request.body as { data: { id?: unknown }; meta?: Record<string, unknown> };
    if (document.data.id !== positionId) throw new ApiError(409, 'data.id must be the id in the URL', { pointer: '/data/id' });
    const refusal = new Refusal();
    const fields = Object.keys(attributes);
    if (fields.length !== 1 || !['units', 'price', 'cost_basis'].includes(fields[0]!)) refusal.add('exactly one of units, price or cost_basis may be overridden', fields[0] ?? 'units');
    else decimal(attributes[fields[0]!], refusal, fields[0]!, fields[0] === 'price' ? 'positive' : 'non_negative');
    const reason = document.meta?.['reason'];
    if (typeof reason !== 'string' || reason.trim() === '') refusal.errors.push(errorMember(422, 'meta.reason must say why the value is overridden', { code: 'INVALID_ATTRIBUTE', pointer: '/meta/reason' }));
    if (refusal.errors.length > 0) return sendErrors(reply, 422, refusal.errors);
    const id = String(++sequence + 510_000);
    world.recordPush({ platform: PLATFORM, accountId: holding.accountId, body: request.body, reference: id });
    return reply.code(200).send({
      data: { id: positionId, type: 'positions', attributes: { ...attributes, modified_at: new Date().toISOString() } },
      meta: { override_id: id },
    });
  });
}
