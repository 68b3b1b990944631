import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { TokenAuthority } from './adapters/http/api/auth.ts';
import { platformModules } from './adapters/platforms/registry.ts';
import type { SandboxFleet } from './adapters/platforms/sandbox-fleet.ts';
import { SANDBOX_USD_PER_UNIT } from './adapters/platforms/sandbox-kit/index.ts';
import type { SyncQueue } from './adapters/scheduler/sync-queue.ts';
import { authorizeConnection, initiateConnection } from './commands/connections.ts';
import { recordFxRates } from './commands/fx-rates.ts';
import { createPortfolio, linkConnection } from './commands/portfolios.ts';
import type { SyncServices } from './commands/sync-services.ts';

/** The user the demo connects on every start; its data is deterministic, so restarts find the same accounts. */
export const DEMO_OWNER_ID = 'demo';
export const DEMO_PORTFOLIO_ID = 'demo-portfolio';
const DEMO_METADATA = { actor: 'demo', source: 'startup' };

/** The demo user's token may look at everything the demo shows: its portfolio, sync monitoring and the log. */
const DEMO_ROLES = ['owner', 'operations', 'compliance'] as const;
export const DEMO_TOKEN_FILE = 'demo-token';

export const demoConnectionId = (platform: string) => `demo-${platform.replace('_', '-')}`;

/**
 * Connects the demo user to each sandbox through its adapter, as a user would (OAuth code flow
 * with PKCE, or key onboarding), links the three connections into one portfolio, records the
 * sandboxes' exchange rates, puts the connections on their schedules (the first syncs run at
 * once) and has the sandboxes that send webhooks send them to this service. Every step is idempotent except authorization: the sandboxes keep no state across
 * restarts, so each start authorizes again (a new credential version, nothing else repeated).
 */
export async function startDemo(
  services: SyncServices,
  fleet: SandboxFleet,
  queue: SyncQueue,
  options: { logger: Logger; webhookBaseUrl: string; auth: TokenAuthority; dataDir: string },
): Promise<void> {
  const { logger } = options;
  await createPortfolio(services.store, { portfolioId: DEMO_PORTFOLIO_ID, ownerId: DEMO_OWNER_ID, name: 'Demo: all platforms', baseCurrency: 'USD' }, DEMO_METADATA);
  await recordFxRates(
    services.store,
    { rates: Object.entries(SANDBOX_USD_PER_UNIT).filter(([currency]) => currency !== 'USD').map(([currency, rate]) => ({ currency, quote: 'USD', asOf: '2000-01-01', rate })), source: 'sandbox rates' },
    DEMO_METADATA,
  );
  for (const module of platformModules) {
    const sandbox = fleet.sandboxes.get(module.platform)!;
    const connectionId = demoConnectionId(module.platform);
    const accountId = `${connectionId}-account`;
    if (!sandbox.world.account(accountId)) sandbox.world.addAccount({ ownerId: DEMO_OWNER_ID, id: accountId, holdings: 40, transactions: 120 });
    await initiateConnection(services, { connectionId, ownerId: DEMO_OWNER_ID, platform: module.platform, platformAccountId: accountId }, DEMO_METADATA);
    const credentials = await module.connectWithoutUser(services.adapterFor(module.platform), sandbox, DEMO_OWNER_ID);
    await authorizeConnection(services, { connectionId, credentials }, DEMO_METADATA);
    await linkConnection(services.store, { portfolioId: DEMO_PORTFOLIO_ID, connectionId }, DEMO_METADATA);
    await queue.schedule(connectionId);
    if (module.sandboxWebhookSecret) {
      sandbox.webhooks.subscribe({ url: `${options.webhookBaseUrl}/webhooks/${module.platform}`, secret: module.sandboxWebhookSecret, accountId });
    }
    logger.info({ platform: module.platform, sandbox: sandbox.url, connectionId, accountId }, 'platform sandbox connected');
  }
  // The token is a secret: it goes to a file only its owner can read, and the log says where.
  const tokenFile = path.resolve(options.dataDir, DEMO_TOKEN_FILE);
  await mkdir(options.dataDir, { recursive: true });
  await writeFile(tokenFile, `${await options.auth.issue(DEMO_OWNER_ID, DEMO_ROLES, { expiresIn: '30d' })}\n`, { mode: 0o600 });
  await chmod(tokenFile, 0o600);
  logger.info(
    {
      portfolioId: DEMO_PORTFOLIO_ID,
      tokenFile,
      try: [
        `curl -s -H "Authorization: Bearer $(cat ${tokenFile})" ${options.webhookBaseUrl}/api/v1/portfolios/${DEMO_PORTFOLIO_ID}`,
        `${options.webhookBaseUrl}/docs`,
        `npm run ledger -- portfolio ${DEMO_PORTFOLIO_ID}`,
        'npm run ledger -- conflicts',
      ],
    },
    'demo portfolio ready; its first syncs are running',
  );
}
