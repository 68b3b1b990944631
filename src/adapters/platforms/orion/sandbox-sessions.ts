import { timingSafeEqual } from 'node:crypto';
import type { AccessVerdict, IssuedTokens, TokenLifetimes, TokenStore } from '../sandbox-kit/index.ts';
import { ACCESS_TOKEN_LIFETIME_SECONDS, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, sandboxApiUser } from './defaults.ts';

/** Orion's token lifetimes: a 10-hour session; a refresh token that never expires but works once. */
export const ORION_TOKEN_LIFETIMES: TokenLifetimes = { accessTokenSeconds: ACCESS_TOKEN_LIFETIME_SECONDS, refreshTokenSeconds: undefined, rotateRefreshTokens: true };

/** Why a login or refresh was refused; the sandbox answers each with a 401. */
export type LoginRefusal = 'bad_credentials' | 'bad_partner' | 'revoked' | 'refresh_refused';

/**
 * Orion's sessions over the sandbox's token store: API users log in with key and secret (Basic)
 * and refresh with a single-use refresh token. A revocation (a fault, or the control API) revokes
 * grants in the store; when an API user's latest grant is revoked the user itself counts as
 * disabled, as an Orion administrator would leave it, so its key and secret no longer log in.
 */
export class OrionSessions {
  /** Each API user's latest access token, to tell whether its access was revoked. */
  private readonly latest = new Map<string, string>();
  private refused = 0;

  constructor(private readonly store: TokenStore) {}

  /** Basic `user:password`, with the partner app's headers when it sends them. */
  login(basic: string, partner: { clientId?: string; clientSecret?: string }): IssuedTokens | LoginRefusal {
    if (partner.clientId !== undefined || partner.clientSecret !== undefined) {
      if (!same(partner.clientId ?? '', SANDBOX_CLIENT_ID) || !same(partner.clientSecret ?? '', SANDBOX_CLIENT_SECRET)) return 'bad_partner';
    }
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const apiKey = colon > 0 ? decoded.slice(0, colon) : '';
    const suffix = '@sandbox.orion';
    const ownerId = apiKey.endsWith(suffix) ? apiKey.slice(0, -suffix.length) : '';
    if (ownerId === '' || !same(decoded.slice(colon + 1), sandboxApiUser(ownerId).apiSecret)) return 'bad_credentials';
    if (this.revoked(ownerId)) return 'revoked';
    return this.remember(ownerId, this.store.issue({ ownerId, scope: 'api' }));
  }

  /** Spends a refresh token: a used, revoked or unknown one is refused. */
  refresh(refreshToken: string): IssuedTokens | LoginRefusal {
    const verdict = this.store.refresh(refreshToken);
    if (typeof verdict === 'string') {
      this.refused++;
      return verdict === 'revoked' ? 'revoked' : 'refresh_refused';
    }
    const owner = this.store.verifyAccessToken(verdict.accessToken);
    return typeof owner === 'object' ? this.remember(owner.ownerId, verdict) : verdict;
  }

  verify(accessToken: string): AccessVerdict {
    return this.store.verifyAccessToken(accessToken);
  }

  /** Refresh tokens refused so far (spent, revoked or unknown): tests check a spent one is not tried again. */
  refusedRefreshes(): number {
    return this.refused;
  }

  private revoked(ownerId: string): boolean {
    const token = this.latest.get(ownerId);
    return token !== undefined && this.store.verifyAccessToken(token) === 'revoked';
  }

  private remember(ownerId: string, tokens: IssuedTokens): IssuedTokens {
    this.latest.set(ownerId, tokens.accessToken);
    return tokens;
  }
}

function same(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
