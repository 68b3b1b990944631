import type { Platform } from '../../domain/platforms/records.ts';
import { platformModules } from './registry.ts';
import type { RunningSandbox } from './sandbox-kit/index.ts';

/** The three platform sandboxes `npm start` runs beside the ledger, on fixed ports so their URLs stay put. */
export interface SandboxFleet {
  readonly sandboxes: ReadonlyMap<Platform, RunningSandbox>;
  close(): Promise<void>;
}

/** A sandbox's port: portBase + 1, 2, 3 in the registry's order; 0 picks a free port. */
export function sandboxPort(portBase: number, platform: Platform): number {
  return portBase === 0 ? 0 : portBase + platformModules.findIndex((module) => module.platform === platform) + 1;
}

/** `redirectUri`: where the service's users come back after consent, registered with every OAuth sandbox. */
export async function startSandboxFleet(options: { seed: string; portBase: number; redirectUri?: string }): Promise<SandboxFleet> {
  const sandboxes = new Map<Platform, RunningSandbox>();
  const close = async () => {
    await Promise.all([...sandboxes.values()].map((sandbox) => sandbox.close()));
  };
  try {
    for (const module of platformModules) {
      const port = sandboxPort(options.portBase, module.platform);
      sandboxes.set(module.platform, await module.startSandbox({
          seed: `${options.seed}-${module.platform}`,
          port,
          autoApprove: true,
          ...(options.redirectUri ? { redirectUris: [options.redirectUri] } : {}),
        }),);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { sandboxes, close };
}
