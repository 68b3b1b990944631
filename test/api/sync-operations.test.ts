import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from '../support/api.ts';
import { addSandboxAccount, connectOAuth, connectOrion, failingFields, syncsSettled } from '../support/connections.ts';

const OPS = '/api/v1/sync-operations';
let api: ApiHarness;
let alice: { connectionId: string };
let bob: { connectionId: string };

beforeAll(async () => {
  api = await startApi();
  addSandboxAccount(api, 'orion', 'alice', 'alice-orion', 15, 25);
  addSandboxAccount(api, 'black_diamond', 'bob', 'bob-bd', 5, 8);
  alice = await connectOrion(api, 'alice', 'alice-orion');
  bob = await connectOAuth(api, 'bob', 'black_diamond', 'bob-bd');
  await syncsSettled(api, alice.connectionId);
  await syncsSettled(api, bob.connectionId);
}, 60_000);
afterAll(async () => api?.close());

/** The operations of a connection as the log has them: id, data types and final counts. */
async function operationsInLog(connectionId: string) {
  const rows = await sql<{ operation_id: string; data_types: string[]; processed: number | null; status: string | null }>`
    SELECT r.data->>'operationId' AS operation_id, ARRAY(SELECT jsonb_array_elements_text(r.data->'dataTypes')) AS data_types,
           (f.data->'counts'->>'processed')::int AS processed,
           CASE f.event_type WHEN 'SyncFailed' THEN 'failed' ELSE f.data->>'outcome' END AS status
      FROM events r LEFT JOIN events f ON f.stream_id = r.stream_id AND f.event_type IN ('SyncCompleted', 'SyncFailed')
     WHERE r.event_type = 'SyncRequested' AND r.data->>'connectionId' = ${connectionId}`.execute(api.ledger.database.db);
  return rows.rows;
}

describe('sync operations', () => {
  it('lists the caller’s operations as the log recorded them, filtered and paged', async () => {
    const token = await api.token('alice');
    const listed = await api.request('GET', OPS, { token });
    expect(listed.status).toBe(200);
    const logged = await operationsInLog(alice.connectionId);
    expect(listed.body.items.map((o: { operationId: string }) => o.operationId).sort()).toEqual(logged.map((o) => o.operation_id).sort());
    for (const item of listed.body.items) {
      const inLog = logged.find((o) => o.operation_id === item.operationId)!;
      expect(item).toMatchObject({ connectionId: alice.connectionId, platform: 'orion', trigger: 'schedule', status: inLog.status, dataTypes: inLog.data_types });
      expect(item.statistics.processed).toBe(inLog.processed);
    }
    const times = listed.body.items.map((o: { requestedAt: string }) => Date.parse(o.requestedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));

    const holdings = await api.request('GET', `${OPS}?dataType=holdings&status=completed&hours=1&connectionId=${alice.connectionId}`, { token });
    expect(holdings.body.items).toHaveLength(1);
    expect(holdings.body.items[0].statistics).toMatchObject({ processed: 15, inserted: 15, failed: 0 });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { operationId: string }[]; nextCursor: string | null } } = await api.request('GET', `${OPS}?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token });
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((o) => o.operationId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(listed.body.items.map((o: { operationId: string }) => o.operationId));

    const bad = await api.request('GET', `${OPS}?status=lost&dataType=gossip&hours=0&limit=501`, { token });
    expect(bad.status).toBe(400);
    expect(failingFields(bad.body)).toEqual(new Set(['query.status', 'query.dataType', 'query.hours', 'query.limit']));
  });

  it('shows owners only their own operations and operations staff everyone’s', async () => {
    const mine = await api.request('GET', `${OPS}?connectionId=${bob.connectionId}`, { token: await api.token('alice') });
    expect(mine.body.items).toEqual([]);
    const ops = await api.request('GET', `${OPS}?limit=500`, { token: await api.token('opal', ['operations']) });
    const connections = new Set(ops.body.items.map((o: { connectionId: string }) => o.connectionId));
    expect(connections).toEqual(new Set([alice.connectionId, bob.connectionId]));
    expect((await api.request('GET', OPS, { token: await api.token('cora', ['compliance']) })).status).toBe(403);
  });

  it('reads one operation; another user’s answers 404 like an unknown id', async () => {
    const token = await api.token('alice');
    const [logged] = (await operationsInLog(alice.connectionId)).filter((o) => o.data_types.includes('holdings'));
    const read = await api.request('GET', `${OPS}/${logged!.operation_id}`, { token });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      operationId: logged!.operation_id,
      status: 'completed',
      requestedBy: 'scheduler',
      failure: null,
      errors: [],
      warnings: [],
      statistics: { processed: 15, inserted: 15, pulled: { holdings: 15 } },
    });
    expect(read.body.durationMs).toBe(Date.parse(read.body.finishedAt) - Date.parse(read.body.startedAt));

    const bobs = (await operationsInLog(bob.connectionId))[0]!.operation_id;
    const other = await api.request('GET', `${OPS}/${bobs}`, { token });
    const unknown = await api.request('GET', `${OPS}/no-such-operation`, { token });
    expect(other.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect((await api.request('GET', `${OPS}/${bobs}`, { token: await api.token('opal', ['operations']) })).status).toBe(200);
  });
});

describe('retrying', () => {
  it('a partial sync shows its record errors; retrying the failed records only runs a new attempt that completes', async () => {
    const token = await api.token('alice');
    // One malformed record on the next page the platform serves: the sync completes, partly.
    api.fleet.sandboxes.get('orion')!.faults.enqueue('malformed_record');
    const queued = await api.request('POST', `/api/v1/portfolio-connections/${alice.connectionId}/sync`, { token, body: { dataTypes: ['holdings'], force: true } });
    expect(queued.status).toBe(202);
    const id = queued.body.syncOperationId;
    await syncsSettled(api, alice.connectionId);
    const partial = await api.request('GET', `${OPS}/${id}`, { token });
    expect(partial.body).toMatchObject({ status: 'partial', errorCount: 1, statistics: { processed: 15, failed: 1 } });
    expect(partial.body.errors).toHaveLength(1);
    expect(partial.body.errors[0]).toMatchObject({ dataType: 'holdings', code: 'RECORD_INVALID' });

    const head = await api.head();
    const bad = await api.request('POST', `${OPS}/${id}/retry`, { token, body: { retryFailedOnly: 'yes', extra: 1 } });
    expect(bad.status).toBe(400);
    expect(failingFields(bad.body)).toEqual(new Set(['body.retryFailedOnly', 'body.extra']));
    expect((await api.request('POST', `${OPS}/${id}/retry`, { token: await api.token('bob'), body: {} })).status).toBe(404);
    expect(await api.head()).toBe(head);

    const retried = await api.request('POST', `${OPS}/${id}/retry`, { token, headers: { 'idempotency-key': 'retry-1' }, body: { retryFailedOnly: true } });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ syncOperationId: `${id}.r1`, retryOf: id, dataTypes: ['holdings'] });
    const replay = await api.request('POST', `${OPS}/${id}/retry`, { token, headers: { 'idempotency-key': 'retry-1' }, body: { retryFailedOnly: true } });
    expect(replay.body).toEqual(retried.body);
    await syncsSettled(api, alice.connectionId);

    const attempt = await api.request('GET', `${OPS}/${id}.r1`, { token });
    // Only the record that failed was pulled again.
    expect(attempt.body).toMatchObject({ status: 'completed', trigger: 'retry', attempt: 1, retryOf: id, statistics: { processed: 1, failed: 0 } });
    expect((await api.request('GET', `${OPS}/${id}`, { token })).body.retriedBy).toBe(`${id}.r1`);
    // Asking again answers the same attempt and starts nothing new.
    const before = await api.head();
    const again = await api.request('POST', `${OPS}/${id}/retry`, { token, body: { retryFailedOnly: true } });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ syncOperationId: `${id}.r1`, status: 'completed', position: null });
    expect(again.body.estimatedCompletionTime).toBe(attempt.body.finishedAt);
    const queue = await sql<{ operation_id: string | null }>`SELECT operation_id FROM sync_queue WHERE connection_id = ${alice.connectionId} AND data_type = 'holdings'`.execute(api.ledger.database.db);
    expect(queue.rows).toEqual([{ operation_id: null }]);
    expect(await api.head()).toBe(before);
    // A completed operation is not retried.
    const completed = await api.request('POST', `${OPS}/${id}.r1/retry`, { token, body: {} });
    expect(completed.status).toBe(409);
    expect(completed.body.code).toBe('SYNC_NOT_RETRYABLE');
  });
});

describe('sync status', () => {
  it('sums up connection health, the last day’s syncs and current errors, per caller', async () => {
    const token = await api.token('bob');
    const healthy = await api.request('GET', '/api/v1/sync-status', { token });
    expect(healthy.status).toBe(200);
    const logged = await operationsInLog(bob.connectionId);
    expect(healthy.body).toMatchObject({
      status: 'healthy',
      connections: { total: 1, active: 1, failing: 0, error: 0, syncing: 0 },
      syncMetrics: { windowHours: 24, total: logged.length, completed: logged.length, failed: 0, successRate: '1.0000', recordsProcessed: logged.reduce((sum, o) => sum + o.processed!, 0) },
      currentErrors: [],
    });

    // Bob's platform fails every request: his next sync fails and the status says so.
    const sandbox = api.fleet.sandboxes.get('black_diamond')!;
    sandbox.faults.setRate('server_error', 1);
    const queued = await api.request('POST', `/api/v1/portfolio-connections/${bob.connectionId}/sync`, { token, body: { dataTypes: ['holdings'] } });
    await syncsSettled(api, bob.connectionId);
    sandbox.faults.clear();
    const failing = await api.request('GET', '/api/v1/sync-status', { token });
    // The failure was retryable: its automatic retry is requested, due in a minute.
    expect(failing.body).toMatchObject({ status: 'unhealthy', connections: { total: 1, failing: 1 }, syncMetrics: { failed: 1, requested: 1, total: logged.length + 2 } });
    expect(failing.body.currentErrors).toEqual([
      expect.objectContaining({ connectionId: bob.connectionId, platform: 'black_diamond', operationId: queued.body.syncOperationId, code: 'PLATFORM_UNAVAILABLE' }),
    ]);

    // Alice sees only her own connection; operations staff see both.
    const aliceStatus = await api.request('GET', '/api/v1/sync-status', { token: await api.token('alice') });
    expect(aliceStatus.body).toMatchObject({ status: 'healthy', connections: { total: 1 }, currentErrors: [] });
    const ops = await api.request('GET', '/api/v1/sync-status', { token: await api.token('opal', ['operations']) });
    expect(ops.body).toMatchObject({ status: 'unhealthy', connections: { total: 2, active: 2, failing: 1 } });
    expect(ops.body.currentErrors.map((e: { connectionId: string }) => e.connectionId)).toEqual([bob.connectionId]);
  });
});
