import { z } from 'zod';
import type { Config } from '../../config.ts';
import { PlatformSchema } from '../../domain/platforms/records.ts';
import { parseField } from '../../domain/validation.ts';
import { platformModules } from '../platforms/registry.ts';
import { sandboxPort } from '../platforms/sandbox-fleet.ts';
import type { PlatformEndpoints } from './sync-services.ts';

/** `orion=https://…,addepar=https://…`: where each platform is reached, overriding the sandboxes. */
const PlatformUrlsSchema = z
  .string()
  .transform((text) => text.split(',').filter((part) => part.trim() !== ''))
  .pipe(z.array(z.string().regex(/^[a-z_]+=https?:\/\/\S+$/, 'must read platform=url')))
  .transform((parts) => parts.map((part) => part.split('=') as [string, string]))
  .pipe(z.array(z.tuple([PlatformSchema, z.url()])));

/**
 * The platforms' base URLs: the sandboxes `npm start` runs (see sandboxPort) unless
 * LEDGER_PLATFORM_URLS names others.
 */
export function platformEndpoints(config: Config, env: NodeJS.ProcessEnv = process.env): PlatformEndpoints {
  const endpoints: Record<string, { baseUrl: string }> = {};
  if (config.PLATFORM_SANDBOXES === 'on' && config.SANDBOX_PORT_BASE !== 0) {
    for (const module of platformModules) endpoints[module.platform] = { baseUrl: `http://127.0.0.1:${sandboxPort(config.SANDBOX_PORT_BASE, module.platform)}` };
  }
  if (env.LEDGER_PLATFORM_URLS) {
    for (const [platform, baseUrl] of parseField(PlatformUrlsSchema, env.LEDGER_PLATFORM_URLS, 'LEDGER_PLATFORM_URLS')) endpoints[platform] = { baseUrl };
  }
  return endpoints;
}
