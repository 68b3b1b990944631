import { sql } from 'kysely';
import { expect } from 'vitest';
import { sandboxApiUser } from '../../src/adapters/platforms/orion/index.ts';
import type { Platform } from '../../src/domain/platforms/records.ts';
import type { ApiHarness } from './api.ts';
import { eventually } from './eventually.ts';

/** Connecting platform accounts through the API, as a user's client would, and waiting for their syncs. */

/** An account of `owner` in a platform's sandbox, with the given numbers of holdings and transactions. */
export function addSandboxAccount(api: ApiHarness, platform: Platform, owner: string, accountId: string, holdings: number, transactions: number): void {
  api.fleet.sandboxes.get(platform)!.world.addAccount({ ownerId: owner, id: accountId, holdings, transactions });
}

/**
 * What the user's browser does with an authorization URL at an auto-approving sandbox: open it as
 * `user` (login_hint) and read the redirect's code and state.
 */
export async function consent(authorizationUrl: string, user: string): Promise<{ code: string; state: string }> {
  const url = new URL(authorizationUrl);
  url.searchParams.set('login_hint', user);
  const response = await fetch(url, { redirect: 'manual' });
  await response.arrayBuffer();
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('location')!);
  return { code: location.searchParams.get('code')!, state: location.searchParams.get('state')! };
}

/** initiate, consent and callback for an OAuth platform; answers the callback's body. */
export async function connectOAuth(api: ApiHarness, user: string, platform: 'black_diamond' | 'addepar', accountId: string) {
  const token = await api.token(user);
  const started = await api.request('POST', '/api/v1/portfolio-connections/initiate', { token, body: { platform, accountId } });
  expect(started.status).toBe(200);
  const { code, state } = await consent(started.body.authorizationUrl, user);
  const connected = await api.request('POST', '/api/v1/portfolio-connections/callback', { token, body: { sessionToken: started.body.sessionToken, code, state } });
  expect(connected.status).toBe(201);
  return connected.body;
}

/** An Orion connection from the sandbox's API user for `user`, made at once by initiate. */
export async function connectOrion(api: ApiHarness, user: string, accountId: string) {
  const connected = await api.request('POST', '/api/v1/portfolio-connections/initiate', {
    token: await api.token(user),
    body: { platform: 'orion', accountId, ...sandboxApiUser(user) },
  });
  expect(connected.status).toBe(201);
  return connected.body;
}

/** Waits until nothing of the connection is queued or running, then until the read models hold everything. */
export async function syncsSettled(api: ApiHarness, connectionId: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => {
    const rows = await sql<{ idle: boolean }>`
      SELECT NOT running AND last_status IS NOT NULL AND (operation_id IS NULL OR next_run_at > now()) AS idle
        FROM sync_queue WHERE connection_id = ${connectionId}`.execute(api.ledger.database.db);
    return rows.rows.length > 0 && rows.rows.every((row) => row.idle);
  }, timeoutMs);
  await api.settle();
}

/** Every field a 400 problem names. */
export const failingFields = (body: { errors?: { field: string }[] }) => new Set((body.errors ?? []).map((error) => error.field));
