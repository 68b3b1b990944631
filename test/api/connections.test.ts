import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxApiUser } from '../../src/adapters/platforms/orion/index.ts';
import { startApi, type ApiHarness } from '../support/api.ts';
import { addSandboxAccount, connectOAuth, connectOrion, consent, failingFields, syncsSettled } from '../support/connections.ts';

const BASE = '/api/v1/portfolio-connections';
let api: ApiHarness;
/** Alice's Black Diamond connection (OAuth) and Orion connection (API key); Bob's Addepar one. */
let aliceBd: { connectionId: string };
let aliceOrion: { connectionId: string };
let bobAddepar: { connectionId: string };

beforeAll(async () => {
  api = await startApi();
  addSandboxAccount(api, 'black_diamond', 'alice', 'alice-bd', 12, 30);
  addSandboxAccount(api, 'orion', 'alice', 'alice-orion', 8, 20);
  addSandboxAccount(api, 'addepar', 'bob', 'bob-addepar', 5, 10);
  aliceBd = await connectOAuth(api, 'alice', 'black_diamond', 'alice-bd');
  aliceOrion = await connectOrion(api, 'alice', 'alice-orion');
  bobAddepar = await connectOAuth(api, 'bob', 'addepar', 'bob-addepar');
  for (const { connectionId } of [aliceBd, aliceOrion, bobAddepar]) await syncsSettled(api, connectionId);
}, 60_000);
afterAll(async () => api?.close());

/** Every sync operation requested so far, as the log has them. */
async function requestedSyncs(): Promise<string[]> {
  const rows = await sql<{ stream_id: string }>`SELECT stream_id FROM events WHERE event_type = 'SyncRequested' ORDER BY global_position`.execute(api.ledger.database.db);
  return rows.rows.map((row) => row.stream_id);
}

const world = (platform: 'black_diamond' | 'orion' | 'addepar') => api.fleet.sandboxes.get(platform)!.world;
const transactionsOf = (platform: 'black_diamond' | 'orion' | 'addepar', accountId: string) => [...world(platform).transactions(accountId)].length;

describe('connecting through OAuth (initiate, consent, callback)', () => {
  it('answers an authorization URL and a session token kept only as a hash, then connects the account and syncs it', async () => {
    addSandboxAccount(api, 'addepar', 'carol', 'carol-addepar', 6, 9);
    const token = await api.token('carol');
    const head = await api.head();
    const started = await api.request('POST', `${BASE}/initiate`, { token, body: { platform: 'addepar', accountId: 'carol-addepar', bidirectionalSync: true } });
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ kind: 'authorization', expiresIn: 600 });
    expect(new URL(started.body.authorizationUrl).searchParams.get('code_challenge_method')).toBe('S256');
    // Nothing is in the log until the callback; the session table holds a hash and a sealed verifier.
    expect(await api.head()).toBe(head);
    const sessions = (await sql<Record<string, unknown>>`SELECT * FROM connect_sessions WHERE user_id = 'carol'`.execute(api.ledger.database.db)).rows;
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.token_hash).toBe(createHash('sha256').update(started.body.sessionToken).digest('hex'));
    expect(JSON.stringify(sessions)).not.toContain(started.body.sessionToken);
    expect(String(sessions[0]!.code_verifier_ciphertext)).toMatch(/^v1\./);

    const { code, state } = await consent(started.body.authorizationUrl, 'carol');
    const connected = await api.request('POST', `${BASE}/callback`, { token, body: { sessionToken: started.body.sessionToken, code, state } });
    expect(connected.status).toBe(201);
    expect(connected.body).toMatchObject({ kind: 'connected', platform: 'addepar', accountId: 'carol-addepar', status: 'active', displayName: 'Addepar' });
    expect(connected.headers.get('ledger-position')).toBe(connected.body.position);
    const events = await api.ledger.store.readStream(`connection-${connected.body.connectionId}`);
    expect(events.map((e) => e.type)).toEqual(['ConnectionInitiated', 'ConnectionAuthorized']);
    expect(events[0]!.data).toMatchObject({ ownerId: 'carol', platform: 'addepar', platformAccountId: 'carol-addepar', settings: { direction: 'bidirectional' } });
    expect(events[0]!.metadata).toMatchObject({ actor: 'carol', source: 'api' });

    await syncsSettled(api, connected.body.connectionId);
    const read = await api.request('GET', `${BASE}/${connected.body.connectionId}`, { token });
    expect(read.body).toMatchObject({ holdingsCount: 6, transactionsCount: transactionsOf('addepar', 'carol-addepar'), lastSyncStatus: 'completed' });
  });

  it('refuses a used, an expired and another user’s session, a wrong state and a code made for another verifier; nothing is written', async () => {
    const token = await api.token('dave');
    const start = async () => (await api.request('POST', `${BASE}/initiate`, { token, body: { platform: 'black_diamond' } })).body;
    const head = await api.head();

    const first = await start();
    const firstGrant = await consent(first.authorizationUrl, 'dave');
    const stolen = await api.request('POST', `${BASE}/callback`, { token: await api.token('mallory'), body: { sessionToken: first.sessionToken, ...firstGrant } });
    expect(stolen.status).toBe(404);
    const wrongState = await api.request('POST', `${BASE}/callback`, { token, body: { sessionToken: first.sessionToken, code: firstGrant.code, state: 'forged-state' } });
    expect(wrongState.status).toBe(400);
    expect(failingFields(wrongState.body)).toEqual(new Set(['body.state']));
    // A session is used up by its first callback, whatever came of it.
    const reused = await api.request('POST', `${BASE}/callback`, { token, body: { sessionToken: first.sessionToken, ...firstGrant } });
    expect(reused.status).toBe(409);
    expect(reused.body.code).toBe('CONNECT_SESSION_USED');

    const expiring = await start();
    const expiringGrant = await consent(expiring.authorizationUrl, 'dave');
    const hash = createHash('sha256').update(expiring.sessionToken).digest('hex');
    await sql`UPDATE connect_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = ${hash}`.execute(api.ledger.database.db);
    const expired = await api.request('POST', `${BASE}/callback`, { token, body: { sessionToken: expiring.sessionToken, ...expiringGrant } });
    expect(expired.status).toBe(409);
    expect(expired.body.code).toBe('CONNECT_SESSION_EXPIRED');

    // PKCE: the code of one session, sent with another session (its own state), fails the verifier check at the platform.
    const a = await start();
    const b = await start();
    const grantA = await consent(a.authorizationUrl, 'dave');
    const stateB = new URL(b.authorizationUrl).searchParams.get('state')!;
    const mixed = await api.request('POST', `${BASE}/callback`, { token, body: { sessionToken: b.sessionToken, code: grantA.code, state: stateB } });
    expect(mixed.status).toBe(409);
    expect(mixed.body.code).toBe('AUTHORIZATION_REFUSED');

    const unknown = await api.request('POST', `${BASE}/callback`, { token, body: { sessionToken: 'no-such-session', code: 'x', state: 'y' } });
    expect(unknown.status).toBe(404);
    expect(await api.head()).toBe(head);
  });

  it('refuses bad input naming every failing field, and writes nothing', async () => {
    const token = await api.token('alice');
    const head = await api.head();
    const cases: [unknown, string[]][] = [
      [{ platform: 'schwab' }, ['body.platform']],
      [{ platform: 'orion', accountId: '' }, ['body.accountId', 'body.apiKey', 'body.apiSecret']],
      [{ platform: 'black_diamond', bidirectionalSync: 'yes', apiKey: 'k' }, ['body.bidirectionalSync', 'body.apiKey']],
    ];
    for (const [body, fields] of cases) {
      const refused = await api.request('POST', `${BASE}/initiate`, { token, body });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
      expect(failingFields(refused.body)).toEqual(new Set(fields));
    }
    const callback = await api.request('POST', `${BASE}/callback`, { token, body: { code: '', extra: 1 } });
    expect(callback.status).toBe(400);
    expect(failingFields(callback.body)).toEqual(new Set(['body.sessionToken', 'body.code', 'body.state', 'body.extra']));
    expect(await api.head()).toBe(head);
  });
});

describe('connecting with an API key (Orion)', () => {
  it('connects at once, and refuses a wrong secret without writing anything', async () => {
    expect(aliceOrion).toMatchObject({ kind: 'connected', platform: 'orion', accountId: 'alice-orion', status: 'active', displayName: 'Orion' });
    const head = await api.head();
    const refused = await api.request('POST', `${BASE}/initiate`, {
      token: await api.token('alice'),
      body: { platform: 'orion', apiKey: sandboxApiUser('alice').apiKey, apiSecret: 'not-the-secret' },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('AUTHORIZATION_REFUSED');
    expect(JSON.stringify(refused.body)).not.toContain('not-the-secret');
    expect(await api.head()).toBe(head);
  });
});

describe('listing and reading connections', () => {
  it('lists the caller’s connections with the statistics of what was synced, filtered and paged', async () => {
    const token = await api.token('alice');
    const listed = await api.request('GET', BASE, { token });
    expect(listed.status).toBe(200);
    const byId = new Map(listed.body.items.map((item: { connectionId: string }) => [item.connectionId, item]));
    expect([...byId.keys()].sort()).toEqual([aliceBd.connectionId, aliceOrion.connectionId].sort());
    expect(byId.get(aliceBd.connectionId)).toMatchObject({
      platform: 'black_diamond',
      status: 'active',
      holdingsCount: world('black_diamond').holdingsCount('alice-bd'),
      transactionsCount: transactionsOf('black_diamond', 'alice-bd'),
      syncSuccessRate: '1.0000',
    });
    expect(byId.get(aliceOrion.connectionId)).toMatchObject({ holdingsCount: 8, transactionsCount: transactionsOf('orion', 'alice-orion') });
    for (const item of listed.body.items) {
      expect(Date.parse(item.lastSyncAt)).toBeGreaterThan(0);
      expect(Date.parse(item.nextSyncAt)).toBeGreaterThan(Date.parse(item.lastSyncAt));
    }

    const orionOnly = await api.request('GET', `${BASE}?platform=orion&status=active`, { token });
    expect(orionOnly.body.items.map((i: { connectionId: string }) => i.connectionId)).toEqual([aliceOrion.connectionId]);
    const portfolio = await api.request('POST', '/api/v1/portfolios', { token, body: { name: 'Linked', baseCurrency: 'USD', connections: [{ connectionId: aliceBd.connectionId }] } });
    const linked = await api.request('GET', `${BASE}?portfolio_id=${portfolio.body.portfolioId}`, { token, headers: { 'ledger-min-position': portfolio.body.position } });
    expect(linked.body.items.map((i: { connectionId: string }) => i.connectionId)).toEqual([aliceBd.connectionId]);

    const first = await api.request('GET', `${BASE}?limit=1`, { token });
    expect(first.body.items).toHaveLength(1);
    const second = await api.request('GET', `${BASE}?limit=1&cursor=${first.body.nextCursor}`, { token });
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    expect([first.body.items[0].connectionId, second.body.items[0].connectionId].sort()).toEqual([...byId.keys()].sort());

    const bad = await api.request('GET', `${BASE}?limit=0&platform=schwab&status=gone&colour=red`, { token });
    expect(bad.status).toBe(400);
    expect(failingFields(bad.body)).toEqual(new Set(['query.limit', 'query.platform', 'query.status', 'query.colour']));
    const badCursor = await api.request('GET', `${BASE}?cursor=garbage`, { token });
    expect(failingFields(badCursor.body)).toEqual(new Set(['query.cursor']));
  });

  it('shows operations staff every user’s connections, and owners only their own', async () => {
    const ops = await api.request('GET', BASE, { token: await api.token('opal', ['operations']) });
    const ids = ops.body.items.map((i: { connectionId: string }) => i.connectionId);
    expect(ids).toEqual(expect.arrayContaining([aliceBd.connectionId, aliceOrion.connectionId, bobAddepar.connectionId]));
    const bob = await api.request('GET', BASE, { token: await api.token('bob') });
    expect(bob.body.items.map((i: { connectionId: string }) => i.connectionId)).toEqual([bobAddepar.connectionId]);
    const compliance = await api.request('GET', BASE, { token: await api.token('cora', ['compliance']) });
    expect(compliance.status).toBe(403);
  });

  it('reads one connection with its settings, filters and statistics, never its credentials', async () => {
    const token = await api.token('alice');
    const read = await api.request('GET', `${BASE}/${aliceBd.connectionId}`, { token });
    expect(read.status).toBe(200);
    const syncs = (await sql<{ count: string }>`SELECT count(*) FROM sync_operations WHERE connection_id = ${aliceBd.connectionId}`.execute(api.ledger.database.db)).rows[0]!.count;
    expect(read.body).toMatchObject({
      connectionId: aliceBd.connectionId,
      ownerId: 'alice',
      accountId: 'alice-bd',
      settings: { autoSync: true, syncFrequencyMinutes: null, direction: 'read_only', conflictStrategy: 'TIMESTAMP' },
      dataFilters: {},
      statistics: { syncCount: Number(syncs), successCount: Number(syncs), holdingsCount: 12, runningOperationId: null },
      lastError: null,
    });
    const credentials = await api.ledger.credentials.load(aliceBd.connectionId);
    const text = JSON.stringify(read.body);
    for (const secret of [credentials.accessToken, credentials.refreshToken]) expect(text).not.toContain(secret);

    const ops = await api.request('GET', `${BASE}/${bobAddepar.connectionId}`, { token: await api.token('opal', ['operations']) });
    expect(ops.status).toBe(200);
    const other = await api.request('GET', `${BASE}/${bobAddepar.connectionId}`, { token });
    const unknown = await api.request('GET', `${BASE}/no-such-connection`, { token });
    expect(other.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(other.body.title).toBe(unknown.body.title);
    const blank = await api.request('GET', `${BASE}/%20`, { token });
    expect(blank.status).toBe(400);
    expect(failingFields(blank.body)).toEqual(new Set(['params.id']));
  });
});

describe('changing and disconnecting', () => {
  it('changes only the settings given; the queue follows the new frequency', async () => {
    const token = await api.token('alice');
    // Refusals first: the change below puts the connection's syncs due at once, which append to the log.
    const head = await api.head();
    const bad = await api.request('PUT', `${BASE}/${aliceOrion.connectionId}`, { token, body: { displayName: '', autoSync: 'no', syncFrequencyMinutes: 1, colour: 'red' } });
    expect(bad.status).toBe(400);
    expect(failingFields(bad.body)).toEqual(new Set(['body.displayName', 'body.autoSync', 'body.syncFrequencyMinutes', 'body.colour']));
    const empty = await api.request('PUT', `${BASE}/${aliceOrion.connectionId}`, { token, body: {} });
    expect(empty.status).toBe(400);
    expect(failingFields(empty.body)).toEqual(new Set(['body']));
    for (const caller of [await api.token('bob'), await api.token('opal', ['operations'])]) {
      const refused = await api.request('PUT', `${BASE}/${aliceOrion.connectionId}`, { token: caller, body: { displayName: 'Mine now' } });
      expect(refused.status).toBe(404);
    }
    expect(await api.head()).toBe(head);
    const changed = await api.request('PUT', `${BASE}/${aliceOrion.connectionId}`, {
      token,
      body: { displayName: 'Orion (IRA)', syncFrequencyMinutes: 30, dataFilters: { minimumValue: '10.00' } },
    });
    expect(changed.status).toBe(200);
    expect(changed.body.settings).toMatchObject({ displayName: 'Orion (IRA)', syncFrequencyMinutes: 30, autoSync: true, dataFilters: { minimumValue: '10.00' } });
    const events = await api.ledger.store.readStream(`connection-${aliceOrion.connectionId}`);
    expect(events.at(-1)).toMatchObject({ type: 'ConnectionSettingsChanged', data: { changes: { displayName: 'Orion (IRA)', syncFrequencyMinutes: 30, dataFilters: { minimumValue: '10.00' } } } });
    const schedules = (await sql<{ schedule: unknown }>`SELECT DISTINCT schedule FROM sync_queue WHERE connection_id = ${aliceOrion.connectionId}`.execute(api.ledger.database.db)).rows;
    expect(schedules).toEqual([{ schedule: { everyMinutes: 30 } }]);
    const read = await api.request('GET', `${BASE}/${aliceOrion.connectionId}`, { token, headers: { 'ledger-min-position': changed.body.position } });
    expect(read.body).toMatchObject({ displayName: 'Orion (IRA)', settings: { syncFrequencyMinutes: 30 }, dataFilters: { minimumValue: '10.00' } });
    // The new schedule is due at once: let those syncs finish before the next test counts the log.
    await syncsSettled(api, aliceOrion.connectionId);
  });

  it('disconnects: no more syncs, the credentials deleted, and with includeHistory the synced holdings leave the read models', async () => {
    addSandboxAccount(api, 'orion', 'erin', 'erin-orion', 4, 6);
    const erin = await connectOrion(api, 'erin', 'erin-orion');
    await syncsSettled(api, erin.connectionId);
    const token = await api.token('erin');
    const head = await api.head();
    const bad = await api.request('DELETE', `${BASE}/${erin.connectionId}?includeHistory=maybe`, { token });
    expect(bad.status).toBe(400);
    expect(failingFields(bad.body)).toEqual(new Set(['query.includeHistory']));
    expect((await api.request('DELETE', `${BASE}/${erin.connectionId}`, { token: await api.token('bob') })).status).toBe(404);
    expect(await api.head()).toBe(head);

    const gone = await api.request('DELETE', `${BASE}/${erin.connectionId}?includeHistory=true`, { token });
    expect(gone.status).toBe(200);
    expect(gone.body).toMatchObject({ connectionId: erin.connectionId, status: 'disconnected', keepData: false });
    const events = await api.ledger.store.readStream(`connection-${erin.connectionId}`);
    expect(events.at(-1)).toMatchObject({ type: 'ConnectionDisconnected', data: { keepData: false, disconnectedBy: 'erin' } });
    await expect(api.ledger.credentials.load(erin.connectionId)).rejects.toThrow();
    const autoSync = (await sql<{ auto_sync: boolean }>`SELECT DISTINCT auto_sync FROM sync_queue WHERE connection_id = ${erin.connectionId}`.execute(api.ledger.database.db)).rows;
    expect(autoSync).toEqual([{ auto_sync: false }]);
    const read = await api.request('GET', `${BASE}/${erin.connectionId}`, { token, headers: { 'ledger-min-position': gone.body.position } });
    expect(read.body).toMatchObject({ status: 'disconnected', holdingsCount: 0, transactionsCount: 0 });
    const sync = await api.request('POST', `${BASE}/${erin.connectionId}/sync`, { token, body: {} });
    expect(sync.status).toBe(409);
    expect(sync.body.code).toBe('CONNECTION_DISCONNECTED');
  });
});

describe('syncing on demand', () => {
  it('queues one operation that the worker runs; a repeated Idempotency-Key answers it again; a second sync while it runs is refused', async () => {
    const token = await api.token('alice');
    const sandbox = api.fleet.sandboxes.get('black_diamond')!;
    // The platform answers slowly, so the first sync is still running when the second is asked for.
    sandbox.faults.enqueue({ kind: 'slow', delayMs: 1500 });
    const headers = { 'idempotency-key': 'sync-bd-1' };
    const queued = await api.request('POST', `${BASE}/${aliceBd.connectionId}/sync`, { token, headers, body: { dataTypes: ['holdings'], force: true } });
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ status: 'requested', dataTypes: ['holdings'] });
    expect(Date.parse(queued.body.estimatedCompletionTime)).toBeGreaterThanOrEqual(Date.parse(queued.body.startedAt));
    // The worker appends while the operation runs; what must not change is the requests in the log.
    const requests = await requestedSyncs();
    const replayed = await api.request('POST', `${BASE}/${aliceBd.connectionId}/sync`, { token, headers, body: { dataTypes: ['holdings'], force: true } });
    expect(replayed.body).toEqual(queued.body);
    expect(replayed.headers.get('idempotency-replayed')).toBe('true');
    const busy = await api.request('POST', `${BASE}/${aliceBd.connectionId}/sync`, { token, body: { dataTypes: ['holdings', 'transactions'] } });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('SYNC_IN_PROGRESS');
    expect(busy.body.detail).toContain(queued.body.syncOperationId);
    expect(await requestedSyncs()).toEqual(requests);

    await syncsSettled(api, aliceBd.connectionId);
    const operation = await api.request('GET', `/api/v1/sync-operations/${queued.body.syncOperationId}`, { token });
    expect(operation.body).toMatchObject({ status: 'completed', trigger: 'manual', requestedBy: 'alice', force: true, dataTypes: ['holdings'] });
    // A forced sync processes every holding the platform has, and changes none of them.
    expect(operation.body.statistics).toMatchObject({ processed: 12, failed: 0, inserted: 0 });
    const events = await api.ledger.store.readStream(`sync-${queued.body.syncOperationId}`);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['SyncRequested', 'SyncStarted', 'SyncCompleted']));
    expect(events[0]!.metadata).toMatchObject({ actor: 'alice', source: 'api', correlationId: queued.body.syncOperationId });
  });

  it('refuses bad input, another user’s connection and a data type the platform does not offer, writing nothing', async () => {
    const token = await api.token('alice');
    const head = await api.head();
    const bad = await api.request('POST', `${BASE}/${aliceBd.connectionId}/sync`, { token, body: { dataTypes: ['holdings', 'gossip'], force: 'yes', extra: true } });
    expect(bad.status).toBe(400);
    expect(failingFields(bad.body)).toEqual(new Set(['body.dataTypes.1', 'body.force', 'body.extra']));
    expect((await api.request('POST', `${BASE}/${bobAddepar.connectionId}/sync`, { token, body: {} })).status).toBe(404);
    const unsupported = await api.request('POST', `${BASE}/${aliceBd.connectionId}/sync`, { token, body: { dataTypes: ['tax_lots'] } });
    expect(unsupported.status).toBe(409);
    expect(unsupported.body.code).toBe('DATA_TYPE_NOT_SUPPORTED');
    // The refused request's queue rows were rolled back with it.
    const rows = await sql<{ n: string }>`SELECT count(*) AS n FROM sync_queue WHERE connection_id = ${aliceBd.connectionId} AND data_type = 'tax_lots'`.execute(api.ledger.database.db);
    expect(Number(rows.rows[0]!.n)).toBe(0);
    expect(await api.head()).toBe(head);
  });
});

describe('documentation', () => {
  it('lists the connection routes in the OpenAPI document', async () => {
    const spec = await api.request('GET', '/openapi.json');
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining([`${BASE}/initiate`, `${BASE}/callback`, BASE, `${BASE}/{id}`, `${BASE}/{id}/sync`]),
    );
  });
});
