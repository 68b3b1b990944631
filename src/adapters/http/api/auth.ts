import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { loadOrCreateSecretFile } from '../../crypto/local-secret-file.ts';

/**
 * What a token lets its holder do. owner: their own connections and portfolios; advisor: also
 * the portfolios shared with them; operations: sync monitoring across users, no holdings;
 * compliance: the log across users.
 */
export const RoleSchema = z.enum(['owner', 'advisor', 'operations', 'compliance']);
export type Role = z.infer<typeof RoleSchema>;

export interface Principal {
  /** The tenant: every query and command is scoped to this user. */
  readonly userId: string;
  readonly roles: ReadonlySet<Role>;
}

const ClaimsSchema = z.object({
  sub: z.string().min(1).max(200),
  roles: z.array(RoleSchema).min(1).default(['owner']),
});

export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
}

export interface AuthConfig {
  readonly AUTH_ISSUER: string;
  readonly AUTH_AUDIENCE: string;
  /** A shared HS256 secret (at least 32 bytes); absent: a local one generated into the data directory. */
  readonly AUTH_JWT_SECRET?: string | undefined;
  /** Verify against an identity provider's published keys instead; this service then issues no tokens. */
  readonly AUTH_JWKS_URL?: string | undefined;
  readonly LEDGER_DATA_DIR: string;
}

export const LOCAL_SIGNING_KEY_FILE = 'api-signing-key';

export interface TokenAuthority {
  verify(token: string): Promise<Principal>;
  /** Issues a token for local use (the demo, `ledger token`); refused when keys come from a JWKS URL. */
  issue(subject: string, roles: readonly Role[], options?: { expiresIn?: string }): Promise<string>;
}

/** Bearer tokens verified with jose: signature, issuer, audience and expiry all checked. */
export async function openTokenAuthority(config: AuthConfig): Promise<TokenAuthority> {
  const claims = { issuer: config.AUTH_ISSUER, audience: config.AUTH_AUDIENCE };
  if (config.AUTH_JWKS_URL) {
    const keys: JWTVerifyGetKey = createRemoteJWKSet(new URL(config.AUTH_JWKS_URL));
    return {
      verify: (token) => verifyWith(token, keys, claims),
      issue: async () => {
        throw new Error('tokens come from the identity provider at AUTH_JWKS_URL; this service issues none');
      },
    };
  }
  const secret = new TextEncoder().encode(config.AUTH_JWT_SECRET ?? (await localSecret(config.LEDGER_DATA_DIR)));
  if (secret.length < 32) throw new Error('AUTH_JWT_SECRET must be at least 32 bytes');
  return {
    verify: (token) => verifyWith(token, secret, claims),
    issue: (subject, roles, options = {}) =>
      new SignJWT({ roles: [...roles] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(subject)
        .setIssuer(claims.issuer)
        .setAudience(claims.audience)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '12h')
        .sign(secret),
  };
}

async function verifyWith(token: string, key: Uint8Array | JWTVerifyGetKey, claims: { issuer: string; audience: string }): Promise<Principal> {
  let payload;
  try {
    payload = (typeof key === 'function' ? await jwtVerify(token, key, claims) : await jwtVerify(token, key, claims)).payload;
  } catch (error) {
    // jose's messages name the failed check (expired, signature, issuer...) and never the key.
    if (error instanceof joseErrors.JOSEError) throw new AuthenticationError(error.code === 'ERR_JWT_EXPIRED' ? 'the token has expired' : `the token is not valid: ${error.message}`);
    throw error;
  }
  const parsed = ClaimsSchema.safeParse(payload);
  if (!parsed.success) throw new AuthenticationError(`the token's claims are not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { userId: parsed.data.sub, roles: new Set(parsed.data.roles) };
}

async function localSecret(dataDir: string): Promise<string> {
  return (await loadOrCreateSecretFile(path.resolve(dataDir, LOCAL_SIGNING_KEY_FILE), () => randomBytes(48).toString('base64url'))).trim();
}
