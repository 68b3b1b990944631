import { createHmac } from 'node:crypto';

/**
 * The Orion sandbox's registrations, shared by the sandbox, the tests and the demo. Not secrets of
 * any real platform: they only open the local sandbox.
 */

/** Orion's API root under its host: `https://api.orionadvisor.com/api/v1`. */
export const API_ROOT = '/api/v1';

/** The partner app's registration (sent as `client_id` / `client_secret` headers when logging in). */
export const SANDBOX_CLIENT_ID = 'ledger-partner-app';
export const SANDBOX_CLIENT_SECRET = 'orion-sandbox-partner-secret-5b2e97';

const API_USER_SECRET_SEED = 'orion-sandbox-api-users';

/**
 * The API user (key and secret) the sandbox keeps for an owner: `<owner>@sandbox.orion` and a
 * secret derived from the owner, so any owner the tests or the demo add can log in.
 */
export function sandboxApiUser(ownerId: string): { readonly apiKey: string; readonly apiSecret: string } {
  return {
    apiKey: `${ownerId}@sandbox.orion`,
    apiSecret: createHmac('sha256', API_USER_SECRET_SEED).update(ownerId).digest('base64url').slice(0, 32),
  };
}

/** The demo's owner and its API user. */
export const DEMO_OWNER_ID = 'demo';
export const DEMO_API_USER = sandboxApiUser(DEMO_OWNER_ID);

/** Orion's published access-token lifetime (`expires_in: 36000`); refresh tokens do not expire. */
export const ACCESS_TOKEN_LIFETIME_SECONDS = 36_000;

/** The product specification's limit (Orion publishes none): per API user, over a one-minute window. */
export const RATE_LIMIT = { requests: 1000, perMs: 60_000 } as const;

/** The largest `$top` the sandbox serves (a larger one is cut to it) and what it serves without one. */
export const MAX_PAGE_SIZE = 5000;
export const DEFAULT_PAGE_SIZE = 1000;
