import type { Platform } from '../../domain/platforms/records.ts';
import { addepar } from './addepar/index.ts';
import { blackDiamond } from './black-diamond/index.ts';
import { orion } from './orion/index.ts';
import type { PlatformModule } from './platform-module.ts';

/** Every platform the ledger connects to: the one place that names them (tests, the bench and `npm start` read it). */
export const platformModules: readonly PlatformModule[] = [orion, addepar, blackDiamond];

const byPlatform = new Map<Platform, PlatformModule>(platformModules.map((module) => [module.platform, module]));

/** The module of a platform; every value of Platform has one. */
export function platformModule(platform: Platform): PlatformModule {
  const module = byPlatform.get(platform);
  if (module === undefined) throw new Error(`no platform module for ${platform}`);
  return module;
}
