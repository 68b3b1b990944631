import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { WrongExpectedVersionError } from '../src/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { inc, testCatalogue } from './support/events.ts';

let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 25 });
  store = new PostgresEventStore(database.pool, { catalogue: testCatalogue });
});
afterAll(async () => database?.drop());

describe('append', () => {
  it('appends and reads a stream', async () => {
    const result = await store.append('counter-1', [inc(1), inc(2)], { expectedVersion: 'no_stream' });
    expect(result.nextExpectedVersion).toBe(2);
    const events = await store.readStream('counter-1');
    expect(events.map((e) => [e.streamVersion, e.data])).toEqual([[1, { by: 1, note: 'n' }], [2, { by: 2, note: 'n' }]]);
    await expect(store.append('counter-1', [inc()], { expectedVersion: 'no_stream' })).rejects.toBeInstanceOf(WrongExpectedVersionError);
  });
});
