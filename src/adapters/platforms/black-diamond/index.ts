import { z } from 'zod';
import type { Credentials, PlatformAdapter } from '../../../ports/platform-adapter.ts';
import { requestError } from '../client-kit/index.ts';
import type { PlatformAdapterConfig, PlatformModule } from '../platform-module.ts';
import type { RunningSandbox } from '../sandbox-kit/index.ts';
import { BlackDiamondAdapter } from './adapter.ts';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REDIRECT_URI, SANDBOX_SUBSCRIPTION_KEY, SANDBOX_WEBHOOK_SECRET } from './defaults.ts';
import { startBlackDiamondSandbox } from './sandbox.ts';

export { BlackDiamondAdapter, type BlackDiamondConfig } from './adapter.ts';
export { startBlackDiamondSandbox, type BlackDiamondSandboxOptions } from './sandbox.ts';
export * from './defaults.ts';

/** Black Diamond's extras beyond the common adapter configuration; the sandbox's registrations by default. */
const ExtrasSchema = z.object({
  loginUrl: z.string().url().optional(),
  subscriptionKey: z.string().min(1).default(SANDBOX_SUBSCRIPTION_KEY),
  webhookSecret: z.string().min(1).default(SANDBOX_WEBHOOK_SECRET),
  pageSize: z.number().int().min(1).max(10_000).optional(),
  timeoutMs: z.number().int().positive().optional(),
  retry: z.object({ maxAttempts: z.number().int().min(1), initialDelayMs: z.number().min(0), maxDelayMs: z.number().min(0) }).optional(),
  breaker: z.object({ consecutiveFailures: z.number().int().min(1), halfOpenAfterMs: z.number().min(0) }).optional(),
  rateLimit: z.object({ requests: z.number().int().min(1), perMs: z.number().positive() }).optional(),
  batchPollMs: z.number().min(0).optional(),
  now: z.custom<() => number>((value) => typeof value === 'function').optional(),
});

export const blackDiamond: PlatformModule = {
  platform: 'black_diamond',
  sandboxWebhookSecret: SANDBOX_WEBHOOK_SECRET,

  startSandbox: (options) => startBlackDiamondSandbox(options),

  createAdapter(config: PlatformAdapterConfig): PlatformAdapter {
    const extras = ExtrasSchema.parse(config);
    return new BlackDiamondAdapter({
      ...stripUndefined(extras),
      baseUrl: config.baseUrl,
      clientId: config.clientId ?? SANDBOX_CLIENT_ID,
      clientSecret: config.clientSecret ?? SANDBOX_CLIENT_SECRET,
    });
  },

  /**
   * What the user's browser does: open the authorization URL (with the owner as login hint), approve
   * on the consent page unless the sandbox approves by itself, and hand the redirect back to the adapter.
   */
  async connectWithoutUser(adapter: PlatformAdapter, sandbox: Pick<RunningSandbox, 'url'>, ownerId: string): Promise<Credentials> {
    const start = await adapter.beginAuthorization(SANDBOX_REDIRECT_URI);
    const url = new URL(start.authorizationUrl);
    url.searchParams.set('login_hint', ownerId);
    let response = await fetch(url, { redirect: 'manual' });
    if (response.status === 200) {
      const form = new URLSearchParams(url.searchParams);
      form.delete('login_hint');
      form.set('user', ownerId);
      form.set('decision', 'approve');
      await response.arrayBuffer();
      response = await fetch(new URL(url.pathname, sandbox.url), { method: 'POST', body: form, redirect: 'manual' });
    }
    const location = response.headers.get('location');
    await response.arrayBuffer();
    if (response.status < 300 || response.status >= 400 || location === null) {
      throw requestError('black_diamond', 'AUTH_REVOKED', `the sandbox's authorization answered ${response.status} without a redirect`, 'authorization');
    }
    return adapter.completeAuthorization({ callbackUrl: location, expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri: SANDBOX_REDIRECT_URI });
  },
};

function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

export default blackDiamond;
