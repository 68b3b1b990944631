import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { sql } from 'kysely';
import { ulid } from 'ulid';
import { z } from 'zod';
import { authorizeConnection, changeConnectionSettings, disconnectConnection, initiateConnection } from '../../../../commands/connections.ts';
import { loadConnection, requestSync } from '../../../../commands/sync-requests.ts';
import { ConnectionSettingsSchema, DataFiltersSchema, SyncDirectionSchema } from '../../../../domain/connections/events.ts';
import { RESOLUTION_STRATEGIES } from '../../../../domain/conflicts/resolution.ts';
import { DataTypeSchema, PlatformSchema, type Platform } from '../../../../domain/platforms/records.ts';
import { SyncErrorCodeSchema } from '../../../../domain/platforms/sync-error.ts';
import { PlatformError, type Credentials } from '../../../../ports/platform-adapter.ts';
import { commandMetadata, principalOf, requireRole, type ApiContext, type ApiRoutes } from '../context.ts';
import { ApiProblem, notFound } from '../problem.ts';
import {
  commonErrors,
  decodePageCursor,
  DecimalString,
  encodePageCursor,
  IdParamsSchema,
  IdSchema,
  instant,
  InstantSchema,
  PageQuerySchema,
  pageOf,
  PositionSchema,
  withPosition,
} from '../schemas.ts';
import { monitoredOwner, ownedConnection, visibleConnection } from '../tenancy.ts';
import { queueSync, QueuedSyncSchema } from './sync-operations.ts';

/**
 * Portfolio connections: made through the platform's OAuth consent (initiate, then callback) or at
 * once from an API key (Orion), listed and read with their sync statistics, changed, disconnected,
 * and synced on demand.
 */

/** Platforms whose users grant access on the platform's consent page; the others take a key and secret. */
const OAUTH_PLATFORMS = ['black_diamond', 'addepar'] as const;
const API_KEY_PLATFORMS = ['orion'] as const;

const ConnectionStatusSchema = z.enum(['pending', 'active', 'error', 'disconnected']);
const AccountIdSchema = IdSchema.meta({ description: "The platform's account to sync; absent: every account the user grants" });
const BidirectionalSchema = z.boolean().default(false).meta({ description: 'Write changes back to the platform too (default: read only)' });

const InitiateBody = z
  .discriminatedUnion('platform', [
    z.object({ platform: z.enum(OAUTH_PLATFORMS), accountId: AccountIdSchema.optional(), bidirectionalSync: BidirectionalSchema }).strict(),
    z
      .object({
        platform: z.enum(API_KEY_PLATFORMS),
        accountId: AccountIdSchema.optional(),
        bidirectionalSync: BidirectionalSchema,
        apiKey: z.string().min(1).max(500).meta({ description: "The platform API user's key; kept encrypted, never answered" }),
        apiSecret: z.string().min(1).max(500).meta({ description: "The platform API user's secret; kept encrypted, never answered" }),
      })
      .strict(),
  ])
  .meta({ description: 'OAuth platforms (black_diamond, addepar) start a consent; orion takes its API key and secret here and connects at once' });

const AuthorizationStarted = z
  .object({
    kind: z.literal('authorization'),
    authorizationUrl: z.url().meta({ description: "Send the user's browser here; the platform sends it back to the service's redirect URI with code and state" }),
    sessionToken: z.string().meta({ description: 'Post it back to /portfolio-connections/callback with code and state; usable once, by this user only' }),
    expiresIn: z.number().int().meta({ description: 'Seconds the session stays usable' }),
  })
  .meta({ id: 'AuthorizationStarted' });

const Connected = z
  .object({
    kind: z.literal('connected'),
    connectionId: z.string(),
    platform: PlatformSchema,
    accountId: z.string().nullable(),
    status: ConnectionStatusSchema,
    displayName: z.string(),
    position: PositionSchema.nullable(),
  })
  .meta({ id: 'ConnectionCreated' });

const CallbackBody = z
  .object({
    sessionToken: z.string().min(1).max(200),
    code: z.string().min(1).max(2000).meta({ description: 'The `code` the platform put on the redirect' }),
    state: z.string().min(1).max(500).meta({ description: 'The `state` the platform put on the redirect' }),
  })
  .strict();

const ListQuery = PageQuerySchema.extend({
  portfolio_id: IdSchema.optional().meta({ description: 'Only connections linked into this portfolio' }),
  platform: PlatformSchema.optional(),
  status: ConnectionStatusSchema.optional(),
}).strict();

const ConnectionSummary = z.object({
  connectionId: z.string(),
  platform: PlatformSchema,
  accountId: z.string().nullable(),
  status: ConnectionStatusSchema,
  displayName: z.string(),
  lastSyncAt: InstantSchema.nullable(),
  lastSyncStatus: z.enum(['completed', 'partial', 'failed']).nullable(),
  nextSyncAt: InstantSchema.nullable(),
  syncSuccessRate: DecimalString.nullable().meta({ description: 'Syncs that completed (fully or partly) among all finished, 0 to 1; null before the first' }),
  holdingsCount: z.number().int(),
  transactionsCount: z.number().int(),
  createdAt: InstantSchema,
});

const SettingsView = z.object({
  autoSync: z.boolean(),
  syncFrequencyMinutes: z.number().int().nullable().meta({ description: "Minutes between syncs; null: the platform's schedules" }),
  direction: SyncDirectionSchema,
  conflictStrategy: z.enum(RESOLUTION_STRATEGIES),
});

const ConnectionDetail = ConnectionSummary.extend({
  ownerId: z.string(),
  settings: SettingsView,
  dataFilters: DataFiltersSchema,
  statistics: z.object({
    syncCount: z.number().int(),
    successCount: z.number().int(),
    errorCount: z.number().int().meta({ description: 'Records that failed in the last sync (plus one when it failed as a whole)' }),
    holdingsCount: z.number().int(),
    transactionsCount: z.number().int(),
    syncSuccessRate: DecimalString.nullable(),
    lastSyncOperationId: z.string().nullable(),
    runningOperationId: z.string().nullable(),
  }),
  lastError: z.object({ code: SyncErrorCodeSchema, message: z.string() }).nullable(),
  portfolios: z.array(z.object({ portfolioId: z.string(), weight: DecimalString, includeInTotals: z.boolean() })),
});

const ChangeSettingsBody = ConnectionSettingsSchema.partial()
  .strict()
  .refine((changes) => Object.keys(changes).length > 0, { message: 'give at least one setting to change' })
  .meta({ description: 'Only the settings given change; a dataFilters change re-consolidates the connection’s holdings' });

const DeleteQuery = z
  .object({
    includeHistory: z.stringbool().default(false).meta({ description: 'Also take what the connection synced out of the read models (the audit log keeps it)' }),
  })
  .strict();

const SyncBody = z
  .object({
    dataTypes: z.array(DataTypeSchema).min(1).max(DataTypeSchema.options.length).optional().meta({ description: 'Default: every data type the platform offers' }),
    force: z.boolean().default(false).meta({ description: 'Pull everything again instead of only what changed' }),
  })
  .strict();

interface ConnectionRow {
  connection_id: string;
  owner_id: string;
  platform: Platform;
  platform_account_id: string | null;
  status: z.infer<typeof ConnectionStatusSchema>;
  display_name: string;
  settings: z.infer<typeof ConnectionSettingsSchema>;
  last_error: { code: z.infer<typeof SyncErrorCodeSchema>; message: string } | null;
  running_operation_id: string | null;
  last_sync_operation_id: string | null;
  last_sync_at: Date | null;
  last_sync_status: 'completed' | 'partial' | 'failed' | null;
  next_sync_at: Date | null;
  error_count: number;
  sync_count: number;
  success_count: number;
  holdings_count: number;
  transactions_count: number;
  created_at: Date;
  success_rate: string | null;
}

const CONNECTION_COLUMNS = sql`connection_id, owner_id, platform, platform_account_id, status, display_name, settings, last_error, running_operation_id,
  last_sync_operation_id, last_sync_at, last_sync_status, next_sync_at, error_count, sync_count, success_count, holdings_count, transactions_count,
  created_at, CASE WHEN sync_count = 0 THEN NULL ELSE round(success_count::numeric / sync_count, 4)::text END AS success_rate`;

function summaryOf(row: ConnectionRow): z.infer<typeof ConnectionSummary> {
  return {
    connectionId: row.connection_id,
    platform: row.platform,
    accountId: row.platform_account_id,
    status: row.status,
    displayName: row.display_name,
    lastSyncAt: instant(row.last_sync_at),
    lastSyncStatus: row.last_sync_status,
    nextSyncAt: instant(row.next_sync_at),
    syncSuccessRate: row.success_rate,
    holdingsCount: row.holdings_count,
    transactionsCount: row.transactions_count,
    createdAt: instant(row.created_at)!,
  };
}

/** Session tokens are looked up by their hash: the table never holds one a reader could use. */
const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');
/** The vault binds each verifier to its session, so a ciphertext moved to another row does not open. */
const verifierContext = (hash: string) => `connect-session:${hash}`;

function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** A platform that refused the user's grant (a bad code or verifier, a wrong key) refuses the request, not the service. */
function refusedGrant(error: unknown): never {
  if (error instanceof PlatformError && (error.syncError.code === 'AUTH_REVOKED' || error.syncError.code === 'AUTH_EXPIRED')) {
    throw new ApiProblem('rule-violation', `${error.platform} refused the authorization: ${error.syncError.message}`, { code: 'AUTHORIZATION_REFUSED' });
  }
  throw error;
}

/** Records a new, authorized connection, puts it on its schedules (its first syncs run at once) and answers it. */
async function connect(
  context: ApiContext,
  reply: FastifyReply,
  input: { connectionId: string; ownerId: string; platform: Platform; accountId: string | null; bidirectional: boolean; credentials: Credentials },
  metadata: ReturnType<typeof commandMetadata>,
): Promise<z.infer<typeof Connected>> {
  const services = { store: context.ledger.store, credentials: context.ledger.credentials };
  const { connectionId } = input;
  await initiateConnection(
    services,
    {
      connectionId,
      ownerId: input.ownerId,
      platform: input.platform,
      ...(input.accountId ? { platformAccountId: input.accountId } : {}),
      settings: { direction: input.bidirectional ? 'bidirectional' : 'read_only' },
    },
    metadata,
  );
  const authorized = await authorizeConnection(services, { connectionId, credentials: input.credentials }, metadata);
  await context.queue.schedule(connectionId);
  const connection = await loadConnection(context.ledger.store, connectionId);
  if (connection.status === 'absent') throw new Error(`connection ${connectionId} vanished after it was made`);
  return {
    kind: 'connected',
    connectionId,
    platform: input.platform,
    accountId: input.accountId,
    status: connection.status,
    displayName: connection.settings.displayName,
    position: withPosition(reply, authorized.lastCursor),
  };
}

export const connectionRoutes: ApiRoutes = (app, context) => {
  const db = context.ledger.database.db;
  const pool = context.ledger.database.pool;
  const vault = context.ledger.credentials.vault;

  app.post(
    '/portfolio-connections/initiate',
    {
      config: { idempotent: true },
      schema: {
        tags: ['connections'],
        summary: 'Start connecting a platform account',
        description:
          'Black Diamond and Addepar answer 200 with an authorization URL and a session token: send the user to the URL; the platform ' +
          'redirects to the service’s redirect URI with `code` and `state`, which the client posts to /portfolio-connections/callback with ' +
          'the session token. Orion takes `apiKey` and `apiSecret` in this request and answers 201 with the new connection at once. ' +
          'The answers differ by `kind` (authorization | connected).',
        body: InitiateBody,
        response: { 200: AuthorizationStarted, 201: Connected, ...commonErrors, 409: commonErrors[400], 502: commonErrors[400] },
      },
    },
    async (request, reply) => {
      const principal = requireRole(request, 'owner');
      const body = request.body;
      const adapter = context.sync.adapterFor(body.platform);
      const connectionId = ulid();
      if (body.platform === 'orion') {
        const credentials = await adapter.onboardApiKey(body.apiKey, body.apiSecret).catch(refusedGrant);
        const connected = await connect(
          context,
          reply,
          { connectionId, ownerId: principal.userId, platform: body.platform, accountId: body.accountId ?? null, bidirectional: body.bidirectionalSync, credentials },
          commandMetadata(request),
        );
        return reply.code(201).send(connected);
      }
      const start = await adapter.beginAuthorization(context.settings.oauthRedirectUri);
      const sessionToken = randomBytes(32).toString('base64url');
      const hash = tokenHash(sessionToken);
      const ttl = context.settings.connectSessionTtlSeconds;
      // Sessions stay a day after they end, so that a late callback is told "used" or "expired" rather than "unknown".
      await pool.query(`DELETE FROM connect_sessions WHERE expires_at < now() - interval '1 day'`);
      await pool.query(
        `INSERT INTO connect_sessions (token_hash, user_id, connection_id, platform, platform_account_id, bidirectional_sync, state, code_verifier_ciphertext, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))`,
        [hash, principal.userId, connectionId, body.platform, body.accountId ?? null, body.bidirectionalSync, start.state, vault.encrypt(start.codeVerifier, verifierContext(hash)), ttl],
      );
      return reply.code(200).send({ kind: 'authorization', authorizationUrl: start.authorizationUrl, sessionToken, expiresIn: ttl });
    },
  );

  app.post(
    '/portfolio-connections/callback',
    {
      schema: {
        tags: ['connections'],
        summary: 'Finish connecting an OAuth platform account with the code and state the platform redirected with',
        description:
          'The session must be this user’s, unused and unexpired: it is used up by this request whatever its outcome. The state must be ' +
          'the one the session started; the platform checks the PKCE verifier when it exchanges the code.',
        body: CallbackBody,
        response: { 201: Connected, ...commonErrors, 409: commonErrors[400], 502: commonErrors[400] },
      },
    },
    async (request, reply) => {
      const principal = requireRole(request, 'owner');
      const { sessionToken, code, state } = request.body;
      const hash = tokenHash(sessionToken);
      const claimed = await pool.query<{ connection_id: string; platform: Platform; platform_account_id: string | null; bidirectional_sync: boolean; state: string; code_verifier_ciphertext: string }>(
        `UPDATE connect_sessions SET used_at = now() WHERE token_hash = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING connection_id, platform, platform_account_id, bidirectional_sync, state, code_verifier_ciphertext`,
        [hash, principal.userId],
      );
      const session = claimed.rows[0];
      if (!session) {
        const found = (await pool.query<{ user_id: string; used_at: Date | null }>('SELECT user_id, used_at FROM connect_sessions WHERE token_hash = $1', [hash])).rows[0];
        if (!found || found.user_id !== principal.userId) throw notFound('connection session');
        if (found.used_at) throw new ApiProblem('rule-violation', 'this connection session was used already; start again with /portfolio-connections/initiate', { code: 'CONNECT_SESSION_USED' });
        throw new ApiProblem('rule-violation', 'this connection session has expired; start again with /portfolio-connections/initiate', { code: 'CONNECT_SESSION_EXPIRED' });
      }
      if (!sameSecret(state, session.state)) {
        throw new ApiProblem('validation', 'body.state: is not the state this connection session started with', {
          errors: [{ field: 'body.state', message: 'is not the state this connection session started with' }],
        });
      }
      const redirectUri = context.settings.oauthRedirectUri;
      const callbackUrl = new URL(redirectUri);
      callbackUrl.searchParams.set('code', code);
      callbackUrl.searchParams.set('state', state);
      const credentials = await context.sync
        .adapterFor(session.platform)
        .completeAuthorization({ callbackUrl: callbackUrl.toString(), expectedState: session.state, codeVerifier: vault.decrypt(session.code_verifier_ciphertext, verifierContext(hash)), redirectUri })
        .catch(refusedGrant);
      const connected = await connect(
        context,
        reply,
        {
          connectionId: session.connection_id,
          ownerId: principal.userId,
          platform: session.platform,
          accountId: session.platform_account_id,
          bidirectional: session.bidirectional_sync,
          credentials,
        },
        commandMetadata(request),
      );
      return reply.code(201).send(connected);
    },
  );

  app.get(
    '/portfolio-connections',
    {
      schema: {
        tags: ['connections'],
        summary: 'Connections with their sync statistics',
        description: 'Owners see their own connections; the operations role sees every user’s.',
        querystring: ListQuery,
        response: { 200: pageOf(ConnectionSummary), ...commonErrors },
      },
    },
    async (request) => {
      const owner = monitoredOwner(request);
      const query = request.query;
      const after = decodePageCursor(z.tuple([z.string()]), query.cursor);
      const rows = (await sql<ConnectionRow>`
        SELECT ${CONNECTION_COLUMNS} FROM connections
         WHERE (${owner}::text IS NULL OR owner_id = ${owner})
           AND (${query.platform ?? null}::text IS NULL OR platform = ${query.platform ?? null})
           AND (${query.status ?? null}::text IS NULL OR status = ${query.status ?? null})
           AND (${query.portfolio_id ?? null}::text IS NULL OR connection_id IN (SELECT connection_id FROM portfolio_connections WHERE portfolio_id = ${query.portfolio_id ?? null}))
           AND (${after?.[0] ?? null}::text IS NULL OR connection_id > ${after?.[0] ?? null})
         ORDER BY connection_id LIMIT ${query.limit + 1}`.execute(db)).rows;
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return { items: page.map(summaryOf), nextCursor: rows.length > query.limit && last ? encodePageCursor([last.connection_id]) : null };
    },
  );

  app.get(
    '/portfolio-connections/:id',
    {
      schema: {
        tags: ['connections'],
        summary: 'One connection: settings, data filters and sync statistics (never its credentials)',
        params: IdParamsSchema,
        response: { 200: ConnectionDetail, ...commonErrors },
      },
    },
    async (request) => {
      const { id } = request.params;
      await visibleConnection(context, request, id);
      const row = (await sql<ConnectionRow>`SELECT ${CONNECTION_COLUMNS} FROM connections WHERE connection_id = ${id}`.execute(db)).rows[0];
      if (!row) throw notFound(`connection ${id}`);
      const portfolios = (await sql<{ portfolio_id: string; weight: string; include_in_totals: boolean }>`
        SELECT portfolio_id, weight::text, include_in_totals FROM portfolio_connections WHERE connection_id = ${id} ORDER BY portfolio_id`.execute(db)).rows;
      const { settings } = row;
      return {
        ...summaryOf(row),
        ownerId: row.owner_id,
        settings: { autoSync: settings.autoSync, syncFrequencyMinutes: settings.syncFrequencyMinutes ?? null, direction: settings.direction, conflictStrategy: settings.conflictStrategy },
        dataFilters: settings.dataFilters,
        statistics: {
          syncCount: row.sync_count,
          successCount: row.success_count,
          errorCount: row.error_count,
          holdingsCount: row.holdings_count,
          transactionsCount: row.transactions_count,
          syncSuccessRate: row.success_rate,
          lastSyncOperationId: row.last_sync_operation_id,
          runningOperationId: row.running_operation_id,
        },
        lastError: row.last_error ? { code: row.last_error.code, message: row.last_error.message } : null,
        portfolios: portfolios.map((p) => ({ portfolioId: p.portfolio_id, weight: p.weight, includeInTotals: p.include_in_totals })),
      };
    },
  );

  app.put(
    '/portfolio-connections/:id',
    {
      schema: {
        tags: ['connections'],
        summary: "Change a connection's settings",
        params: IdParamsSchema,
        body: ChangeSettingsBody,
        response: {
          200: z.object({ connectionId: z.string(), settings: ConnectionSettingsSchema, position: PositionSchema.nullable() }),
          ...commonErrors,
          409: commonErrors[400],
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await ownedConnection(context, request, id);
      const result = await changeConnectionSettings({ store: context.ledger.store }, { connectionId: id, changes: request.body }, commandMetadata(request));
      // The queue follows the connection's schedule settings (autoSync, frequency).
      await context.queue.schedule(id);
      const { settings } = await ownedConnection(context, request, id);
      return reply.send({ connectionId: id, settings, position: withPosition(reply, result.lastCursor) });
    },
  );

  app.delete(
    '/portfolio-connections/:id',
    {
      schema: {
        tags: ['connections'],
        summary: 'Disconnect a connection',
        description: 'It syncs no more and its credentials are deleted. The audit log keeps everything it recorded.',
        params: IdParamsSchema,
        querystring: DeleteQuery,
        response: {
          200: z.object({ connectionId: z.string(), status: z.literal('disconnected'), keepData: z.boolean(), position: PositionSchema.nullable() }),
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await ownedConnection(context, request, id);
      const keepData = !request.query.includeHistory;
      const result = await disconnectConnection(
        { store: context.ledger.store, credentials: context.ledger.credentials },
        { connectionId: id, keepData, disconnectedBy: principalOf(request).userId },
        commandMetadata(request),
      );
      await context.queue.schedule(id);
      return reply.send({ connectionId: id, status: 'disconnected' as const, keepData, position: withPosition(reply, result.lastCursor) });
    },
  );

  app.post(
    '/portfolio-connections/:id/sync',
    {
      config: { idempotent: true },
      schema: {
        tags: ['connections'],
        summary: 'Sync a connection now',
        description:
          'Queues one sync operation of the data types given; a worker runs it as soon as one is free. A data type of the connection that ' +
          'is syncing already (or queued in another operation) refuses the request with 409 SYNC_IN_PROGRESS.',
        params: IdParamsSchema,
        body: SyncBody,
        response: { 202: QueuedSyncSchema, ...commonErrors, 409: commonErrors[400] },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const connection = await ownedConnection(context, request, id);
      if (connection.status !== 'active') {
        const code = connection.status === 'disconnected' ? 'CONNECTION_DISCONNECTED' : 'CONNECTION_NOT_AUTHORIZED';
        throw new ApiProblem('rule-violation', `connection ${id} is ${connection.status}; it syncs once it is active`, { code });
      }
      const dataTypes = [...new Set(request.body.dataTypes ?? context.sync.adapterFor(connection.platform).capabilities)];
      const operationId = ulid();
      const { force } = request.body;
      const answer = await queueSync(context, request, reply, { connectionId: id, dataTypes, operationId, trigger: 'manual', force }, () =>
        requestSync(context.sync, { connectionId: id, dataTypes, force, trigger: 'manual', requestedBy: principalOf(request).userId, operationId }, { source: 'api' }),
      );
      return reply.code(202).send(answer);
    },
  );
};
