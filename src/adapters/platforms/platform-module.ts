import type { Platform } from '../../domain/platforms/records.ts';
import type { Credentials, PlatformAdapter } from '../../ports/platform-adapter.ts';
import type { RunningSandbox } from './sandbox-kit/index.ts';

/** What each platform's index.ts exports: used by the tests, the benchmark and `npm start`. */
export interface PlatformModule {
  readonly platform: Platform;
  /** Platforms that notify of new data by signed webhook: the secret their sandbox signs with and the adapter checks. */
  readonly sandboxWebhookSecret?: string;
  /** Starts the platform's sandbox over real HTTP (127.0.0.1, port 0 unless given). */
  startSandbox(options: { seed: string; port?: number; autoApprove?: boolean; rateLimitScale?: number }): Promise<RunningSandbox>;
  /** An adapter configured to talk to the given base URL (a sandbox here; the real host in production). */
  createAdapter(config: PlatformAdapterConfig): PlatformAdapter;
  /**
   * Completes the connect flow without a person against an auto-approving sandbox: returns
   * credentials. Only the sandbox's URL is needed, so a sandbox in another process will do.
   */
  connectWithoutUser(adapter: PlatformAdapter, sandbox: Pick<RunningSandbox, 'url'>, ownerId: string): Promise<Credentials>;
}

/** The common part of an adapter's configuration; each platform adds its own extras. */
export interface PlatformAdapterConfig {
  readonly baseUrl: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly [extra: string]: unknown;
}
