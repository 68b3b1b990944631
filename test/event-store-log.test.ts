import type pg from 'pg';
import { monotonicFactory } from 'ulid';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { contentHash } from '../src/domain/events/hash-chain.ts';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { AppendSignal, LOG_CHANNEL, LogNotifier } from '../src/adapters/postgres/log-notifier.ts';
import type { LogCursor, NewEvent, ReadAllOptions, RecordedEvent } from '../src/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { inc, testCatalogue } from './support/events.ts';

// The global log's ordering and its readers. These tests hold transactions open on purpose; they
// live in one file so that none of them delays another's reads (readAll's horizon is cluster-wide).

const newId = monotonicFactory();

let database: TestDatabase;
let store: PostgresEventStore;
const notifiers: LogNotifier[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 20 });
  store = new PostgresEventStore(database.pool, { catalogue: testCatalogue });
});
afterAll(async () => {
  await Promise.all(notifiers.map((n) => n.close()));
  await database?.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ids = (events: readonly { id: string }[]) => events.map((e) => e.id);
const cursorOf = (event: RecordedEvent): LogCursor => ({ transactionId: event.transactionId, position: event.globalPosition });

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function batch(size: number): (NewEvent & { id: string })[] {
  return Array.from({ length: size }, (_, i) => ({ id: newId(), ...inc(i + 1) }));
}

/** Calls ledger_append inside the caller's own transaction, with the payload the store would send. */
async function appendIn(client: pg.PoolClient, streamId: string, count: number): Promise<{ id: string; position: number }[]> {
  const ids = Array.from({ length: count }, () => newId());
  const recordedAt = new Date().toISOString();
  const data = ids.map((_, i) => ({ by: i + 1, note: 'direct' }));
  const result = await client.query<{ o_event_id: string; o_global_position: number }>(
    'SELECT o_event_id, o_global_position FROM ledger_append($1, -1, false, $2, $3, $4, $5, $6, $7, $8)',
    [
      streamId,
      recordedAt,
      ids,
      ids.map(() => 'CounterIncremented'),
      ids.map(() => 2),
      data.map((d) => JSON.stringify(d)),
      ids.map(() => '{}'),
      ids.map((id, i) => contentHash({ id, streamId, type: 'CounterIncremented', schemaVersion: 2, data: data[i], metadata: {}, recordedAt })),
    ],
  );
  return result.rows.map((r) => ({ id: r.o_event_id, position: r.o_global_position }));
}

async function readWholeLog(pageSize: number): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readAll({ after: all.length ? cursorOf(all[all.length - 1]!) : null, maxCount: pageSize });
    if (page.length === 0) return all;
    expect(page.length).toBeLessThanOrEqual(pageSize);
    all.push(...page);
  }
}

function expectStrictlyAscending(events: RecordedEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1]!, events[i]!];
    const ordered = BigInt(a.transactionId) < BigInt(b.transactionId) || (a.transactionId === b.transactionId && a.globalPosition < b.globalPosition);
    expect(ordered, `event ${i} is out of (transactionId, globalPosition) order`).toBe(true);
  }
}

async function consume(events: AsyncIterable<RecordedEvent>, into: RecordedEvent[]): Promise<void> {
  for await (const event of events) into.push(event);
}

describe('global log order', () => {
  it('has no head and no events while empty', async () => {
    expect(await store.head()).toBeNull();
    expect(await store.readAll()).toEqual([]);
  });

  it('delivers every committed event exactly once to a polling reader while transactions commit out of order', async () => {
    interface Tx { events: { id: string; position: number }[]; committed: boolean; commitSeq: number }
    const transactions: Tx[] = [];
    let commitCounter = 0;

    async function transaction(streamId: string, count: number, holdMs: number, rollback: boolean): Promise<void> {
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        const tx: Tx = { events: await appendIn(client, streamId, count), committed: !rollback, commitSeq: 0 };
        transactions.push(tx);
        await sleep(holdMs);
        await client.query(rollback ? 'ROLLBACK' : 'COMMIT');
        tx.commitSeq = ++commitCounter;
      } finally {
        client.release();
      }
    }

    const seen: RecordedEvent[] = [];
    let after: LogCursor | null = null;
    let writersDone = false;
    let committedIds = new Set<string>();
    const reader = (async () => {
      let giveUpAt = Infinity;
      for (;;) {
        const page = await store.readAll({ after, maxCount: 50 });
        seen.push(...page);
        if (page.length) after = cursorOf(page[page.length - 1]!);
        if (writersDone) {
          const seenIds = new Set(ids(seen));
          if ([...committedIds].every((id) => seenIds.has(id))) return;
          giveUpAt = Math.min(giveUpAt, Date.now() + 10_000);
          if (Date.now() > giveUpAt) return;
        }
        if (!page.length) await sleep(2);
      }
    })();

    // The long transaction takes the lowest positions first, then stays open while the others commit.
    const long = transaction('skip-long', 3, 1000, false);
    await until(() => transactions.length === 1, 2000, 'the long transaction to append');
    let longDone = false;
    void long.then(() => (longDone = true));
    // Writers keep going until a few of their transactions have committed after the long one.
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let t = 0, afterLong = 0; afterLong < 3; t++) {
        if (longDone) afterLong++;
        await sleep(Math.random() * 20);
        await transaction(`skip-${w}`, 1 + Math.floor(Math.random() * 3), Math.random() * 60, (w + t) % 5 === 0);
      }
    });
    await Promise.all([long, ...writers]);
    committedIds = new Set(transactions.filter((t) => t.committed).flatMap((t) => ids(t.events)));
    writersDone = true;
    await reader;

    // The hazard really happened: later positions committed while the long transaction was open.
    const longTx = transactions[0]!;
    const overtakers = transactions.filter((t) => t.committed && t.commitSeq < longTx.commitSeq && t.events[0]!.position > longTx.events[2]!.position);
    expect(overtakers.length).toBeGreaterThan(10);
    expect(transactions.some((t) => t.committed && t.commitSeq > longTx.commitSeq)).toBe(true);
    const rolledBack = transactions.filter((t) => !t.committed).flatMap((t) => ids(t.events));
    expect(rolledBack.length).toBeGreaterThan(0);

    const seenIds = ids(seen);
    expect(new Set(seenIds).size).toBe(seenIds.length);
    expect(new Set(seenIds)).toEqual(committedIds);
    expect(seenIds.filter((id) => rolledBack.includes(id))).toEqual([]);
    expectStrictlyAscending(seen);
    expect(await store.readAll({ after })).toEqual([]);

    for (const pageSize of [1, 7, 100]) {
      expect(ids(await readWholeLog(pageSize)), `pages of ${pageSize}`).toEqual(seenIds);
    }
  });

  it('does not lose a late-committing transaction the way a reader paging by global_position alone does', async () => {
    const start = await store.head();
    const naiveSeen: string[] = [];
    let naiveLast = (await database.pool.query<{ max: number }>('SELECT max(global_position) AS max FROM events')).rows[0]!.max;
    const naiveRead = async () => {
      const rows = await database.pool.query<{ global_position: number; event_id: string }>(
        'SELECT global_position, event_id FROM events WHERE global_position > $1 ORDER BY global_position',
        [naiveLast],
      );
      for (const row of rows.rows) {
        naiveSeen.push(row.event_id);
        naiveLast = row.global_position;
      }
    };
    const first = await database.pool.connect();
    const second = await database.pool.connect();
    // `late` takes the lower position but commits after `early`.
    let late: { id: string; position: number } | undefined;
    let early: { id: string; position: number } | undefined;
    const bothIds = async () => ids(await store.readAll({ after: start })).filter((id) => id === late?.id || id === early?.id);
    try {
      await first.query('BEGIN');
      [late] = await appendIn(first, 'late-1', 1);
      await second.query('BEGIN');
      [early] = await appendIn(second, 'late-2', 1);
      await second.query('COMMIT');
      expect(late!.position).toBeLessThan(early!.position);

      await naiveRead();
      // readAll holds back the committed later event while the earlier transaction is open.
      expect(await bothIds()).toEqual([]);

      await first.query('COMMIT');
    } finally {
      first.release();
      second.release();
    }
    await naiveRead();

    expect(naiveSeen).toEqual([early!.id]);
    await until(async () => (await bothIds()).length === 2, 5000, 'readAll to show both events');
    expect(await bothIds()).toEqual([late!.id, early!.id]);
  });
});

describe('subscribe', () => {
  const running: { controller: AbortController; done: Promise<void> }[] = [];
  afterEach(async () => {
    // A failed test must not leave a subscriber reading from a pool that afterAll closes.
    for (const { controller, done } of running.splice(0)) {
      controller.abort();
      await done.catch(() => {});
    }
  });

  function subscribe(target: PostgresEventStore, after?: LogCursor | null) {
    const controller = new AbortController();
    const received: RecordedEvent[] = [];
    const done = consume(target.subscribe({ after, signal: controller.signal }), received);
    running.push({ controller, done });
    return {
      received,
      stop: async () => {
        controller.abort();
        await done;
      },
    };
  }

  async function liveStore(): Promise<PostgresEventStore> {
    const notifier = new LogNotifier(database.connectionString);
    notifiers.push(notifier);
    await notifier.start();
    // A poll interval far longer than the deadlines below: only a notification can meet them.
    return new PostgresEventStore(database.pool, {
      catalogue: testCatalogue,
      notifier,
      appendSignal: new AppendSignal(database.pool),
      pollIntervalMs: 10_000,
    });
  }

  it('catches up, then is woken by a notification for a new event', async () => {
    const live = await liveStore();
    const existing = await live.append('sub-1', batch(3));
    const { received, stop } = subscribe(live);

    await until(() => received.some((e) => e.id === existing.events[2]!.id), 5000, 'catch-up');
    // Let the subscriber settle into its wait, so that the next delivery needs a wake-up.
    await sleep(100);
    const appended = await live.append('sub-1', batch(1));
    await until(() => received.some((e) => e.id === appended.events[0]!.id), 2000, 'the live event');

    expect(ids(received.filter((e) => e.streamId === 'sub-1'))).toEqual([...ids(existing.events), ...ids(appended.events)]);
    expect(ids(received)).toEqual(ids(await readWholeLog(1000)));
    await stop();
  });

  it('is not stalled for the poll interval by an unrelated transaction open when it was notified', async () => {
    const live = await liveStore();
    const { received, stop } = subscribe(live, await live.head());
    await sleep(100);

    const blocker = await database.pool.connect();
    let appendedId: string;
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_current_xact_id()');
      appendedId = (await live.append('sub-2', batch(1))).events[0]!.id;
      await sleep(200);
      expect(received).toEqual([]);
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }

    await until(() => received.some((e) => e.id === appendedId), 2000, 'the event after the blocker ended');
    await stop();
  });

  it('falls back to polling without a notifier', async () => {
    const polling = new PostgresEventStore(database.pool, { catalogue: testCatalogue, pollIntervalMs: 50 });
    const existing = await polling.append('sub-3', batch(2));
    const { received, stop } = subscribe(polling, existing.lastCursor);

    await sleep(100);
    const appended = await polling.append('sub-3', batch(2));
    await until(() => received.length === 2, 2000, 'the polled events');
    expect(ids(received)).toEqual(ids(appended.events));
    await stop();
  });

  it('falls back to polling, without spinning, once its notifier is closed', async () => {
    // Counts reads only; every read still goes to the database.
    class CountingStore extends PostgresEventStore {
      reads = 0;
      override readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
        this.reads++;
        return super.readAll(options);
      }
    }
    const notifier = new LogNotifier(database.connectionString);
    await notifier.start();
    const counting = new CountingStore(database.pool, { catalogue: testCatalogue, notifier, pollIntervalMs: 100 });
    const { received, stop } = subscribe(counting, await counting.head());
    await sleep(50);

    await notifier.close();
    const readsAtClose = counting.reads;
    await sleep(300);
    expect(counting.reads - readsAtClose).toBeLessThanOrEqual(6);

    const appended = await counting.append('sub-4', batch(1));
    await until(() => received.some((e) => e.id === appended.events[0]!.id), 2000, 'the polled event');
    await stop();
  });

  it('ends promptly when its signal aborts', async () => {
    const live = await liveStore();
    const { stop } = subscribe(live, await live.head());
    await sleep(50);
    const aborted = Date.now();
    await stop();
    expect(Date.now() - aborted).toBeLessThan(500);
  });
});

describe('log notifier', () => {
  it('leaves no listening connection behind when closed while starting', async () => {
    const listening = async () => {
      const result = await database.pool.query<{ n: number }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN ${LOG_CHANNEL}'`,
      );
      return result.rows[0]!.n;
    };
    const before = await listening();
    const notifier = new LogNotifier(database.connectionString);
    const starting = notifier.start();
    await notifier.close();
    await starting;
    await until(async () => (await listening()) === before, 2000, 'no more listening connections than before');
  });
});
