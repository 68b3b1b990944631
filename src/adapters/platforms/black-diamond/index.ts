import { z } from 'zod';
import type { PlatformAdapter } from '../../../ports/platform-adapter.ts';
import { connectThroughConsent, definedOnly } from '../module-kit.ts';
import type { PlatformAdapterConfig, PlatformModule } from '../platform-module.ts';
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
      ...definedOnly(extras),
      baseUrl: config.baseUrl,
      clientId: config.clientId ?? SANDBOX_CLIENT_ID,
      clientSecret: config.clientSecret ?? SANDBOX_CLIENT_SECRET,
    });
  },

  connectWithoutUser: connectThroughConsent('black_diamond', SANDBOX_REDIRECT_URI),
};

export default blackDiamond;
