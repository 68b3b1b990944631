import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { DecimalStringSchema } from '../../../domain/money/decimal.ts';
import { FaultKindSchema, FaultSchema, type FaultInjector } from './faults.ts';
import { SandboxInputError } from './input-error.ts';
import type { TokenInvalidator } from './tokens.ts';
import type { WebhookSender } from './webhooks.ts';
import type { SandboxWorld } from './world.ts';

/**
 * `/_control/...`: what tests and the demo use to change a sandbox between syncs, read back
 * what was pushed, inject faults and invalidate tokens. Bodies are validated; a bad one answers
 * 400 naming the field.
 */

export interface ControlApiDependencies {
  readonly world: SandboxWorld;
  readonly faults: FaultInjector;
  readonly webhooks: WebhookSender;
  /** The sandbox's token issuer: its OAuth server's store, or the platform's own. */
  readonly tokens?: TokenInvalidator;
}

const AccountIdParams = z.object({ accountId: z.string().min(1) });
const TransactionParams = AccountIdParams.extend({ transactionId: z.string().min(1) });

const AddAccountBody = z.object({
  ownerId: z.string().min(1, 'must not be empty'),
  id: z.string().min(1).optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter currency code').optional(),
  holdings: z.number().int().min(0),
  transactions: z.number().int().min(0),
});

const TradeBody = z
  .object({
    ticker: z.string().min(1).optional(),
    securityIndex: z.number().int().min(0).optional(),
    quantity: DecimalStringSchema,
    price: DecimalStringSchema,
  })
  .refine((body) => body.ticker !== undefined || body.securityIndex !== undefined, { message: 'ticker or securityIndex is required', path: ['ticker'] });

const PriceMoveBody = z
  .object({ ticker: z.string().min(1).optional(), securityIndex: z.number().int().min(0).optional(), percent: DecimalStringSchema })
  .refine((body) => body.ticker !== undefined || body.securityIndex !== undefined, { message: 'ticker or securityIndex is required', path: ['ticker'] });

const AmendBody = z
  .object({
    quantity: DecimalStringSchema.optional(),
    price: DecimalStringSchema.optional(),
    amount: DecimalStringSchema.optional(),
    settleDate: z.iso.date().optional(),
    description: z.string().min(1).max(500).optional(),
    status: z.enum(['PENDING', 'COMPLETED', 'FAILED', 'CANCELLED']).optional(),
  })
  .strict();

const FaultBody = z.object({
  fault: FaultSchema,
  pathPrefix: z.string().startsWith('/', 'must start with /').optional(),
  times: z.number().int().min(1).max(1_000_000).optional(),
});

const RateBody = z.object({ kind: FaultKindSchema, probability: z.number().min(0).max(1) });
const OwnerBody = z.object({ ownerId: z.string().min(1).optional() });
const WebhookBody = z.object({ url: z.url({ protocol: /^https?$/ }), secret: z.string().min(16, 'must be at least 16 characters'), accountId: z.string().min(1).optional() });

export function registerControlApi(app: FastifyInstance, dependencies: ControlApiDependencies): void {
  const { world, faults, webhooks, tokens } = dependencies;

  app.register(
    async (control) => {
      control.setErrorHandler((error, _request, reply) => {
        if (error instanceof z.ZodError) return badRequest(reply, error);
        if (error instanceof SandboxInputError) return reply.code(error.status).send({ error: error.status === 404 ? 'not_found' : error.status === 409 ? 'conflict' : 'invalid_request', field: error.field, message: error.message });
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send({ error: 'invalid_request', message: (error as Error).message });
        return reply.code(500).send({ error: 'internal', message: 'the control API failed' });
      });

      control.get('/accounts', async (request) => {
        const { ownerId } = z.object({ ownerId: z.string().min(1).optional() }).parse(request.query);
        return { accounts: world.accounts(ownerId) };
      });
      control.post('/accounts', async (request, reply) => reply.code(201).send(world.addAccount(AddAccountBody.parse(request.body))));
      control.post('/accounts/:accountId/close', async (request) => {
        const { accountId } = AccountIdParams.parse(request.params);
        world.closeAccount(accountId);
        return world.account(accountId);
      });
      control.post('/accounts/:accountId/buy', async (request, reply) => {
        const { accountId } = AccountIdParams.parse(request.params);
        return reply.code(201).send(world.buy(accountId, TradeBody.parse(request.body)));
      });
      control.post('/accounts/:accountId/sell', async (request, reply) => {
        const { accountId } = AccountIdParams.parse(request.params);
        return reply.code(201).send(world.sell(accountId, TradeBody.parse(request.body)));
      });
      control.post('/prices', async (request) => {
        const body = PriceMoveBody.parse(request.body);
        const security = body.ticker ?? body.securityIndex!;
        world.movePrice(security, body.percent);
        return { ticker: world.security(body.ticker !== undefined ? { ticker: body.ticker } : { securityIndex: body.securityIndex! }).ticker, price: world.price(security) };
      });
      control.post('/accounts/:accountId/transactions/:transactionId/cancel', async (request) => {
        const { accountId, transactionId } = TransactionParams.parse(request.params);
        return world.cancelTransaction(accountId, transactionId);
      });
      control.post('/accounts/:accountId/transactions/:transactionId/amend', async (request) => {
        const { accountId, transactionId } = TransactionParams.parse(request.params);
        return world.amendTransaction(accountId, transactionId, AmendBody.parse(request.body ?? {}));
      });
      control.post('/accounts/:accountId/transactions', async (request, reply) => {
        const { accountId } = AccountIdParams.parse(request.params);
        return reply.code(201).send(world.insertTransaction(accountId));
      });
      control.post('/accounts/:accountId/holdings', async (request, reply) => {
        const { accountId } = AccountIdParams.parse(request.params);
        return reply.code(201).send(world.insertHolding(accountId));
      });
      control.get('/pushes', async () => ({ pushes: world.pushes() }));

      control.post('/faults', async (request, reply) => {
        const body = FaultBody.parse(request.body);
        faults.enqueue(body.fault, { ...(body.pathPrefix === undefined ? {} : { pathPrefix: body.pathPrefix }), ...(body.times === undefined ? {} : { times: body.times }) });
        return reply.code(204).send();
      });
      control.post('/fault-rates', async (request, reply) => {
        const body = RateBody.parse(request.body);
        faults.setRate(body.kind, body.probability);
        return reply.code(204).send();
      });
      control.delete('/faults', async (_request, reply) => {
        faults.clear();
        return reply.code(204).send();
      });

      control.post('/tokens/expire', async (request, reply) => {
        if (tokens === undefined) return reply.code(404).send({ error: 'not_found', message: 'this sandbox issues no tokens' });
        const { ownerId } = OwnerBody.parse(request.body ?? {});
        return { expired: tokens.expireAll(ownerId) };
      });
      control.post('/tokens/revoke', async (request, reply) => {
        if (tokens === undefined) return reply.code(404).send({ error: 'not_found', message: 'this sandbox issues no tokens' });
        const { ownerId } = OwnerBody.parse(request.body ?? {});
        return { revoked: tokens.revokeAll(ownerId) };
      });

      control.post('/webhooks', async (request, reply) => reply.code(201).send(webhooks.subscribe(WebhookBody.parse(request.body))));
      control.get('/webhooks/deliveries', async () => ({ deliveries: webhooks.deliveries().map(({ body: _body, ...delivery }) => delivery) }));
    },
    { prefix: '/_control' },
  );
}

function badRequest(reply: FastifyReply, error: z.ZodError) {
  const issue = error.issues[0];
  const field = issue?.path.join('.') ?? '';
  const message = issue === undefined ? 'invalid request' : field === '' ? issue.message : `${field}: ${issue.message}`;
  return reply.code(400).send({ error: 'invalid_request', field, message });
}
