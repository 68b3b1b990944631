import { z } from 'zod';
import { parseField } from './domain/validation.ts';

const ConfigSchema = z.object({
  DATABASE_URL: z.string().url('must be a postgres:// URL').optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LEDGER_DATA_DIR: z.string().min(1).default('.data'),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(0).max(65535).default(54329),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PG_POOL_MAX: z.coerce.number().int().positive().default(10),
  PROJECTION_BATCH_SIZE: z.coerce.number().int().positive().max(5000).default(500),
  PROJECTION_POLL_MS: z.coerce.number().int().positive().default(1000),
  READY_MAX_LAG_EVENTS: z.coerce.number().int().nonnegative().default(10_000),
  /** `npm start` runs the three platform sandboxes and connects a demo user to them; `off` leaves them out. */
  PLATFORM_SANDBOXES: z.enum(['on', 'off']).default('on'),
  /** The sandboxes listen on this port + 1, 2 and 3 (0: any free ports). */
  SANDBOX_PORT_BASE: z.coerce.number().int().min(0).max(65532).default(4100),
  SANDBOX_SEED: z.string().min(1).default('demo'),
  /** Comma-separated `keyId:base64key` (32-byte AES keys), oldest first; the last one encrypts. */
  LEDGER_CREDENTIAL_KEYS: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9+/_-]+={0,2}(,[A-Za-z0-9_-]{1,64}:[A-Za-z0-9+/_-]+={0,2})*$/, 'must be comma-separated keyId:base64key entries')
    .optional(),
  /** Bearer tokens: issuer and audience every token must carry. */
  AUTH_ISSUER: z.string().min(1).default('portfolio-sync-ledger'),
  AUTH_AUDIENCE: z.string().min(1).default('portfolio-sync-ledger-api'),
  /** HS256 secret (32+ bytes) tokens are signed with; absent: one generated into the data directory. */
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Verify tokens with an identity provider's published keys instead of a shared secret. */
  AUTH_JWKS_URL: z.string().url('must be an https:// URL').optional(),
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(1200),
  /** Comma-separated origins allowed to call the API from a browser. */
  API_CORS_ORIGINS: z.string().optional(),
  API_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(65_536),
  /** How long a query waits for the read models to reach a Ledger-Min-Position. */
  API_READ_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** Where platforms send users back after consent; default: this service's /connect/callback. */
  OAUTH_REDIRECT_URI: z.string().url('must be an http(s):// URL').optional(),
  CONNECT_SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(600),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Reads the configuration from the environment; a bad value names the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const relevant = Object.fromEntries(Object.keys(ConfigSchema.shape).map((key) => [key, env[key] === '' ? undefined : env[key]]));
  return parseField(ConfigSchema, relevant, 'env');
}
