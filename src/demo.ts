import type { Logger } from 'pino';
import { platformModules } from './adapters/platforms/registry.ts';
import { startSandboxFleet, type SandboxFleet } from './adapters/platforms/sandbox-fleet.ts';
import { authorizeConnection, initiateConnection, type ConnectionServices } from './commands/connections.ts';

/** The user the demo connects on every start; its data is deterministic, so restarts find the same accounts. */
export const DEMO_OWNER_ID = 'demo';
const DEMO_METADATA = { actor: 'demo', source: 'startup' };

export const demoConnectionId = (platform: string) => `demo-${platform.replace('_', '-')}`;

/**
 * Starts the three platform sandboxes and connects the demo user to each through its adapter, as a
 * user would (OAuth code flow with PKCE, or key onboarding). The sandboxes keep no state across
 * restarts, so every start authorizes again; the connection itself is created only once.
 */
export async function startDemo(services: ConnectionServices, options: { seed: string; portBase: number; logger: Logger }): Promise<SandboxFleet> {
  const fleet = await startSandboxFleet(options);
  try {
    for (const module of platformModules) {
      const sandbox = fleet.sandboxes.get(module.platform)!;
      const accountId = `${demoConnectionId(module.platform)}-account`;
      if (!sandbox.world.account(accountId)) sandbox.world.addAccount({ ownerId: DEMO_OWNER_ID, id: accountId, holdings: 40, transactions: 120 });
      const connectionId = demoConnectionId(module.platform);
      await initiateConnection(services, { connectionId, ownerId: DEMO_OWNER_ID, platform: module.platform, platformAccountId: accountId }, DEMO_METADATA);
      const adapter = module.createAdapter({ baseUrl: sandbox.url, logger: options.logger });
      const credentials = await module.connectWithoutUser(adapter, sandbox, DEMO_OWNER_ID);
      await authorizeConnection(services, { connectionId, credentials }, DEMO_METADATA);
      options.logger.info({ platform: module.platform, sandbox: sandbox.url, connectionId, accountId }, 'platform sandbox connected');
    }
  } catch (error) {
    await fleet.close();
    throw error;
  }
  return fleet;
}
