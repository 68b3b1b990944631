export { requestError, classifyTransportFailure } from './errors.ts';
export { PlatformHttpClient, type PlatformHttpClientOptions, type PlatformRequest, type PlatformResponse } from './http-client.ts';
export { exchangeCode, refreshTokens, startAuthorization, type AuthorizationRequest, type OAuthClientConfig } from './oauth.ts';
export { TokenBucket } from './rate-limiter.ts';
export { parseRetryAfter } from './retry-after.ts';
export { tokenAuthorization } from './token-authorization.ts';
export { REFRESH_BEFORE_EXPIRY_MS, ROTATE_AFTER_MS, TokenManager, type TokenManagerOptions } from './token-manager.ts';
