import { Dec } from '../../../domain/money/decimal.ts';
import { isValidCusip, isValidIsin } from '../../../domain/securities/identifiers.ts';
import { securityIndexOfTicker, type SandboxAccount, type SandboxWorld } from '../sandbox-kit/index.ts';
import { OrionOverrideSchema, OrionRebalanceSchema, OrionTradeOrderSchema, type OrionError, type OrionOrderReceipt } from './wire.ts';
import type { z } from 'zod';

/** What a write-back route answers: a status and Orion's body (a receipt or an ASP.NET error). */
export interface DeskAnswer {
  readonly status: number;
  readonly body: OrionOrderReceipt | OrionError;
}

interface Accepted {
  readonly fingerprint: string;
  readonly receipt: OrionOrderReceipt;
}

/**
 * The sandbox's trading desk: trade orders, rebalances and manual overrides are validated as
 * Orion's Web API validates (400 with ModelState per field, 404 for what the user cannot see),
 * recorded in the world's push log and answered with a receipt. A clientReference makes a push
 * idempotent: the same instruction again answers the first receipt (200); a different one under
 * the same reference is a conflict (409).
 */
export class OrionTradingDesk {
  private readonly accepted = new Map<string, Accepted>();
  private nextId = 900_001;

  constructor(private readonly world: SandboxWorld) {}

  order(ownerId: string, raw: unknown): DeskAnswer {
    const parsed = OrionTradeOrderSchema.safeParse(raw);
    if (!parsed.success) return invalid('order', parsed.error);
    const order = parsed.data;
    const account = this.visibleAccount(ownerId, order.accountId);
    if (account === undefined) return notFound(`Account '${order.accountId}' was not found.`);
    const problems: Record<string, string[]> = {};
    if (account.status === 'closed') problems['order.accountId'] = ['The account is inactive and cannot be traded.'];
    securityProblems(order, 'order', problems);
    if (order.orderType === 'Limit' && order.limitPrice === undefined) problems['order.limitPrice'] = ['A Limit order needs a limitPrice.'];
    if (order.orderType === 'Market' && order.limitPrice !== undefined) problems['order.limitPrice'] = ['A Market order takes no limitPrice.'];
    if (Object.keys(problems).length > 0) return modelState(problems);
    return this.accept(ownerId, account, order.clientReference, 'Pending', { kind: 'trade', ...order });
  }

  rebalance(ownerId: string, raw: unknown): DeskAnswer {
    const parsed = OrionRebalanceSchema.safeParse(raw);
    if (!parsed.success) return invalid('rebalance', parsed.error);
    const rebalance = parsed.data;
    const account = this.visibleAccount(ownerId, rebalance.accountId);
    if (account === undefined) return notFound(`Account '${rebalance.accountId}' was not found.`);
    const problems: Record<string, string[]> = {};
    if (account.status === 'closed') problems['rebalance.accountId'] = ['The account is inactive and cannot be rebalanced.'];
    const seen = new Set<string>();
    rebalance.targets.forEach((target, index) => {
      securityProblems(target, `rebalance.targets[${index}]`, problems);
      const key = target.ticker ?? target.cusip ?? target.isin ?? '';
      if (seen.has(key)) (problems[`rebalance.targets[${index}]`] ??= []).push(`The security '${key}' is targeted more than once.`);
      seen.add(key);
    });
    const total = rebalance.targets.reduce((sum, target) => sum.plus(String(target.targetPercent)), new Dec(0));
    if (!total.eq(100)) problems['rebalance.targets'] = [`The targets must add up to 100 percent; they add up to ${total.toFixed()}.`];
    if (Object.keys(problems).length > 0) return modelState(problems);
    return this.accept(ownerId, account, rebalance.clientReference, 'Queued', { kind: 'rebalance', ...rebalance });
  }

  override(ownerId: string, assetId: string, raw: unknown): DeskAnswer {
    const parsed = OrionOverrideSchema.safeParse(raw);
    if (!parsed.success) return invalid('override', parsed.error);
    const override = parsed.data;
    const account = this.visibleAccount(ownerId, override.accountId);
    if (account === undefined) return notFound(`Account '${override.accountId}' was not found.`);
    if (this.world.holding(account.id, assetId) === undefined) return notFound(`Asset '${assetId}' was not found in account '${account.id}'.`);
    if (override.field !== 'CostBasis' && override.value === 0) return modelState({ 'override.value': [`An override of ${override.field} must be greater than zero.`] });
    return this.accept(ownerId, account, override.clientReference, 'Accepted', { kind: 'manual_override', assetId, ...override });
  }

  private visibleAccount(ownerId: string, accountId: string): SandboxAccount | undefined {
    const account = this.world.account(accountId);
    return account?.ownerId === ownerId ? account : undefined;
  }

  private accept(ownerId: string, account: SandboxAccount, clientReference: string, status: string, body: Record<string, unknown>): DeskAnswer {
    const key = `${ownerId}\u0000${clientReference}`;
    const fingerprint = JSON.stringify(body);
    const earlier = this.accepted.get(key);
    if (earlier !== undefined) {
      if (earlier.fingerprint === fingerprint) return { status: 200, body: earlier.receipt };
      return { status: 409, body: { Message: `The clientReference '${clientReference}' was already used for a different instruction.` } };
    }
    const receipt: OrionOrderReceipt = { id: this.nextId++, clientReference, status, createdDate: new Date().toISOString() };
    this.accepted.set(key, { fingerprint, receipt });
    this.world.recordPush({ platform: 'orion', accountId: account.id, body, reference: String(receipt.id) });
    return { status: 201, body: receipt };
  }
}

function securityProblems(security: { ticker?: string | undefined; cusip?: string | undefined; isin?: string | undefined }, prefix: string, problems: Record<string, string[]>): void {
  if (security.ticker === undefined && security.cusip === undefined && security.isin === undefined) {
    problems[`${prefix}.ticker`] = ['A ticker, CUSIP or ISIN is required.'];
    return;
  }
  if (security.ticker !== undefined && securityIndexOfTicker(security.ticker) === undefined) problems[`${prefix}.ticker`] = [`Product '${security.ticker}' was not found.`];
  if (security.cusip !== undefined && !isValidCusip(security.cusip)) problems[`${prefix}.cusip`] = [`'${security.cusip}' is not a valid CUSIP.`];
  if (security.isin !== undefined && !isValidIsin(security.isin)) problems[`${prefix}.isin`] = [`'${security.isin}' is not a valid ISIN.`];
}

function invalid(root: string, error: z.ZodError): DeskAnswer {
  const problems: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const path = [root, ...issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : String(part)))].join('.').replace(/\.\[/g, '[');
    (problems[path] ??= []).push(issue.message);
  }
  return modelState(problems);
}

function modelState(problems: Record<string, string[]>): DeskAnswer {
  return { status: 400, body: { Message: 'The request is invalid.', ModelState: problems } };
}

function notFound(message: string): DeskAnswer {
  return { status: 404, body: { Message: message } };
}
