import { setTimeout as sleep } from 'node:timers/promises';
import type { Platform } from '../../../domain/platforms/records.ts';
import { CredentialsChangedError, PlatformError, type CredentialHolder, type Credentials } from '../../../ports/platform-adapter.ts';
import { requestError } from './errors.ts';

export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;
export const ROTATE_AFTER_MS = 30 * 24 * 60 * 60_000;

export interface TokenManagerOptions {
  readonly platform: Platform;
  /** Exchanges the credentials (refresh token, or key and secret) for a new access token. */
  readonly refresh: (credentials: Credentials) => Promise<Credentials>;
  /** Obtains a wholly new grant; without it, rotation is a refresh whose grant counts as new. */
  readonly rotate?: (credentials: Credentials) => Promise<Credentials>;
  readonly now?: () => number;
}

/** How many times a refresh may lose the compare-and-swap to another writer before giving up. */
const MAX_CONFLICTS = 5;

/** After a refusal, how long to keep looking for another writer's renewal before calling the grant dead. */
const REFUSAL_RECHECKS_MS = [0, 100, 400];

const AUTH_FAILURES = new Set(['AUTH_REVOKED', 'AUTH_EXPIRED']);

/**
 * A connection's access token, kept fresh: refreshed 5 minutes before it expires, rotated 30 days
 * after `grantedAt`. Concurrent callers share one refresh. New credentials are stored with the
 * holder's compare-and-swap; when another writer got there first, the stored credentials are
 * loaded again rather than spending the old (possibly single-use) refresh token a second time.
 * The manager owns `grantedAt`: a refresh keeps it, a rotation sets it to now.
 */
export class TokenManager {
  private readonly now: () => number;
  private cached: Credentials | undefined;
  /** The access token the platform answered 401 to; a stored credential still carrying it needs renewing. */
  private rejected: string | undefined;
  /** The credentials the platform refused to renew; the manager will not try them again. */
  private dead: Credentials | undefined;
  private inFlight: Promise<Credentials> | undefined;

  constructor(
    private readonly holder: CredentialHolder,
    private readonly options: TokenManagerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async accessToken(): Promise<string> {
    return (await this.credentials()).accessToken;
  }

  /** The current, usable credentials (an adapter may need more than the access token). */
  async credentials(): Promise<Credentials> {
    const cached = this.cached;
    if (cached && this.usable(cached)) return cached;
    this.inFlight ??= this.renew().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /**
   * The platform refused an access token (401): the next caller renews it. Given the refused token,
   * a late 401 for a token already replaced leaves the new one alone.
   */
  invalidate(refusedToken?: string): void {
    if (!this.cached || (refusedToken !== undefined && refusedToken !== this.cached.accessToken)) return;
    this.rejected = this.cached.accessToken;
    this.cached = undefined;
  }

  private usable(credentials: Credentials): boolean {
    const now = this.now();
    return (
      credentials.accessToken !== this.rejected &&
      credentials.accessTokenExpiresAt - REFRESH_BEFORE_EXPIRY_MS > now &&
      !this.rotationDue(credentials, now)
    );
  }

  private rotationDue(credentials: Credentials, now: number): boolean {
    return now - credentials.grantedAt >= ROTATE_AFTER_MS;
  }

  private async renew(): Promise<Credentials> {
    for (let conflicts = 0; ; ) {
      const current = await this.holder.current();
      if (this.usable(current)) return this.keep(current);
      if (this.dead && sameGrant(this.dead, current)) throw this.revoked();
      const renewed = await this.obtain(current);
      if (renewed === undefined) {
        // Refused: another process may have spent this refresh token and be storing the result.
        if (await this.replacedMeanwhile(current)) continue;
        this.dead = current;
        this.cached = undefined;
        throw this.revoked();
      }
      try {
        await this.holder.replace(current, renewed);
        return this.keep(renewed);
      } catch (error) {
        if (!(error instanceof CredentialsChangedError)) throw error;
        if (++conflicts >= MAX_CONFLICTS) throw error;
      }
    }
  }

  private async replacedMeanwhile(refused: Credentials): Promise<boolean> {
    for (const wait of REFUSAL_RECHECKS_MS) {
      await sleep(wait);
      if (!sameGrant(await this.holder.current(), refused)) return true;
    }
    return false;
  }

  private keep(credentials: Credentials): Credentials {
    this.cached = credentials;
    this.dead = undefined;
    return credentials;
  }

  /** New credentials, or undefined when the platform refused the grant. */
  private async obtain(current: Credentials): Promise<Credentials | undefined> {
    const now = this.now();
    const rotating = this.rotationDue(current, now);
    try {
      const next = rotating && this.options.rotate ? await this.options.rotate(current) : await this.options.refresh(current);
      return { ...next, grantedAt: rotating ? now : current.grantedAt };
    } catch (error) {
      if (error instanceof PlatformError && AUTH_FAILURES.has(error.syncError.code)) return undefined;
      throw error;
    }
  }

  private revoked(): PlatformError {
    return requestError(this.options.platform, 'AUTH_REVOKED', 'the platform refused to renew the credentials; the connection must be authorized again', 'credentials');
  }
}

/** Whether two credentials are the same grant (same tokens), so refusing one refuses the other. */
function sameGrant(a: Credentials, b: Credentials): boolean {
  return a.accessToken === b.accessToken && a.refreshToken === b.refreshToken && a.apiKey === b.apiKey && a.apiSecret === b.apiSecret;
}
