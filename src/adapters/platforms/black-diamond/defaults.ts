/**
 * The Black Diamond sandbox's registrations, shared by the sandbox, the tests and the demo. Not
 * secrets of any real platform: they only open the local sandbox.
 */
export const SANDBOX_CLIENT_ID = 'ledger-sandbox-client';
export const SANDBOX_CLIENT_SECRET = 'bd-sandbox-client-secret-3f9a2c';
export const SANDBOX_SUBSCRIPTION_KEY = 'bd-sandbox-subscription-key-7e41d0';
export const SANDBOX_WEBHOOK_SECRET = 'bd-sandbox-webhook-secret-a58c11';
/** The redirect URI the sandbox client is registered with (the demo and the tests complete the flow there). */
export const SANDBOX_REDIRECT_URI = 'http://127.0.0.1/oauth/black-diamond/callback';
export const SCOPE = 'api offline_access';

/** Lifetimes per the product specification (the real platform does not publish them). */
export const ACCESS_TOKEN_LIFETIME_MS = 60 * 60_000;
export const REFRESH_TOKEN_LIFETIME_MS = 365 * 24 * 60 * 60_000;

/**
 * Black Diamond publishes no rate limit. The sandbox enforces this one per subscription key (the
 * Azure API Management default shape: calls per renewal period, 429 with Retry-After), and the
 * adapter keeps under it.
 */
export const RATE_LIMIT = { requests: 600, perMs: 60_000 } as const;
