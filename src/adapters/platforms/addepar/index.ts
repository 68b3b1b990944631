import { z } from 'zod';
import type { PlatformAdapter } from '../../../ports/platform-adapter.ts';
import { connectThroughConsent, definedOnly } from '../module-kit.ts';
import type { PlatformAdapterConfig, PlatformModule } from '../platform-module.ts';
import { AddeparAdapter } from './adapter.ts';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REDIRECT_URI } from './defaults.ts';
import { startAddeparSandbox } from './sandbox.ts';

export { AddeparAdapter, DEFAULT_BENCHMARK_ID, type AddeparAdapterConfig } from './adapter.ts';
export { startAddeparSandbox, type AddeparSandboxOptions } from './sandbox.ts';
export * from './defaults.ts';

/** Addepar's extras beyond the common adapter configuration; the sandbox's registrations by default. */
const ExtrasSchema = z.object({
  firmId: z.string().min(1).optional(),
  authorizationEndpoint: z.string().url().optional(),
  tokenEndpoint: z.string().url().optional(),
  rateLimitScale: z.number().positive().optional(),
  timeoutMs: z.number().int().positive().optional(),
  retry: z.object({ maxAttempts: z.number().int().min(1), initialDelayMs: z.number().min(0), maxDelayMs: z.number().min(0) }).optional(),
  breaker: z.object({ consecutiveFailures: z.number().int().min(1), halfOpenAfterMs: z.number().min(0) }).optional(),
  jobPolling: z.object({ initialMs: z.number().min(0), maxMs: z.number().min(0), giveUpAfterMs: z.number().positive() }).optional(),
  defaultBenchmarkId: z.string().min(1).optional(),
  now: z.custom<() => number>((value) => typeof value === 'function').optional(),
});

export const addepar: PlatformModule = {
  platform: 'addepar',

  startSandbox: (options) => startAddeparSandbox(options),

  createAdapter(config: PlatformAdapterConfig): PlatformAdapter {
    const extras = ExtrasSchema.parse(config);
    return new AddeparAdapter({
      ...definedOnly(extras),
      baseUrl: config.baseUrl,
      clientId: config.clientId ?? SANDBOX_CLIENT_ID,
      clientSecret: config.clientSecret ?? SANDBOX_CLIENT_SECRET,
    });
  },

  connectWithoutUser: connectThroughConsent('addepar', SANDBOX_REDIRECT_URI),
};

export default addepar;
