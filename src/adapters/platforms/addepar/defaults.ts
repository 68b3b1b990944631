import { createHmac } from 'node:crypto';

/**
 * The Addepar sandbox's registrations, shared by the sandbox, the tests and the demo. Not secrets
 * of any real platform: they only open the local sandbox.
 */

/** Addepar serves its API under `/api` on the firm's host (`https://{firm}.addepar.com/api/`). */
export const API_ROOT = '/api';

/** JSON:API's media type: every request body must carry it and every answer is written in it. */
export const JSON_API = 'application/vnd.api+json';

/** The firm the sandbox plays; every call names it in the `Addepar-Firm` header. */
export const SANDBOX_FIRM_ID = '4271';

export const SANDBOX_CLIENT_ID = 'ledger-addepar-app';
export const SANDBOX_CLIENT_SECRET = 'addepar-sandbox-client-secret-c71e04';
/** The redirect URI the sandbox client is registered with (the demo and the tests complete the flow there). */
export const SANDBOX_REDIRECT_URI = 'http://127.0.0.1/oauth/addepar/callback';

/** Paths under API_ROOT. The token endpoint's path is unconfirmed in public material. */
export const AUTHORIZE_PATH = '/public/oauth2/authorize';
export const TOKEN_PATH = '/public/oauth2/token';
export const REVOKE_PATH = '/public/oauth2/revoke';

/** Read scopes the ledger asks for, and the write scopes its pushes need. */
export const READ_SCOPES = ['ENTITIES', 'POSITIONS', 'TRANSACTIONS', 'PORTFOLIO'] as const;
export const WRITE_SCOPES = ['POSITIONS_WRITE', 'TRANSACTIONS_WRITE', 'PORTFOLIO_WRITE'] as const;
export const SCOPE = [...READ_SCOPES, ...WRITE_SCOPES].join(' ');

/** Addepar: access tokens live 60 minutes; the product specification gives refresh tokens 90 days. */
export const ACCESS_TOKEN_LIFETIME_SECONDS = 60 * 60;
export const REFRESH_TOKEN_LIFETIME_SECONDS = 90 * 24 * 60 * 60;

const API_KEY_SEED = 'addepar-sandbox-api-keys';

/**
 * The Basic `key:secret` pair the sandbox keeps for an owner (Addepar's alternative to OAuth):
 * derived from the owner, so any owner the tests or the demo add has one.
 */
export function sandboxApiKey(ownerId: string): { readonly apiKey: string; readonly apiSecret: string } {
  const digest = createHmac('sha256', API_KEY_SEED).update(ownerId).digest('base64url');
  return { apiKey: `${ownerId}.${digest.slice(0, 12)}`, apiSecret: digest.slice(12, 44) };
}

export const DEMO_OWNER_ID = 'demo';

/**
 * Addepar's published limits per firm (older documentation): 50 requests per 15 minutes and 1000
 * per 24 hours. The sandbox and the adapter both scale them by `rateLimitScale`.
 */
export const RATE_LIMITS = [
  { requests: 50, perMs: 15 * 60_000 },
  { requests: 1000, perMs: 24 * 60 * 60_000 },
] as const;

/** Cursor pages: `page[limit]` defaults to 500 and may not exceed 2000. */
export const DEFAULT_PAGE_LIMIT = 500;
export const MAX_PAGE_LIMIT = 2000;

/** Job results stay downloadable for 24 hours after the job was created. */
export const JOB_RESULT_TTL_MS = 24 * 60 * 60_000;
