import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { registerControlApi } from './control-api.ts';
import { FaultInjector, type FaultDialect } from './faults.ts';
import { OAuthServer, type OAuthClient } from './oauth-server.ts';
import { TokenStore, type TokenLifetimes } from './tokens.ts';
import { WebhookSender } from './webhooks.ts';
import { SandboxWorld } from './world.ts';

/** What a platform's sandbox plugin is given to render the world in its dialect. */
export interface SandboxContext {
  readonly world: SandboxWorld;
  readonly faults: FaultInjector;
  /** Issues, verifies, expires and revokes the sandbox's tokens (the OAuth server's, or the platform's own endpoint's). */
  readonly tokens: TokenStore;
  readonly oauth?: OAuthServer;
  readonly webhooks: WebhookSender;
  /** Multiplies the platform's rate-limit windows (0.001 makes a 15-minute window about a second). */
  readonly rateLimitScale: number;
}

/** Registers the platform's routes; request-level faults, OAuth, formbody and /_control are already in place. */
export type SandboxPlugin = (app: FastifyInstance, context: SandboxContext) => void | Promise<void>;

export interface StartSandboxOptions {
  readonly seed: string;
  /** 0 (any free port) by default. */
  readonly port?: number;
  /** 127.0.0.1 by default. */
  readonly host?: string;
  /** The platform's "today" (YYYY-MM-DD); see SandboxWorld. */
  readonly asOf?: string;
  /** How the platform writes a 429 (retry header) and its error body: request-level faults use it. */
  readonly dialect: FaultDialect;
  readonly tokenLifetimes?: Partial<TokenLifetimes>;
  /** An OAuth authorization server at these paths for these clients (Black Diamond, Addepar). */
  readonly oauth?: {
    readonly clients: readonly OAuthClient[];
    readonly tokenPath: string;
    readonly authorizePath?: string;
    readonly revokePath?: string;
    readonly codeLifetimeSeconds?: number;
    readonly defaultOwnerId?: string;
  };
  readonly autoApprove?: boolean;
  /** Redirect URIs every OAuth client is registered with beside its own (the service's, whose users connect here). */
  readonly redirectUris?: readonly string[];
  readonly rateLimitScale?: number;
  /** Clock for token and code expiry (epoch ms). */
  readonly now?: () => number;
}

/** What a caller sets on any platform's sandbox; the platform's start function adds the rest. */
export type PlatformSandboxOptions = Pick<StartSandboxOptions, 'seed' | 'port' | 'asOf' | 'autoApprove' | 'redirectUris' | 'rateLimitScale' | 'now'>;

export interface RunningSandbox {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly world: SandboxWorld;
  readonly faults: FaultInjector;
  readonly tokens: TokenStore;
  readonly oauth?: OAuthServer;
  readonly webhooks: WebhookSender;
  close(): Promise<void>;
}

/** Starts a sandbox over real HTTP: the kit's shared parts, then the platform's plugin. */
export async function startSandbox(plugin: SandboxPlugin, options: StartSandboxOptions): Promise<RunningSandbox> {
  const world = new SandboxWorld({ seed: options.seed, ...(options.asOf === undefined ? {} : { asOf: options.asOf }) });
  const tokens = new TokenStore({ ...(options.tokenLifetimes === undefined ? {} : { lifetimes: options.tokenLifetimes }), ...(options.now === undefined ? {} : { now: options.now }) });
  const faults = new FaultInjector({ seed: options.seed, tokens });
  const webhooks = new WebhookSender(world);
  const oauth =
    options.oauth === undefined
      ? undefined
      : new OAuthServer({
          ...options.oauth,
          clients: options.oauth.clients.map((client) => ({ ...client, redirectUris: [...client.redirectUris, ...(options.redirectUris ?? [])] })),
          tokens,
          autoApprove: options.autoApprove ?? false,
          ...(options.now === undefined ? {} : { now: options.now }),
        });
  const app = Fastify({ logger: false, bodyLimit: 10 * 1_048_576 });
  await app.register(formbody);
  app.addHook('onRequest', faults.onRequest(options.dialect));
  oauth?.register(app);
  registerControlApi(app, { world, faults, webhooks, tokens });
  await plugin(app, { world, faults, tokens, ...(oauth === undefined ? {} : { oauth }), webhooks, rateLimitScale: options.rateLimitScale ?? 1 });
  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${address.port}`,
    world,
    faults,
    tokens,
    ...(oauth === undefined ? {} : { oauth }),
    webhooks,
    close: async () => {
      webhooks.close();
      await app.close();
    },
  };
}
