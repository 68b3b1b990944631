import type pg from 'pg';
import { monotonicFactory } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { InvalidEventError } from '../src/domain/events/catalogue.ts';
import { canonicalJson, chainHash, contentHash } from '../src/domain/events/hash-chain.ts';
import { ValidationError } from '../src/domain/validation.ts';
import {
  EventIdConflictError,
  WrongExpectedVersionError,
  type AppendResult,
  type ExpectedVersion,
  type LogCursor,
  type NewEvent,
  type RecordedEvent,
} from '../src/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { inc, testCatalogue } from './support/events.ts';

const newId = monotonicFactory();

let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 25 });
  store = new PostgresEventStore(database.pool, { catalogue: testCatalogue });
});
afterAll(async () => database?.drop());

/** Events with explicit ids, so that a test can name exactly which events it expects stored. */
type IdentifiedEvent = NewEvent & { id: string };

function batch(size: number): IdentifiedEvent[] {
  return Array.from({ length: size }, (_, i) => ({ id: newId(), ...inc(i + 1) }));
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

async function countEvents(streamId?: string): Promise<number> {
  const result = streamId === undefined
    ? await database.pool.query<{ n: number }>('SELECT count(*) AS n FROM events')
    : await database.pool.query<{ n: number }>('SELECT count(*) AS n FROM events WHERE stream_id = $1', [streamId]);
  return result.rows[0]!.n;
}

async function streamRowExists(streamId: string): Promise<boolean> {
  const result = await database.pool.query('SELECT 1 FROM streams WHERE stream_id = $1', [streamId]);
  return result.rowCount === 1;
}

const ids = (events: readonly { id: string }[]) => events.map((e) => e.id);

function cursorAtOrAfter(head: LogCursor | null, cursor: LogCursor): boolean {
  if (!head) return false;
  const [a, b] = [BigInt(head.transactionId), BigInt(cursor.transactionId)];
  return a > b || (a === b && head.position >= cursor.position);
}

/**
 * readAll shows only events below the oldest running transaction of the whole cluster, so another
 * test file's open transaction can briefly hide an append from this one: wait for it like a
 * read-your-writes caller would.
 */
async function waitUntilVisible(cursor: LogCursor): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cursorAtOrAfter(await store.head(), cursor)) {
    if (Date.now() > deadline) throw new Error(`log head did not reach ${cursor.transactionId}.${cursor.position}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Holds back concurrent appends until `expectedWaiters` of them are blocked on the lock that
 * `hold` takes, so that they race for real instead of running one after another as pool
 * connections open. The holding transaction is rolled back on release.
 */
async function gate(expectedWaiters: number, hold: (client: pg.PoolClient) => Promise<unknown>): Promise<() => Promise<void>> {
  const client = await database.pool.connect();
  await client.query('BEGIN');
  await hold(client);
  return async () => {
    try {
      const deadline = Date.now() + 5000;
      for (;;) {
        const waiting = await database.pool.query<{ n: number }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if (waiting.rows[0]!.n >= expectedWaiters) break;
        if (Date.now() > deadline) throw new Error(`only ${waiting.rows[0]!.n} of ${expectedWaiters} appends reached the gate`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  };
}

/** Gates appends to a stream: an existing one by its row lock, a new one by an uncommitted row of the same id. */
function streamGate(streamId: string, expectedWaiters: number): Promise<() => Promise<void>> {
  return gate(expectedWaiters, async (client) => {
    const locked = await client.query('SELECT 1 FROM streams WHERE stream_id = $1 FOR UPDATE', [streamId]);
    if (locked.rowCount === 0) await client.query('INSERT INTO streams (stream_id, version) VALUES ($1, 0)', [streamId]);
  });
}

/** Recomputes every link in JS from the events as read; the store extended the chain in SQL. */
function brokenChainLinks(events: RecordedEvent[]): number[] {
  let previous: string | null = null;
  const broken: number[] = [];
  for (const event of events) {
    const content = contentHash({ ...event, recordedAt: event.recordedAt.toISOString() });
    if (event.hash !== chainHash(previous, event.streamVersion, content)) broken.push(event.streamVersion);
    previous = event.hash;
  }
  return broken;
}

describe('optimistic concurrency', () => {
  it('lets exactly one of 20 concurrent appends with the same expected version through', async () => {
    const streamId = 'race-1';
    await store.append(streamId, batch(2), { expectedVersion: 'no_stream' });
    const batches = Array.from({ length: 20 }, () => batch(3));

    const release = await streamGate(streamId, 20);
    const appends = Promise.allSettled(batches.map((events) => store.append(streamId, events, { expectedVersion: 2 })));
    await release();
    const outcomes = await appends;

    const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [{ result: o.value, events: batches[i]! }] : []));
    const losers = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(19);
    for (const error of losers) {
      expect(error).toBeInstanceOf(WrongExpectedVersionError);
      const wrong = error as WrongExpectedVersionError;
      expect([wrong.streamId, wrong.expected, wrong.actual]).toEqual([streamId, 2, 5]);
      expect(wrong.message).toContain(streamId);
      expect(wrong.message).toContain('expected 2');
      expect(wrong.message).toContain('actual 5');
    }

    const winner = winners[0]!;
    expect(winner.result.nextExpectedVersion).toBe(5);
    const stored = await store.readStream(streamId);
    expect(stored.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5]);
    expect(ids(stored.slice(2))).toEqual(ids(winner.events));
    expect(await countEvents(streamId)).toBe(5);
  });

  it('lets exactly one of 20 concurrent single-event appends through (grouped or alone)', async () => {
    const streamId = 'race-single';
    await store.append(streamId, [inc(1)], { expectedVersion: 'no_stream' });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.append(streamId, [inc(i)], { expectedVersion: 1 })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) {
      expect((o as PromiseRejectedResult).reason).toMatchObject({ name: 'WrongExpectedVersionError', streamId, expected: 1, actual: 2 });
    }
    expect((await store.readStream(streamId)).map((e) => e.streamVersion)).toEqual([1, 2]);

    const creators = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.append('race-single-new', [inc(i)], { expectedVersion: 'no_stream' })));
    expect(creators.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(await countEvents('race-single-new')).toBe(1);
  });

  it('commits concurrent single-event appends in shared transactions, each judged on its own', async () => {
    await store.append('group-existing', [inc(1)]);
    const results = await Promise.allSettled([
      ...Array.from({ length: 16 }, (_, i) => store.append(`group-${i}`, [inc(i)], { expectedVersion: 'no_stream' })),
      store.append('group-existing', [inc(2)], { expectedVersion: 7 }),
      store.append('group-existing', [inc(3)], { expectedVersion: 1 }),
      store.append('group-existing', [inc(4)], { expectedVersion: 2 }),
    ]);
    const fulfilled = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(fulfilled).toHaveLength(18);
    // Appends are judged in arrival order: this one came before the two that moved the stream on.
    expect(results[16]).toMatchObject({ status: 'rejected', reason: { name: 'WrongExpectedVersionError', expected: 7, actual: 1 } });
    expect((await store.readStream('group-existing')).map((e) => e.data)).toEqual([inc(1).data, inc(3).data, inc(4).data]);
    // 16 callers arrived while the first groups were in flight: fewer commits than appends.
    expect(new Set(fulfilled.map((r) => r.lastCursor.transactionId)).size).toBeLessThan(16);
    expect(brokenChainLinks(await store.readStream('group-existing'))).toEqual([]);
    for (let i = 0; i < 16; i++) expect((await store.readStream(`group-${i}`)).map((e) => e.data)).toEqual([inc(i).data]);
  });

  it('lets exactly one of 20 concurrent creators of a new stream through', async () => {
    const streamId = 'race-2';
    const batches = Array.from({ length: 20 }, () => batch(1));

    const release = await streamGate(streamId, 20);
    const appends = Promise.allSettled(batches.map((events) => store.append(streamId, events, { expectedVersion: 0 })));
    await release();
    const outcomes = await appends;

    const winnerIndex = outcomes.findIndex((o) => o.status === 'fulfilled');
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue;
      expect(outcome.reason).toBeInstanceOf(WrongExpectedVersionError);
      expect((outcome.reason as WrongExpectedVersionError).actual).toBe(1);
    }
    expect(ids(await store.readStream(streamId))).toEqual(ids(batches[winnerIndex]!));
  });
});

describe('expected version modes', () => {
  async function expectWrongVersion(streamId: string, expected: ExpectedVersion, actual: number): Promise<void> {
    const before = await countEvents();
    const error = await rejectionOf(store.append(streamId, batch(1), { expectedVersion: expected }));
    expect(error).toBeInstanceOf(WrongExpectedVersionError);
    expect(error).toMatchObject({ streamId, expected, actual });
    expect(await countEvents()).toBe(before);
  }

  it('a number must equal the stream version', async () => {
    const first = await store.append('mode-number', batch(2), { expectedVersion: 0 });
    expect(first.nextExpectedVersion).toBe(2);
    const second = await store.append('mode-number', batch(1), { expectedVersion: 2 });
    expect(second.nextExpectedVersion).toBe(3);

    await expectWrongVersion('mode-number', 2, 3);
    await expectWrongVersion('mode-number', 4, 3);
    await expectWrongVersion('mode-number-new', 1, 0);
    expect(await streamRowExists('mode-number-new')).toBe(false);
  });

  it("'no_stream' accepts only a stream without events", async () => {
    const result = await store.append('mode-no-stream', batch(1), { expectedVersion: 'no_stream' });
    expect(result.nextExpectedVersion).toBe(1);
    await expectWrongVersion('mode-no-stream', 'no_stream', 1);
  });

  it("'stream_exists' accepts only a stream with events, and leaves no trace otherwise", async () => {
    await expectWrongVersion('mode-exists', 'stream_exists', 0);
    expect(await streamRowExists('mode-exists')).toBe(false);
    expect(await store.readStream('mode-exists')).toEqual([]);

    await store.append('mode-exists', batch(1), { expectedVersion: 'no_stream' });
    const result = await store.append('mode-exists', batch(2), { expectedVersion: 'stream_exists' });
    expect(result.nextExpectedVersion).toBe(3);
  });

  it("'any' (also the default) never rejects because of the version", async () => {
    expect((await store.append('mode-any', batch(1), { expectedVersion: 'any' })).nextExpectedVersion).toBe(1);
    expect((await store.append('mode-any', batch(2), { expectedVersion: 'any' })).nextExpectedVersion).toBe(3);
    expect((await store.append('mode-any', batch(1))).nextExpectedVersion).toBe(4);
    expect((await store.readStream('mode-any')).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4]);
  });
});

describe('idempotency', () => {
  it('stores a batch appended twice once, and returns the stored positions the second time', async () => {
    const events = batch(3);
    const first = await store.append('idem-1', events, { expectedVersion: 'no_stream' });
    const rowsBefore = await countEvents();

    const second = await store.append('idem-1', events, { expectedVersion: 'no_stream' });

    expect(first.alreadyStored).toBe(false);
    expect(second.alreadyStored).toBe(true);
    expect(second.events).toEqual(first.events);
    expect(second.nextExpectedVersion).toBe(3);
    expect(second.lastCursor).toEqual(first.lastCursor);
    expect(await countEvents()).toBe(rowsBefore);
    expect(ids(await store.readStream('idem-1'))).toEqual(ids(events));
  });

  it('stores a batch appended 10 times concurrently once', async () => {
    const events = batch(3);
    const release = await streamGate('idem-2', 10);
    const appends = Promise.all(Array.from({ length: 10 }, () => store.append('idem-2', events, { expectedVersion: 'no_stream' })));
    await release();
    const results = await appends;

    expect(results.filter((r) => !r.alreadyStored)).toHaveLength(1);
    for (const result of results) expect(result.events).toEqual(results[0]!.events);
    expect(ids(await store.readStream('idem-2'))).toEqual(ids(events));
    expect(await countEvents('idem-2')).toBe(3);
  });

  it('treats a retry with a stale expected version after success as a no-op', async () => {
    const events = batch(2);
    const first = await store.append('idem-3', events, { expectedVersion: 'no_stream' });
    await store.append('idem-3', batch(1), { expectedVersion: 2 });
    const rowsBefore = await countEvents();

    const retry = await store.append('idem-3', events, { expectedVersion: 'no_stream' });

    expect(retry.alreadyStored).toBe(true);
    expect(retry.events).toEqual(first.events);
    expect(await countEvents()).toBe(rowsBefore);
  });

  it('refuses an event id stored in another stream, and a batch only partly stored', async () => {
    const events = batch(2);
    await store.append('idem-4', events);
    const rowsBefore = await countEvents();

    const elsewhere = await rejectionOf(store.append('idem-5', [events[1]!, ...batch(1)]));
    expect(elsewhere).toBeInstanceOf(EventIdConflictError);
    expect((elsewhere as EventIdConflictError).streamId).toBe('idem-5');
    expect((elsewhere as EventIdConflictError).eventIds).toContain(events[1]!.id);

    const partly = await rejectionOf(store.append('idem-4', [events[0]!, ...batch(1)]));
    expect(partly).toBeInstanceOf(EventIdConflictError);

    expect(await countEvents()).toBe(rowsBefore);
    expect(await streamRowExists('idem-5')).toBe(false);
  });

  it('lets only one of 10 streams racing for the same event id store it', async () => {
    const [event] = batch(1);
    // An uncommitted row holding the id makes every append wait on the unique index, then race.
    const release = await gate(10, (client) =>
      client.query(
        `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
         VALUES ('idem-gate', 1, $1, 'CounterIncremented', 2, '{}', '{}', now(), '')`,
        [event!.id],
      ),
    );
    const appends = Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.append(`idem-race-${i}`, [event!])));
    await release();
    const outcomes = await appends;

    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(EventIdConflictError);
    }
    const stored = await database.pool.query('SELECT stream_id FROM events WHERE event_id = $1', [event!.id]);
    expect(stored.rowCount).toBe(1);
  });
});

describe('bad input', () => {
  it('refuses a batch holding an event whose data fails its schema, writing none of it', async () => {
    const rowsBefore = await countEvents();
    const error = await rejectionOf(
      store.append('bad-1', [{ id: newId(), ...inc(1) }, { id: newId(), type: 'CounterIncremented', data: { by: 'two', note: 'n' } }]),
    );

    expect(error).toBeInstanceOf(InvalidEventError);
    const invalid = error as InvalidEventError;
    expect(invalid.eventType).toBe('CounterIncremented');
    expect(invalid.issues.map((i) => i.path)).toEqual(['data.by']);
    expect(invalid.message).toContain('CounterIncremented');
    expect(invalid.message).toContain('data.by');
    expect(await countEvents()).toBe(rowsBefore);
    expect(await streamRowExists('bad-1')).toBe(false);
  });

  it('refuses an unknown event type', async () => {
    const error = await rejectionOf(store.append('bad-2', [inc(1), { type: 'CounterExploded', data: {} }]));
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as InvalidEventError).eventType).toBe('CounterExploded');
    expect((error as InvalidEventError).message).toContain('unknown event type');
    expect(await countEvents('bad-2')).toBe(0);
  });

  it.each([
    ['an empty stream id', '', {}, [inc()], 'streamId'],
    ['a stream id with a space', 'bad stream', {}, [inc()], 'streamId'],
    ['a stream id starting with a dash', '-bad', {}, [inc()], 'streamId'],
    ['a negative expected version', 'bad-3', { expectedVersion: -1 }, [inc()], 'expectedVersion'],
    ['a fractional expected version', 'bad-3', { expectedVersion: 1.5 }, [inc()], 'expectedVersion'],
    ['an unknown expected version mode', 'bad-3', { expectedVersion: 'latest' }, [inc()], 'expectedVersion'],
    ['an event id that is not a ULID', 'bad-3', {}, [{ id: 'event-1', ...inc() }], 'events[0].id'],
    ['a lower-case ULID', 'bad-3', {}, [{ id: newId().toLowerCase(), ...inc() }], 'events[0].id'],
    ['an event id repeated within the batch', 'bad-3', {}, ((id) => [{ id, ...inc() }, { id, ...inc() }])(newId()), 'events[1].id'],
    ['unknown metadata', 'bad-3', {}, [{ ...inc(), metadata: { user: 'x' } }], 'events[0].metadata'],
    ['an empty batch', 'bad-3', {}, [], 'events'],
  ])('refuses %s with a ValidationError naming the field', async (_name, streamId, options, events, field) => {
    const rowsBefore = await countEvents();
    const error = await rejectionOf(store.append(streamId, events as NewEvent[], options as { expectedVersion?: ExpectedVersion }));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]!.path).toBe(field);
    expect((error as ValidationError).message).toContain(field);
    expect(await countEvents()).toBe(rowsBefore);
  });

  it('refuses bad read options with a ValidationError naming the field', async () => {
    for (const [promise, field] of [
      [store.readStream('bad stream'), 'streamId'],
      [store.readStream('read-x', { maxCount: 0 }), 'maxCount'],
      [store.readStream('read-x', { fromVersion: -1 }), 'fromVersion'],
      [store.readAll({ maxCount: 1.5 }), 'maxCount'],
    ] as const) {
      const error = await rejectionOf(promise);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues[0]!.path).toBe(field);
    }
  });
});

describe('reading', () => {
  it('reads a stream forwards, backwards, from a version and up to a count', async () => {
    await store.append('read-1', batch(3), { expectedVersion: 'no_stream' });
    await store.append('read-other', batch(2));
    await store.append('read-1', batch(2), { expectedVersion: 3 });
    const versions = (events: RecordedEvent[]) => events.map((e) => e.streamVersion);

    expect(versions(await store.readStream('read-1'))).toEqual([1, 2, 3, 4, 5]);
    expect(versions(await store.readStream('read-1', { fromVersion: 3 }))).toEqual([3, 4, 5]);
    expect(versions(await store.readStream('read-1', { maxCount: 2 }))).toEqual([1, 2]);
    expect(versions(await store.readStream('read-1', { fromVersion: 2, maxCount: 2 }))).toEqual([2, 3]);
    expect(versions(await store.readStream('read-1', { direction: 'backwards' }))).toEqual([5, 4, 3, 2, 1]);
    expect(versions(await store.readStream('read-1', { direction: 'backwards', fromVersion: 3 }))).toEqual([3, 2, 1]);
    expect(versions(await store.readStream('read-1', { direction: 'backwards', maxCount: 2 }))).toEqual([5, 4]);
    expect(versions(await store.readStream('read-1', { fromVersion: 6 }))).toEqual([]);
    expect(await store.readStream('read-missing')).toEqual([]);
  });

  it('returns what was appended, with the positions the append reported', async () => {
    const events: IdentifiedEvent[] = [
      { id: newId(), type: 'AccountOpened', data: { accountId: 'acc-1', currency: 'EUR', balance: '1234.5600' } },
      { id: newId(), ...inc(-7, 'café – "quoted"'), metadata: { correlationId: 'corr-1', actor: 'tester' } },
    ];
    const result = await store.append('read-2', events, { expectedVersion: 'no_stream' });
    const stored = await store.readStream('read-2');

    expect(stored.map((e) => ({ id: e.id, streamVersion: e.streamVersion, globalPosition: e.globalPosition }))).toEqual(result.events);
    expect(stored.map((e) => [e.streamId, e.type, e.schemaVersion, e.data, e.metadata, e.transactionId])).toEqual([
      ['read-2', 'AccountOpened', 1, events[0]!.data, {}, result.lastCursor.transactionId],
      ['read-2', 'CounterIncremented', 2, events[1]!.data, events[1]!.metadata, result.lastCursor.transactionId],
    ]);
    expect(stored[1]!.globalPosition).toBe(result.lastCursor.position);
    expect(Math.abs(stored[0]!.recordedAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('pages the log after a cursor, in append order, and head() is the last visible event', async () => {
    const first = await store.append('log-a', batch(2));
    const second = await store.append('log-b', batch(1));
    const third = await store.append('log-a', batch(2));
    await waitUntilVisible(third.lastCursor);

    const afterFirst = await store.readAll({ after: first.lastCursor });
    expect(ids(afterFirst)).toEqual([...ids(second.events), ...ids(third.events)]);

    // A cursor in the middle of a batch continues with the rest of that batch.
    const midBatch = { transactionId: first.lastCursor.transactionId, position: first.events[0]!.globalPosition };
    expect(ids(await store.readAll({ after: midBatch, maxCount: 2 }))).toEqual([first.events[1]!.id, second.events[0]!.id]);

    expect(await store.head()).toEqual(third.lastCursor);
    expect(await store.readAll({ after: third.lastCursor })).toEqual([]);
  });
});

describe('large batches (the COPY path)', () => {
  it('stores a 200-event batch with versions, positions, chain and awkward text intact', async () => {
    const events = Array.from({ length: 200 }, (_, i) => inc(i, i % 50 === 0 ? 'tab\there\nnew line \\ back\\slash "quoted" \u0001' : `n${i}`));
    const result = await store.append('copy-1', events, { expectedVersion: 'no_stream' });
    expect(result.nextExpectedVersion).toBe(200);
    const stored = await store.readStream('copy-1');
    expect(stored.map((e) => e.streamVersion)).toEqual(events.map((_, i) => i + 1));
    expect(stored.map((e) => e.data)).toEqual(events.map((e) => e.data));
    expect(stored.map((e) => ({ id: e.id, streamVersion: e.streamVersion, globalPosition: e.globalPosition }))).toEqual(result.events);
    expect(result.lastCursor).toEqual({ transactionId: stored[199]!.transactionId, position: stored[199]!.globalPosition });

    await store.append('copy-1', [inc(1)], { expectedVersion: 200 });
    await store.append('copy-1', batch(70), { expectedVersion: 201 });
    await store.append('copy-1', Array.from({ length: 70 }, (_, i) => inc(i)), { expectedVersion: 271 });
    const whole = await store.readStream('copy-1');
    expect(whole).toHaveLength(341);
    expect(brokenChainLinks(whole)).toEqual([]);
    const head = await database.pool.query('SELECT version, last_hash FROM streams WHERE stream_id = $1', ['copy-1']);
    expect(head.rows[0]).toEqual({ version: 341, last_hash: whole[340]!.hash });
  });

  it('refuses a large batch under a wrong expected version and writes none of it', async () => {
    await store.append('copy-2', Array.from({ length: 100 }, (_, i) => inc(i)));
    const error = await rejectionOf(store.append('copy-2', Array.from({ length: 100 }, (_, i) => inc(i)), { expectedVersion: 5 }));
    expect(error).toMatchObject({ name: 'WrongExpectedVersionError', expected: 5, actual: 100 });
    const missing = await rejectionOf(store.append('copy-2-missing', Array.from({ length: 100 }, (_, i) => inc(i)), { expectedVersion: 'stream_exists' }));
    expect(missing).toMatchObject({ name: 'WrongExpectedVersionError', actual: 0 });
    expect(await countEvents('copy-2')).toBe(100);
    expect(await countEvents('copy-2-missing')).toBe(0);
  });

  it('refuses a large batch holding an invalid event in a later chunk, writing none of it', async () => {
    for (const [at, bad] of [[10, { type: 'CounterIncremented', data: { by: 'two', note: 'n' } }], [180, { ...inc(), metadata: { user: 'x' } }]] as const) {
      const events: NewEvent[] = Array.from({ length: 200 }, (_, i) => inc(i));
      events[at] = bad as NewEvent;
      const error = await rejectionOf(store.append(`copy-bad-${at}`, events, { expectedVersion: 'no_stream' }));
      expect((error as Error).message).toContain(`events[${at}]`);
      expect(await countEvents(`copy-bad-${at}`)).toBe(0);
      expect(await streamRowExists(`copy-bad-${at}`)).toBe(false);
    }
    // The store's connection is usable again, and the stream can then be created.
    await store.append('copy-bad-10', Array.from({ length: 200 }, (_, i) => inc(i)), { expectedVersion: 'no_stream' });
    expect(await countEvents('copy-bad-10')).toBe(200);
  });

  it('reports an invalid event in a large batch before a wrong expected version', async () => {
    const events: NewEvent[] = Array.from({ length: 200 }, (_, i) => inc(i));
    events[150] = { type: 'CounterIncremented', data: { by: 1.5, note: 'n' } };
    const error = await rejectionOf(store.append('copy-bad-version', events, { expectedVersion: 7 }));
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as InvalidEventError).message).toContain('events[150]');
  });

  it('validates and stores a metadata object shared by the whole batch for every event', async () => {
    const metadata = { correlationId: 'c-1', actor: 'a' };
    await store.append('copy-meta', Array.from({ length: 100 }, (_, i) => ({ ...inc(i), metadata })));
    const stored = await store.readStream('copy-meta');
    expect(stored.every((e) => e.metadata.correlationId === 'c-1' && e.metadata.actor === 'a')).toBe(true);
    expect(brokenChainLinks(stored)).toEqual([]);
    const shared = { user: 'x' } as NewEvent['metadata'];
    const error = await rejectionOf(store.append('copy-meta-bad', Array.from({ length: 100 }, (_, i) => ({ ...inc(i), metadata: shared }))));
    expect((error as ValidationError).issues[0]!.path).toBe('events[0].metadata');
  });

  it('lets exactly one of 6 concurrent large batches creating the same stream through', async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, () => store.append('copy-3', Array.from({ length: 100 }, (_, i) => inc(i)), { expectedVersion: 'no_stream' })),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected').every((o) => (o as PromiseRejectedResult).reason instanceof WrongExpectedVersionError)).toBe(true);
    expect(await countEvents('copy-3')).toBe(100);
  });
});

describe('reading the log page by page', () => {
  it('gives the same pages as readAll, ends at the end of the log, and can be left early', async () => {
    for (let i = 0; i < 5; i++) await store.append(`pages-${i}`, batch(7));
    const head = await store.head();
    await waitUntilVisible(head!);
    const expected: string[][] = [];
    let after: LogCursor | null = null;
    for (let page = await store.readAll({ maxCount: 10 }); page.length > 0; page = await store.readAll({ after, maxCount: 10 })) {
      expected.push(ids(page));
      const tail = page[page.length - 1]!;
      after = { transactionId: tail.transactionId, position: tail.globalPosition };
    }
    const pages: string[][] = [];
    for await (const page of store.readAllPages({ maxCount: 10 })) pages.push(ids(page));
    expect(pages).toEqual(expected);
    expect(pages.flat()).toHaveLength(new Set(pages.flat()).size);

    let first: string[] = [];
    for await (const page of store.readAllPages({ maxCount: 3 })) {
      first = ids(page);
      break;
    }
    expect(first).toEqual(expected.flat().slice(0, 3));
  });
});

describe('per-stream order in the log', () => {
  it("keeps each stream's versions in log order when 16 writers append to the same streams", async () => {
    const streams = ['order-0', 'order-1', 'order-2'];
    const results: AppendResult[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, writer) => {
        for (let i = 0; i < 15; i++) results.push(await store.append(streams[(writer + i) % streams.length]!, [inc(i)]));
      }),
    );
    for (const result of results) await waitUntilVisible(result.lastCursor);
    const seen = new Map<string, number[]>();
    let after: LogCursor | null = null;
    for (let page = await store.readAll({ maxCount: 100 }); page.length > 0; page = await store.readAll({ after, maxCount: 100 })) {
      for (const event of page) if (streams.includes(event.streamId)) seen.set(event.streamId, [...(seen.get(event.streamId) ?? []), event.streamVersion]);
      const tail = page[page.length - 1]!;
      after = { transactionId: tail.transactionId, position: tail.globalPosition };
    }
    expect([...seen.values()].flat()).toHaveLength(240);
    for (const versions of seen.values()) expect(versions).toEqual(versions.map((_, i) => i + 1));
  });
});

describe('upcasting', () => {
  it('reads a stored v1 event as v2', async () => {
    const id = newId();
    await database.pool.query(`INSERT INTO streams (stream_id, version, last_hash) VALUES ('legacy-1', 1, 'h1')`);
    await database.pool.query(
      `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
       VALUES ('legacy-1', 1, $1, 'CounterIncremented', 1, '{"by": 3}', '{}', now(), 'h1')`,
      [id],
    );
    await store.append('legacy-1', [inc(4)], { expectedVersion: 1 });

    const [legacy, current] = await store.readStream('legacy-1');
    expect(legacy).toMatchObject({ id, schemaVersion: 2, data: { by: 3, note: 'upcast from v1' } });
    expect(current).toMatchObject({ schemaVersion: 2, data: { by: 4, note: 'n' } });

    const position = legacy!.globalPosition;
    await waitUntilVisible({ transactionId: legacy!.transactionId, position });
    const [fromLog] = await store.readAll({ after: { transactionId: legacy!.transactionId, position: position - 1 }, maxCount: 1 });
    expect(fromLog).toMatchObject({ id, schemaVersion: 2, data: { by: 3, note: 'upcast from v1' } });
  });
});

describe('hash chain', () => {
  it('hashes the canonical content: keys sorted at every level, so jsonb key order does not matter', () => {
    const content = { id: '01J0000000000000000000000A', streamId: 's-1', type: 'T', schemaVersion: 1, metadata: { source: 'x', actor: 'y' }, recordedAt: '2026-01-02T03:04:05.678Z' };
    const one = contentHash({ ...content, data: { b: [1, { d: 'é', c: null }], a: '1.50' } });
    expect(contentHash({ ...content, data: { a: '1.50', b: [1, { c: null, d: 'é' }] } })).toBe(one);
    expect(contentHash({ ...content, data: { a: '1.5', b: [1, { c: null, d: 'é' }] } })).not.toBe(one);
    expect(canonicalJson({ b: [1, { d: 'é', c: null }], a: '1.50', u: undefined })).toBe('{"a":"1.50","b":[1,{"c":null,"d":"é"}]}');
  });

  it('renders canonical JSON as the plain definition does, escapes and all', () => {
    /** The definition, spelled out plainly. */
    const reference = (value: unknown): string => {
      if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null';
      const toJson = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof toJson === 'function') return reference(toJson.call(value));
      const absent = (item: unknown) => item === undefined || typeof item === 'function';
      if (Array.isArray(value)) return `[${value.map((item: unknown) => (absent(item) ? 'null' : reference(item))).join(',')}]`;
      const entries = Object.keys(value).sort().filter((key) => !absent((value as Record<string, unknown>)[key]));
      return `{${entries.map((key) => `${JSON.stringify(key)}:${reference((value as Record<string, unknown>)[key])}`).join(',')}}`;
    };
    const samples: unknown[] = [
      null, true, 0, -0, 1.5e300, -12.75, 'plain', '', 'quote " back \\ slash', 'tab\tnew\nline\r\u0001\u001f', 'é ü ✓ \u2028 😀', '\ud800 lone', 'lone \udfff',
      { z: 1, a: { y: [3, { c: 'x', b: null }], b: undefined, f: () => 1 }, 'é': 1, E: 2, _: 3, '\u0000k': 'nul key', 'q"k': 'quoted key' },
      [undefined, () => 1, { b: 1, a: 2 }, [[]], {}],
      { when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), n: Number.NaN, inf: Number.POSITIVE_INFINITY },
      { '10': 'a', '9': 'b', b: 'c', a: 'd' },
    ];
    for (const sample of samples) expect(canonicalJson(sample)).toBe(reference(sample));
  });

  it('chains each event to the previous one with the same formula in SQL and JS', async () => {
    const appends: AppendResult[] = [];
    appends.push(await store.append('chain-1', [inc(1, 'first')], { expectedVersion: 'no_stream' }));
    appends.push(
      await store.append('chain-1', [
        { type: 'AccountOpened', data: { accountId: 'a', currency: 'CHF', balance: '-0.10' }, metadata: { source: 'test' } },
        inc(2, 'ünïcödé \n "escaped" \u2028'),
        inc(-3),
      ]),
    );
    appends.push(await store.append('chain-1', [inc(4)]));

    const events = await store.readStream('chain-1');
    expect(events).toHaveLength(5);
    expect(new Set(events.map((e) => e.hash)).size).toBe(5);
    expect(brokenChainLinks(events)).toEqual([]);
    const stream = await database.pool.query('SELECT last_hash FROM streams WHERE stream_id = $1', ['chain-1']);
    expect(stream.rows[0].last_hash).toBe(events[4]!.hash);
  });

  it('shows an altered event as a broken link', async () => {
    await store.append('chain-2', [inc(1), inc(2), inc(3)]);
    await database.pool.query(`UPDATE events SET data = jsonb_set(data, '{by}', '20') WHERE stream_id = 'chain-2' AND stream_version = 2`);
    expect(brokenChainLinks(await store.readStream('chain-2'))).toEqual([2]);
  });
});
