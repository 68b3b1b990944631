import { monotonicFactory } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { chainHash, contentHash } from '../src/domain/events/hash-chain.ts';
import { EventIdConflictError, type NewEvent } from '../src/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { inc, testCatalogue } from './support/events.ts';

// Batches this large with caller-supplied ids (a sync's source events) go in with COPY.
const LARGE = 200;
const newId = monotonicFactory();

let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 15 });
  store = new PostgresEventStore(database.pool, { catalogue: testCatalogue });
});
afterAll(async () => database?.drop());

function batch(size: number): (NewEvent & { id: string })[] {
  return Array.from({ length: size }, (_, i) => ({ id: newId(), ...inc(i + 1) }));
}

async function countEvents(streamId: string): Promise<number> {
  const result = await database.pool.query<{ n: number }>('SELECT count(*) AS n FROM events WHERE stream_id = $1', [streamId]);
  return result.rows[0]!.n;
}

describe('large batches with caller-supplied ids', () => {
  it('are stored once in order with an unbroken chain, and a repeat returns the stored positions', async () => {
    const events = batch(LARGE);
    const first = await store.append('copy-ids-1', events, { expectedVersion: 'no_stream' });
    const second = await store.append('copy-ids-1', events, { expectedVersion: 'no_stream' });
    const more = await store.append('copy-ids-1', batch(LARGE), { expectedVersion: first.nextExpectedVersion });

    expect(first.alreadyStored).toBe(false);
    expect(second.alreadyStored).toBe(true);
    expect(second.events).toEqual(first.events);
    expect(more.nextExpectedVersion).toBe(2 * LARGE);
    const stored = await store.readStream('copy-ids-1');
    expect(stored.slice(0, LARGE).map((e) => e.id)).toEqual(events.map((e) => e.id));
    let previous: string | null = null;
    for (const event of stored) {
      expect(event.hash).toBe(chainHash(previous, event.streamVersion, contentHash({ ...event, recordedAt: event.recordedAt.toISOString() })));
      previous = event.hash;
    }
  });

  it('appended 6 times concurrently are stored once', async () => {
    const events = batch(LARGE);
    const results = await Promise.all(Array.from({ length: 6 }, () => store.append('copy-ids-2', events, { expectedVersion: 'any' })));

    expect(results.filter((r) => !r.alreadyStored)).toHaveLength(1);
    for (const result of results) expect(result.events).toEqual(results[0]!.events);
    expect(await countEvents('copy-ids-2')).toBe(LARGE);
  });

  it('are refused when partly stored or stored in another stream, and write nothing', async () => {
    const events = batch(LARGE);
    await store.append('copy-ids-3', events);

    await expect(store.append('copy-ids-3', [...events.slice(0, 10), ...batch(LARGE)])).rejects.toBeInstanceOf(EventIdConflictError);
    await expect(store.append('copy-ids-4', [...batch(LARGE), events[5]!])).rejects.toBeInstanceOf(EventIdConflictError);
    expect(await countEvents('copy-ids-3')).toBe(LARGE);
    expect(await countEvents('copy-ids-4')).toBe(0);
  });

  it('refuse an id repeated within the batch', async () => {
    const events = batch(LARGE);
    await expect(store.append('copy-ids-5', [...events, events[7]!])).rejects.toThrow(/duplicates the id/);
    expect(await countEvents('copy-ids-5')).toBe(0);
  });
});
