import { z } from 'zod';
import type { PlatformModule } from '../platform-module.ts';
import { OrionAdapter, type OrionAdapterConfig } from './adapter.ts';
import { sandboxApiUser } from './defaults.ts';
import { startOrionSandbox } from './sandbox.ts';

const Positive = z.number().int().positive();

/** The adapter's settings beyond the base URL; functions (clock, logger) pass through as given. */
const OrionConfigSchema = z.object({
  baseUrl: z.url(),
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  pageSize: Positive.optional(),
  timeoutMs: Positive.optional(),
  retry: z.object({ maxAttempts: Positive, initialDelayMs: z.number().nonnegative(), maxDelayMs: z.number().nonnegative(), maxRetryAfterMs: z.number().nonnegative().optional() }).optional(),
  breaker: z.object({ consecutiveFailures: Positive, halfOpenAfterMs: Positive }).optional(),
  bulkhead: z.object({ limit: Positive, queue: z.number().int().nonnegative() }).optional(),
  rateLimit: z.object({ requests: Positive, perMs: Positive, burst: Positive.optional() }).optional(),
});

export const orion: PlatformModule = {
  platform: 'orion',
  startSandbox: (options) => startOrionSandbox(options),
  createAdapter: (config) => {
    const settings = OrionConfigSchema.parse(config);
    const extras = config as Partial<Pick<OrionAdapterConfig, 'now' | 'logger'>>;
    return new OrionAdapter({ ...settings, ...(extras.now ? { now: extras.now } : {}), ...(extras.logger ? { logger: extras.logger } : {}) });
  },
  connectWithoutUser: (adapter, _sandbox, ownerId) => {
    const user = sandboxApiUser(ownerId);
    return adapter.onboardApiKey(user.apiKey, user.apiSecret);
  },
};

export default orion;
export { OrionAdapter, type OrionAdapterConfig } from './adapter.ts';
export { DEMO_API_USER, DEMO_OWNER_ID, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, sandboxApiUser } from './defaults.ts';
export { startOrionSandbox, type RunningOrionSandbox } from './sandbox.ts';
