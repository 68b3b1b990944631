import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openTokenAuthority, type Role, type TokenAuthority } from '../../src/adapters/http/api/auth.ts';
import { apiSettings } from '../../src/adapters/http/api/context.ts';
import { buildServer } from '../../src/adapters/http/server.ts';
import { startSandboxFleet, type SandboxFleet } from '../../src/adapters/platforms/sandbox-fleet.ts';
import { SyncQueue, type SyncWorker } from '../../src/adapters/scheduler/sync-queue.ts';
import { createSyncServices } from '../../src/adapters/scheduler/sync-services.ts';
import { createLogger } from '../../src/adapters/telemetry/logger.ts';
import type { SyncServices } from '../../src/commands/sync-services.ts';
import { openLedger, projectors, type Ledger } from '../../src/composition.ts';
import { loadConfig } from '../../src/config.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface ApiHarness {
  readonly baseUrl: string;
  readonly database: TestDatabase;
  readonly ledger: Ledger;
  readonly services: SyncServices;
  readonly queue: SyncQueue;
  readonly fleet: SandboxFleet;
  readonly auth: TokenAuthority;
  /** A token for `user` with `roles` (owner by default). */
  token(user: string, roles?: readonly Role[], expiresIn?: string): Promise<string>;
  /** A real HTTP request to the API; `token` sets the bearer header. */
  request(method: string, url: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<ApiResponse>;
  /** Waits until every projector holds everything appended so far. */
  settle(): Promise<void>;
  /** The log's head position: unchanged across a refused request. */
  head(): Promise<number>;
  close(): Promise<void>;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  // Tests read whatever shape the route answers; the schemas are checked by the server.
  readonly body: any;
}

export interface ApiHarnessOptions {
  /** Extra configuration (rate limits, wait times…), as environment variables. */
  readonly env?: Record<string, string>;
  /** Start the sync worker, so that requested syncs run (default true). */
  readonly syncWorker?: boolean;
}

/**
 * The whole service in this process on a fresh database: the three sandboxes, the projection
 * worker, the sync worker and the HTTP server on a free port, reached over real HTTP.
 */
export async function startApi(options: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ledger-api-'));
  const config = loadConfig({
    DATABASE_URL: database.connectionString,
    LEDGER_DATA_DIR: dataDir,
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    PROJECTION_POLL_MS: '100',
    ...options.env,
  });
  const logger = createLogger(process.env.DEBUG_API ? 'debug' : 'silent');
  const auth = await openTokenAuthority(config);
  const ledger = await openLedger(config, logger);
  const settings = apiSettings(config);
  const fleet = await startSandboxFleet({ seed: 'api', portBase: 0, redirectUri: settings.oauthRedirectUri });
  const services = createSyncServices(
    ledger,
    Object.fromEntries([...fleet.sandboxes].map(([platform, sandbox]) => [platform, { baseUrl: sandbox.url, retry: { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 200 } }])),
  );
  const queue = new SyncQueue(ledger.database.pool, services);
  const worker = ledger.startWorker();
  const syncWorker: SyncWorker | null = options.syncWorker === false ? null : queue.startWorker({ logger, pollMs: 50 });
  const app: FastifyInstance = await buildServer(ledger, logger, { maxLagEvents: 10_000, worker, api: { ledger, sync: services, queue, auth, settings } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  return {
    baseUrl,
    database,
    ledger,
    services,
    queue,
    fleet,
    auth,
    token: (user, roles = ['owner'], expiresIn) => auth.issue(user, roles, expiresIn ? { expiresIn } : {}),
    async request(method, url, { token, body, headers = {} } = {}) {
      const response = await fetch(`${baseUrl}${url}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // Not JSON (the docs page): the text is the body.
      }
      return { status: response.status, headers: response.headers, body: parsed };
    },
    async settle() {
      for (const projector of projectors) await ledger.engine.catchUpTo(projector);
    },
    async head() {
      const result = await ledger.database.pool.query<{ head: string | null }>('SELECT max(global_position)::text AS head FROM events');
      return Number(result.rows[0]?.head ?? 0);
    },
    async close() {
      await app.close();
      await syncWorker?.stop();
      await fleet.close();
      await ledger.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
