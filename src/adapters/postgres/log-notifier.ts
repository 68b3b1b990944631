import type pg from 'pg';
import type { Logger } from 'pino';
import { dedicatedClient } from './database.ts';

export const LOG_CHANNEL = 'ledger_events';

/**
 * Wakes log readers when events are appended (LISTEN/NOTIFY). A notification can be lost (the
 * listening connection drops, or a reader misses it between two reads), so every waiter also has
 * a timeout: a lost notification delays a reader by at most the poll interval, never loses events.
 */
export class LogNotifier {
  private client: pg.Client | null = null;
  private generation = 0;
  private waiters = new Set<() => void>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private starting = false;

  constructor(
    private readonly connectionString: string,
    private readonly logger?: Logger,
  ) {}

  async start(): Promise<void> {
    if (this.closed || this.client || this.starting) return;
    this.starting = true;
    try {
      await this.listen();
    } finally {
      this.starting = false;
    }
  }

  private async listen(): Promise<void> {
    const client = dedicatedClient(this.connectionString);
    client.on('notification', () => this.wake());
    client.on('error', (error) => this.reconnect(error));
    client.on('end', () => this.reconnect());
    try {
      await client.connect();
      await client.query(`LISTEN ${LOG_CHANNEL}`);
      if (this.closed) {
        // close() ran while we were connecting, before it could see this client.
        client.removeAllListeners('end');
        await client.end().catch(() => {});
        return;
      }
      this.client = client;
      // Anything appended while we were not listening is picked up by a wake-up now.
      this.wake();
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      this.reconnect(error);
    }
  }

  /** A token to pass to wait(): a wait returns at once if a notification came after it was taken. */
  mark(): number {
    return this.generation;
  }

  /** After close() a wait is a plain timeout: readers still running fall back to polling. */
  wait(timeoutMs: number, since: number, signal?: AbortSignal): Promise<void> {
    if (this.generation !== since || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    this.wake();
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
    }
  }

  private wake(): void {
    this.generation++;
    for (const waiter of [...this.waiters]) waiter();
  }

  private reconnect(error?: unknown): void {
    if (this.closed || this.reconnectTimer) return;
    if (error) this.logger?.warn({ err: error }, 'log notification listener lost its connection; polling until it is back');
    const lost = this.client;
    this.client = null;
    if (lost) {
      lost.removeAllListeners('end');
      lost.end().catch(() => {});
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.start();
    }, 1000);
  }
}

/**
 * Sends the append notification outside the appending transaction: a NOTIFY inside it would take
 * PostgreSQL's global notify lock at commit and serialise every concurrent append's commit.
 * Notifications are coalesced to at most one per interval (10 ms by default): under load one
 * NOTIFY wakes readers for many appends instead of doubling the queries appends cost.
 */
export class AppendSignal {
  private timer: NodeJS.Timeout | null = null;
  private lastSent = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly intervalMs = 10,
  ) {}

  appended(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastSent + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.lastSent = Date.now();
      this.pool.query({ name: 'ledger_notify', text: `SELECT pg_notify('${LOG_CHANNEL}', '')` }).catch(() => {
        // Readers fall back to polling; a failed notification costs latency, not events.
      });
    }, wait);
    // A pending notification must not keep a finished process alive.
    this.timer.unref();
  }
}
