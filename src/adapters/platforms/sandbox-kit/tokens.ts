import { randomBytes } from 'node:crypto';

/**
 * Access and refresh tokens a sandbox has issued, by grant. The OAuth server issues through it;
 * a sandbox with its own token endpoint (Orion) uses it directly. Faults and the control API
 * expire or revoke through it.
 */

export interface TokenLifetimes {
  readonly accessTokenSeconds: number;
  /** Undefined: refresh tokens never expire. */
  readonly refreshTokenSeconds?: number;
  /** Each refresh returns a new refresh token and spends the old one (single-use). */
  readonly rotateRefreshTokens: boolean;
}

export interface IssuedTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds. */
  readonly expiresIn: number;
  /** Seconds; undefined when refresh tokens never expire. */
  readonly refreshExpiresIn?: number;
  readonly scope: string;
}

export interface TokenOwner {
  readonly ownerId: string;
  readonly scope: string;
  readonly clientId?: string;
}

export type AccessVerdict = TokenOwner | 'expired' | 'revoked' | 'unknown';
export type RefreshVerdict = IssuedTokens | 'expired' | 'revoked' | 'unknown' | 'used';

/** What a fault or the control API needs to invalidate credentials, whoever issues them. */
export interface TokenInvalidator {
  /** Expires the access token (its refresh token still works). */
  expireToken(token: string): boolean;
  /** Revokes the whole grant the token (access or refresh) belongs to. */
  revokeToken(token: string): boolean;
  expireAll(ownerId?: string): number;
  revokeAll(ownerId?: string): number;
}

interface Grant {
  readonly id: number;
  readonly owner: TokenOwner;
  revoked: boolean;
}

interface AccessEntry {
  readonly grant: Grant;
  expiresAt: number;
}

interface RefreshEntry {
  readonly grant: Grant;
  readonly expiresAt: number | undefined;
  used: boolean;
}

export const DEFAULT_LIFETIMES: TokenLifetimes = { accessTokenSeconds: 3600, refreshTokenSeconds: 365 * 86_400, rotateRefreshTokens: false };

export class TokenStore implements TokenInvalidator {
  private lifetimes: TokenLifetimes;
  private readonly now: () => number;
  private readonly access = new Map<string, AccessEntry>();
  private readonly refreshTokens = new Map<string, RefreshEntry>();
  private grants = 0;

  constructor(options: { lifetimes?: Partial<TokenLifetimes>; now?: () => number } = {}) {
    this.lifetimes = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
    this.now = options.now ?? Date.now;
  }

  /** Changes lifetimes for tokens issued from now on (tests shorten them). */
  setLifetimes(lifetimes: Partial<TokenLifetimes>): void {
    this.lifetimes = { ...this.lifetimes, ...lifetimes };
  }

  currentLifetimes(): TokenLifetimes {
    return this.lifetimes;
  }

  issue(owner: TokenOwner): IssuedTokens {
    return this.issueFor({ id: ++this.grants, owner, revoked: false });
  }

  refresh(refreshToken: string, clientId?: string): RefreshVerdict {
    const entry = this.refreshTokens.get(refreshToken);
    if (entry === undefined || (clientId !== undefined && entry.grant.owner.clientId !== undefined && entry.grant.owner.clientId !== clientId)) return 'unknown';
    if (entry.grant.revoked) return 'revoked';
    if (entry.used) return 'used';
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.now()) return 'expired';
    if (!this.lifetimes.rotateRefreshTokens) {
      const accessToken = this.newAccessToken(entry.grant);
      return { accessToken, refreshToken, expiresIn: this.lifetimes.accessTokenSeconds, ...this.refreshRemaining(entry), scope: entry.grant.owner.scope };
    }
    entry.used = true;
    return this.issueFor(entry.grant);
  }

  verifyAccessToken(token: string): AccessVerdict {
    const entry = this.access.get(token);
    if (entry === undefined) return 'unknown';
    if (entry.grant.revoked) return 'revoked';
    if (entry.expiresAt <= this.now()) return 'expired';
    return entry.grant.owner;
  }

  expireToken(token: string): boolean {
    const entry = this.access.get(token);
    if (entry === undefined) return false;
    entry.expiresAt = Math.min(entry.expiresAt, this.now());
    return true;
  }

  revokeToken(token: string): boolean {
    const grant = this.access.get(token)?.grant ?? this.refreshTokens.get(token)?.grant;
    if (grant === undefined) return false;
    grant.revoked = true;
    return true;
  }

  expireAll(ownerId?: string): number {
    let count = 0;
    const now = this.now();
    for (const entry of this.access.values()) {
      if (ownerId !== undefined && entry.grant.owner.ownerId !== ownerId) continue;
      if (entry.expiresAt > now) count++;
      entry.expiresAt = Math.min(entry.expiresAt, now);
    }
    return count;
  }

  revokeAll(ownerId?: string): number {
    const grants = new Set<Grant>();
    for (const entry of this.access.values()) grants.add(entry.grant);
    for (const entry of this.refreshTokens.values()) grants.add(entry.grant);
    let count = 0;
    for (const grant of grants) {
      if ((ownerId !== undefined && grant.owner.ownerId !== ownerId) || grant.revoked) continue;
      grant.revoked = true;
      count++;
    }
    return count;
  }

  private issueFor(grant: Grant): IssuedTokens {
    const accessToken = this.newAccessToken(grant);
    const refreshToken = `sbx_rt_${randomBytes(24).toString('base64url')}`;
    const seconds = this.lifetimes.refreshTokenSeconds;
    const entry: RefreshEntry = { grant, expiresAt: seconds === undefined ? undefined : this.now() + seconds * 1000, used: false };
    this.refreshTokens.set(refreshToken, entry);
    return { accessToken, refreshToken, expiresIn: this.lifetimes.accessTokenSeconds, ...this.refreshRemaining(entry), scope: grant.owner.scope };
  }

  private newAccessToken(grant: Grant): string {
    const token = `sbx_at_${randomBytes(24).toString('base64url')}`;
    this.access.set(token, { grant, expiresAt: this.now() + this.lifetimes.accessTokenSeconds * 1000 });
    return token;
  }

  private refreshRemaining(entry: RefreshEntry): { refreshExpiresIn?: number } {
    return entry.expiresAt === undefined ? {} : { refreshExpiresIn: Math.max(0, Math.floor((entry.expiresAt - this.now()) / 1000)) };
  }
}
