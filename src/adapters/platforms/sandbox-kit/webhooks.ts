import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SandboxWorld } from './world.ts';

/**
 * Signed webhook deliveries for new transactions. The signature is HMAC-SHA256 over
 * `<timestamp>.<body>` with the subscription's secret, sent as
 * `X-Sandbox-Signature: t=<unix seconds>,v1=<hex>`.
 */

export const WEBHOOK_SIGNATURE_HEADER = 'x-sandbox-signature';
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

export interface WebhookSubscription {
  readonly id: string;
  readonly url: string;
  /** Only this account's changes; every account when undefined. */
  readonly accountId?: string;
}

/** The JSON body of a delivery. */
export interface WebhookEvent {
  readonly id: string;
  readonly type: 'transactions.created';
  readonly dataType: 'transactions';
  readonly accountId: string;
  readonly recordIds: readonly string[];
  readonly changeSeq: number;
  readonly createdAt: string;
}

export interface WebhookDelivery {
  readonly subscriptionId: string;
  readonly eventId: string;
  readonly url: string;
  readonly body: string;
  readonly attempts: number;
  readonly status: number | 'failed';
}

export function signWebhook(body: string, secret: string, timestampSeconds: number): string {
  const digest = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${digest}`;
}

export type SignatureCheck = { readonly ok: true; readonly timestamp: number } | { readonly ok: false; readonly reason: string };

/** Checks a delivery's signature header against its raw body: constant-time, within a timestamp tolerance. */
export function verifyWebhookSignature(input: {
  readonly body: string;
  readonly header: string | undefined;
  readonly secret: string;
  readonly toleranceSeconds?: number;
  /** Epoch milliseconds. */
  readonly now?: number;
}): SignatureCheck {
  if (input.header === undefined || input.header === '') return { ok: false, reason: 'the signature header is missing' };
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of input.header.split(',')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === 't' && value !== undefined && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (name === 'v1' && value !== undefined) signatures.push(value);
  }
  if (timestamp === undefined || signatures.length === 0) return { ok: false, reason: 'the signature header is malformed' };
  const tolerance = input.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  const now = Math.floor((input.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: 'the signature timestamp is outside the tolerance' };
  const expected = Buffer.from(createHmac('sha256', input.secret).update(`${timestamp}.${input.body}`).digest('hex'));
  const matches = signatures.some((signature) => {
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return matches ? { ok: true, timestamp } : { ok: false, reason: 'the signature does not match' };
}

export interface WebhookSenderOptions {
  readonly now?: () => number;
  readonly maxAttempts?: number;
  readonly retryDelayMs?: number;
}

interface Subscription extends WebhookSubscription {
  readonly secret: string;
}

export class WebhookSender {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly log: WebhookDelivery[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly unsubscribeWorld: () => void;

  constructor(world: SandboxWorld, options: WebhookSenderOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.unsubscribeWorld = world.onChange((change) => {
      if (change.kind !== 'transaction_created') return;
      this.publish({
        id: randomUUID(),
        type: 'transactions.created',
        dataType: 'transactions',
        accountId: change.accountId,
        recordIds: [change.transactionId],
        changeSeq: change.changeSeq,
        createdAt: new Date(this.now()).toISOString(),
      });
    });
  }

  subscribe(input: { url: string; secret: string; accountId?: string }): WebhookSubscription {
    const subscription: Subscription = { id: randomUUID(), url: input.url, secret: input.secret, ...(input.accountId === undefined ? {} : { accountId: input.accountId }) };
    this.subscriptions.set(subscription.id, subscription);
    return { id: subscription.id, url: subscription.url, ...(subscription.accountId === undefined ? {} : { accountId: subscription.accountId }) };
  }

  unsubscribe(id: string): boolean {
    return this.subscriptions.delete(id);
  }

  deliveries(): readonly WebhookDelivery[] {
    return this.log;
  }

  /** Resolves when every delivery started so far has succeeded or given up. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  close(): void {
    this.unsubscribeWorld();
    this.subscriptions.clear();
  }

  private publish(event: WebhookEvent): void {
    const body = JSON.stringify(event);
    for (const subscription of this.subscriptions.values()) {
      if (subscription.accountId !== undefined && subscription.accountId !== event.accountId) continue;
      const delivery = this.deliver(subscription, event.id, body).finally(() => this.pending.delete(delivery));
      this.pending.add(delivery);
    }
  }

  private async deliver(subscription: Subscription, eventId: string, body: string): Promise<void> {
    let status: number | 'failed' = 'failed';
    let attempts = 0;
    while (attempts < this.maxAttempts) {
      attempts++;
      try {
        const response = await fetch(subscription.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [WEBHOOK_SIGNATURE_HEADER]: signWebhook(body, subscription.secret, Math.floor(this.now() / 1000)) },
          body,
          signal: AbortSignal.timeout(5000),
        });
        await response.arrayBuffer();
        status = response.status;
        if (response.ok) break;
      } catch {
        status = 'failed';
      }
      if (attempts < this.maxAttempts) await sleep(this.retryDelayMs * 2 ** (attempts - 1));
    }
    this.log.push({ subscriptionId: subscription.id, eventId, url: subscription.url, body, attempts, status });
  }
}
