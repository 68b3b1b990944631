import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AccessVerdict, TokenStore } from './tokens.ts';

/**
 * An OAuth 2.0 authorization server as Black Diamond and Addepar run one: authorization code
 * with PKCE (S256 only), a consent page (or auto-approval), single-use codes, refresh tokens
 * (rotating when the token store says so) and revocation (RFC 7009).
 */

export interface OAuthClient {
  readonly clientId: string;
  /** Undefined: a public client (PKCE only). */
  readonly clientSecret?: string;
  readonly redirectUris: readonly string[];
}

export interface OAuthServerOptions {
  readonly clients: readonly OAuthClient[];
  readonly tokens: TokenStore;
  readonly authorizePath?: string;
  readonly tokenPath: string;
  readonly revokePath?: string;
  /** Approve without showing the consent page, for tests and the demo. */
  readonly autoApprove?: boolean;
  readonly codeLifetimeSeconds?: number;
  /** The user an auto-approved request belongs to when it carries no login_hint. */
  readonly defaultOwnerId?: string;
  readonly now?: () => number;
}

interface IssuedCode {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly ownerId: string;
  readonly scope: string;
  readonly expiresAt: number;
  used: boolean;
  /** Tokens issued from this code: revoked if the code is replayed. */
  accessToken?: string;
}

const AuthorizeQuerySchema = z.object({
  response_type: z.literal('code', 'response_type must be "code"'),
  client_id: z.string().min(1, 'client_id is required'),
  redirect_uri: z.string().min(1, 'redirect_uri is required'),
  state: z.string().min(1, 'state is required').max(500),
  code_challenge: z.string().regex(/^[A-Za-z0-9_-]{43,128}$/, 'code_challenge must be a base64url S256 challenge'),
  code_challenge_method: z.literal('S256', 'code_challenge_method must be S256'),
  scope: z.string().max(500).optional(),
  login_hint: z.string().min(1).max(200).optional(),
});
type AuthorizeQuery = z.infer<typeof AuthorizeQuerySchema>;

const ConsentFormSchema = AuthorizeQuerySchema.extend({
  user: z.string().min(1, 'user is required').max(200),
  decision: z.enum(['approve', 'deny']),
});

const TokenFormSchema = z.discriminatedUnion('grant_type', [
  z.object({
    grant_type: z.literal('authorization_code'),
    code: z.string().min(1),
    redirect_uri: z.string().min(1),
    code_verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/, 'code_verifier must be 43-128 unreserved characters'),
    client_id: z.string().optional(),
    client_secret: z.string().optional(),
  }),
  z.object({
    grant_type: z.literal('refresh_token'),
    refresh_token: z.string().min(1),
    scope: z.string().optional(),
    client_id: z.string().optional(),
    client_secret: z.string().optional(),
  }),
]);

const RevokeFormSchema = z.object({ token: z.string().min(1), token_type_hint: z.string().optional(), client_id: z.string().optional(), client_secret: z.string().optional() });

export class OAuthServer {
  readonly authorizePath: string;
  readonly tokenPath: string;
  readonly revokePath: string;
  autoApprove: boolean;
  private readonly clients: Map<string, OAuthClient>;
  private readonly tokens: TokenStore;
  private readonly codes = new Map<string, IssuedCode>();
  private readonly codeLifetimeMs: number;
  private readonly defaultOwnerId: string;
  private readonly now: () => number;

  constructor(options: OAuthServerOptions) {
    this.clients = new Map(options.clients.map((client) => [client.clientId, client]));
    this.tokens = options.tokens;
    this.authorizePath = options.authorizePath ?? '/oauth/authorize';
    this.tokenPath = options.tokenPath;
    this.revokePath = options.revokePath ?? '/oauth/revoke';
    this.autoApprove = options.autoApprove ?? false;
    this.codeLifetimeMs = (options.codeLifetimeSeconds ?? 60) * 1000;
    this.defaultOwnerId = options.defaultOwnerId ?? 'demo-user';
    this.now = options.now ?? Date.now;
  }

  verifyAccessToken(token: string): AccessVerdict {
    return this.tokens.verifyAccessToken(token);
  }

  expireAll(ownerId?: string): number {
    return this.tokens.expireAll(ownerId);
  }

  revokeAll(ownerId?: string): number {
    return this.tokens.revokeAll(ownerId);
  }

  /** Adds the authorization, token, revocation and metadata routes. Needs @fastify/formbody. */
  register(app: FastifyInstance): void {
    app.get(this.authorizePath, async (request, reply) => this.authorize(request, reply));
    app.post(this.authorizePath, async (request, reply) => this.consent(request, reply));
    app.post(this.tokenPath, async (request, reply) => this.token(request, reply));
    app.post(this.revokePath, async (request, reply) => this.revoke(request, reply));
    app.get('/.well-known/oauth-authorization-server', async (request) => {
      const issuer = `${request.protocol}://${request.host}`;
      return {
        issuer,
        authorization_endpoint: issuer + this.authorizePath,
        token_endpoint: issuer + this.tokenPath,
        revocation_endpoint: issuer + this.revokePath,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      };
    });
  }

  private authorize(request: FastifyRequest, reply: FastifyReply) {
    const parsed = AuthorizeQuerySchema.safeParse(request.query);
    const clientCheck = this.checkClientAndRedirect(request.query);
    // Without a trusted redirect URI the error is shown, never redirected (RFC 6749 §4.1.2.1).
    if (clientCheck !== undefined) return reply.code(400).type('text/html; charset=utf-8').send(page('Authorization error', `<p>${escapeHtml(clientCheck)}</p>`));
    const redirectUri = (request.query as { redirect_uri: string }).redirect_uri;
    if (!parsed.success) {
      const state = (request.query as { state?: unknown }).state;
      return reply.redirect(withQuery(redirectUri, { error: 'invalid_request', error_description: describe(parsed.error), ...(typeof state === 'string' ? { state } : {}) }));
    }
    if (this.autoApprove) return reply.redirect(this.approve(parsed.data, parsed.data.login_hint ?? this.defaultOwnerId));
    return reply.type('text/html; charset=utf-8').send(consentPage(this.authorizePath, parsed.data, parsed.data.login_hint ?? this.defaultOwnerId));
  }

  private consent(request: FastifyRequest, reply: FastifyReply) {
    const clientCheck = this.checkClientAndRedirect(request.body);
    if (clientCheck !== undefined) return reply.code(400).type('text/html; charset=utf-8').send(page('Authorization error', `<p>${escapeHtml(clientCheck)}</p>`));
    const parsed = ConsentFormSchema.safeParse(request.body);
    const redirectUri = (request.body as { redirect_uri: string }).redirect_uri;
    if (!parsed.success) return reply.code(400).type('text/html; charset=utf-8').send(page('Authorization error', `<p>${escapeHtml(describe(parsed.error))}</p>`));
    if (parsed.data.decision === 'deny') return reply.redirect(withQuery(redirectUri, { error: 'access_denied', state: parsed.data.state }));
    return reply.redirect(this.approve(parsed.data, parsed.data.user));
  }

  private approve(query: AuthorizeQuery, ownerId: string): string {
    const code = randomBytes(24).toString('base64url');
    this.codes.set(code, {
      clientId: query.client_id,
      redirectUri: query.redirect_uri,
      codeChallenge: query.code_challenge,
      ownerId,
      scope: query.scope ?? '',
      expiresAt: this.now() + this.codeLifetimeMs,
      used: false,
    });
    return withQuery(query.redirect_uri, { code, state: query.state });
  }

  private checkClientAndRedirect(input: unknown): string | undefined {
    const { client_id: clientId, redirect_uri: redirectUri } = (input ?? {}) as { client_id?: unknown; redirect_uri?: unknown };
    if (typeof clientId !== 'string') return 'client_id is required';
    const client = this.clients.get(clientId);
    if (client === undefined) return `unknown client_id ${clientId}`;
    if (typeof redirectUri !== 'string' || !client.redirectUris.includes(redirectUri)) return 'redirect_uri is not registered for this client';
    return undefined;
  }

  private token(request: FastifyRequest, reply: FastifyReply) {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    const parsed = TokenFormSchema.safeParse(request.body);
    if (!parsed.success) return oauthError(reply, 400, 'invalid_request', describe(parsed.error));
    const client = this.authenticateClient(request, parsed.data);
    if (client === undefined) {
      reply.header('www-authenticate', 'Basic realm="sandbox"');
      return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
    }
    if (parsed.data.grant_type === 'authorization_code') {
      const form = parsed.data;
      const code = this.codes.get(form.code);
      if (code === undefined || code.clientId !== client.clientId) return oauthError(reply, 400, 'invalid_grant', 'the authorization code is unknown');
      if (code.used) {
        // A replayed code may have been stolen: what it granted is withdrawn (RFC 6749 §4.1.2).
        if (code.accessToken !== undefined) this.tokens.revokeToken(code.accessToken);
        return oauthError(reply, 400, 'invalid_grant', 'the authorization code was already used');
      }
      code.used = true;
      if (code.expiresAt <= this.now()) return oauthError(reply, 400, 'invalid_grant', 'the authorization code has expired');
      if (code.redirectUri !== form.redirect_uri) return oauthError(reply, 400, 'invalid_grant', 'redirect_uri does not match the authorization request');
      if (!sameText(s256(form.code_verifier), code.codeChallenge)) return oauthError(reply, 400, 'invalid_grant', 'code_verifier does not match the code_challenge');
      const issued = this.tokens.issue({ ownerId: code.ownerId, scope: code.scope, clientId: client.clientId });
      code.accessToken = issued.accessToken;
      return tokenResponse(reply, issued);
    }
    const outcome = this.tokens.refresh(parsed.data.refresh_token, client.clientId);
    if (typeof outcome === 'string') return oauthError(reply, 400, 'invalid_grant', `the refresh token is ${outcome === 'unknown' ? 'not valid' : outcome === 'used' ? 'already used' : outcome}`);
    return tokenResponse(reply, outcome);
  }

  private revoke(request: FastifyRequest, reply: FastifyReply) {
    const parsed = RevokeFormSchema.safeParse(request.body);
    if (!parsed.success) return oauthError(reply, 400, 'invalid_request', describe(parsed.error));
    if (this.authenticateClient(request, parsed.data) === undefined) return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
    // RFC 7009: an unknown token is answered like a revoked one.
    this.tokens.revokeToken(parsed.data.token);
    return reply.code(200).send();
  }

  private authenticateClient(request: FastifyRequest, form: { client_id?: string | undefined; client_secret?: string | undefined }): OAuthClient | undefined {
    let clientId = form.client_id;
    let secret = form.client_secret;
    const header = request.headers.authorization;
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return undefined;
      clientId = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    const client = clientId === undefined ? undefined : this.clients.get(clientId);
    if (client === undefined) return undefined;
    if (client.clientSecret === undefined) return client;
    return secret !== undefined && sameText(secret, client.clientSecret) ? client : undefined;
  }
}

/** The S256 PKCE challenge of a verifier. */
export function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function tokenResponse(reply: FastifyReply, issued: { accessToken: string; refreshToken: string; expiresIn: number; refreshExpiresIn?: number; scope: string }) {
  return reply.code(200).send({
    access_token: issued.accessToken,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    refresh_token: issued.refreshToken,
    ...(issued.refreshExpiresIn === undefined ? {} : { refresh_token_expires_in: issued.refreshExpiresIn }),
    ...(issued.scope === '' ? {} : { scope: issued.scope }),
  });
}

function oauthError(reply: FastifyReply, status: number, error: string, description: string) {
  return reply.code(status).send({ error, error_description: description });
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid request';
  const field = issue.path.join('.');
  return field === '' || issue.message.startsWith(field) ? issue.message : `${field}: ${issue.message}`;
}

function withQuery(url: string, params: Record<string, string>): string {
  const target = new URL(url);
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
  return target.toString();
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function consentPage(action: string, query: AuthorizeQuery, user: string): string {
  const hidden = Object.entries(query)
    .filter(([name, value]) => name !== 'login_hint' && value !== undefined)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(String(value))}">`)
    .join('');
  return page(
    'Authorize access',
    `<p>The application <strong>${escapeHtml(query.client_id)}</strong> asks to read your portfolio data${query.scope ? ` (scope: ${escapeHtml(query.scope)})` : ''}.</p>
<form method="post" action="${escapeHtml(action)}">${hidden}
<label>User <input name="user" value="${escapeHtml(user)}"></label>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}
