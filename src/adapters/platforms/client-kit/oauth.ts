import * as oauth from 'oauth4webapi';
import type { Platform } from '../../../domain/platforms/records.ts';
import { CredentialsSchema, PlatformError, type AuthorizationCallback, type AuthorizationStart, type Credentials } from '../../../ports/platform-adapter.ts';
import { classifyTransportFailure, requestError } from './errors.ts';

/** A platform's OAuth 2.0 token endpoint and our registration with it. */
export interface OAuthClientConfig {
  readonly platform: Platform;
  readonly tokenEndpoint: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  /** Default: client_secret_basic with a secret, none without. */
  readonly clientAuthentication?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** Default: the token endpoint's origin. */
  readonly issuer?: string;
  /** Default 30 s. */
  readonly timeoutMs?: number;
  /** When the platform omits expires_in (default 1 h). */
  readonly defaultAccessTokenLifetimeMs?: number;
  /** When the platform issues a refresh token without saying how long it lives. */
  readonly refreshTokenLifetimeMs?: number;
  readonly now?: () => number;
}

export interface AuthorizationRequest {
  readonly authorizationEndpoint: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope?: string;
  readonly extraParameters?: Readonly<Record<string, string>>;
}

/** The authorization URL with a fresh state and a PKCE S256 challenge; keep state and verifier for the callback. */
export async function startAuthorization(request: AuthorizationRequest): Promise<AuthorizationStart> {
  const state = oauth.generateRandomState();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const url = new URL(request.authorizationEndpoint);
  const params = url.searchParams;
  params.set('response_type', 'code');
  params.set('client_id', request.clientId);
  params.set('redirect_uri', request.redirectUri);
  if (request.scope) params.set('scope', request.scope);
  params.set('state', state);
  params.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  params.set('code_challenge_method', 'S256');
  for (const [key, value] of Object.entries(request.extraParameters ?? {})) params.set(key, value);
  return { authorizationUrl: url.toString(), state, codeVerifier };
}

/** Checks the callback's state, then exchanges its code (with the PKCE verifier) for credentials. */
export async function exchangeCode(config: OAuthClientConfig, callback: AuthorizationCallback & { readonly redirectUri: string }): Promise<Credentials> {
  const { as, client, auth } = parts(config);
  const callbackUrl = new URL(callback.callbackUrl);
  const state = callbackUrl.searchParams.get('state');
  if (state !== callback.expectedState) {
    throw requestError(config.platform, 'AUTH_REVOKED', 'authorization refused: the callback does not carry the state this authorization was started with', 'authorization');
  }
  const now = (config.now ?? Date.now)();
  const tokens = await call(config, 'authorization', async () => {
    const parameters = oauth.validateAuthResponse(as, client, callbackUrl, callback.expectedState);
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, parameters, callback.redirectUri, callback.codeVerifier, requestOptions(config));
    return oauth.processAuthorizationCodeResponse(as, client, await checked(config, response, 'authorization'));
  });
  return credentialsFrom(config, tokens, now, undefined);
}

/**
 * Exchanges the refresh token for new credentials. Never retried here: a single-use refresh token
 * the platform accepted before the answer was lost must not be sent twice (TokenManager reloads).
 */
export async function refreshTokens(config: OAuthClientConfig, credentials: Credentials): Promise<Credentials> {
  if (!credentials.refreshToken) throw requestError(config.platform, 'AUTH_EXPIRED', 'the credentials carry no refresh token', 'refresh');
  const { as, client, auth } = parts(config);
  const now = (config.now ?? Date.now)();
  const refreshToken = credentials.refreshToken;
  const tokens = await call(config, 'refresh', async () => {
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, requestOptions(config));
    return oauth.processRefreshTokenResponse(as, client, await checked(config, response, 'refresh'));
  });
  return credentialsFrom(config, tokens, now, credentials);
}

function parts(config: OAuthClientConfig): { as: oauth.AuthorizationServer; client: oauth.Client; auth: oauth.ClientAuth } {
  const as: oauth.AuthorizationServer = { issuer: config.issuer ?? new URL(config.tokenEndpoint).origin, token_endpoint: config.tokenEndpoint };
  const method = config.clientAuthentication ?? (config.clientSecret ? 'client_secret_basic' : 'none');
  const secret = config.clientSecret ?? '';
  const auth = method === 'client_secret_basic' ? oauth.ClientSecretBasic(secret) : method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.None();
  return { as, client: { client_id: config.clientId }, auth };
}

function requestOptions(config: OAuthClientConfig): oauth.TokenEndpointRequestOptions {
  const host = new URL(config.tokenEndpoint).hostname;
  // oauth4webapi refuses plain http; a sandbox on this machine is the one place it is acceptable.
  const local = host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  return { signal: AbortSignal.timeout(config.timeoutMs ?? 30_000), ...(local ? { [oauth.allowInsecureRequests]: true } : {}) };
}

/** 429 and 5xx are the platform's trouble, not a refused grant: they stay retryable for the caller. */
async function checked(config: OAuthClientConfig, response: Response, what: string): Promise<Response> {
  if (response.status === 429 || response.status >= 500) {
    await response.body?.cancel().catch(() => undefined);
    throw requestError(config.platform, response.status === 429 ? 'RATE_LIMITED' : 'PLATFORM_UNAVAILABLE', `token endpoint answered ${response.status}`, what);
  }
  return response;
}

/** Runs a token-endpoint exchange; every failure becomes a PlatformError worded here, never the library's text. */
async function call<T>(config: OAuthClientConfig, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof PlatformError) throw error;
    if (error instanceof oauth.ResponseBodyError || error instanceof oauth.AuthorizationResponseError) {
      const status = error instanceof oauth.ResponseBodyError ? ` (${error.status})` : '';
      throw requestError(config.platform, 'AUTH_REVOKED', `${what} refused by the platform${status}: ${safeOAuthCode(error.error)}`, what);
    }
    // A 401 carrying WWW-Authenticate (a client the platform does not know) is a refusal too, not a transport fault.
    if (error instanceof oauth.WWWAuthenticateChallengeError) {
      const challenge = error.cause[0];
      throw requestError(config.platform, 'AUTH_REVOKED', `${what} refused by the platform (${error.status}): ${safeOAuthCode(challenge?.parameters.error ?? 'invalid_client')}`, what);
    }
    if (error instanceof oauth.OperationProcessingError || error instanceof oauth.UnsupportedOperationError) {
      throw requestError(config.platform, 'PLATFORM_UNAVAILABLE', `${what}: the token endpoint's answer does not follow OAuth 2.0 (${error.code ?? 'invalid'})`, what);
    }
    const { code, detail } = classifyTransportFailure(error);
    throw requestError(config.platform, code, `${what}: ${detail}`, what);
  }
}

/** OAuth error codes are short ASCII words; anything else is not repeated. */
function safeOAuthCode(code: string): string {
  return /^[\w.-]{1,64}$/.test(code) ? code : 'error';
}

function credentialsFrom(config: OAuthClientConfig, tokens: oauth.TokenEndpointResponse, now: number, previous: Credentials | undefined): Credentials {
  const refreshLifetime = numeric(tokens.refresh_token_expires_in) ?? numeric(tokens.refresh_expires_in);
  const refreshTokenExpiresAt = tokens.refresh_token
    ? refreshLifetime !== undefined
      ? now + refreshLifetime * 1000
      : config.refreshTokenLifetimeMs !== undefined
        ? now + config.refreshTokenLifetimeMs
        : undefined
    : previous?.refreshTokenExpiresAt;
  const parsed = CredentialsSchema.safeParse({
    ...previous,
    accessToken: tokens.access_token,
    accessTokenExpiresAt: now + (tokens.expires_in !== undefined ? tokens.expires_in * 1000 : (config.defaultAccessTokenLifetimeMs ?? 3_600_000)),
    refreshToken: tokens.refresh_token ?? previous?.refreshToken,
    refreshTokenExpiresAt,
    grantedAt: previous?.grantedAt ?? now,
    scope: tokens.scope ?? previous?.scope,
  });
  if (!parsed.success) throw requestError(config.platform, 'PLATFORM_UNAVAILABLE', 'the token endpoint answered with unusable credentials', 'token');
  return parsed.data;
}

function numeric(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
