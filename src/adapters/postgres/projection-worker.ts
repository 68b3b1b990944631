import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Projector } from '../../projections/projector.ts';
import { dedicatedClient } from './database.ts';
import type { LogNotifier } from './log-notifier.ts';
import { LEADER_LOCK, type ProjectionEngine } from './projection-engine.ts';

export interface WorkerOptions {
  /** How long an idle projector waits for an append notification before it polls. */
  readonly pollIntervalMs?: number;
  /** How often a standby worker tries to take over leadership. */
  readonly standbyRetryMs?: number;
}

export interface ProjectorRunState {
  readonly projector: string;
  readonly leader: boolean;
  readonly lastError: string | null;
}

/**
 * Runs every projector continuously. Each projector has one leader across all worker processes:
 * the holder of a session advisory lock on a connection of its own. When the leader dies, its
 * connection closes, the lock is released and a standby takes over. The engine's apply lock and
 * checkpoint check keep a batch from being applied twice even if two leaders ever overlapped.
 */
export class ProjectionWorker {
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly states = new Map<string, { leader: boolean; lastError: string | null }>();

  constructor(
    private readonly engine: ProjectionEngine,
    private readonly connectionString: string,
    private readonly notifier: LogNotifier,
    private readonly logger: Logger,
    private readonly options: WorkerOptions = {},
  ) {}

  start(): void {
    for (const projector of this.engine.projectors) {
      this.states.set(projector.name, { leader: false, lastError: null });
      this.loops.push(this.run(projector));
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  state(): ProjectorRunState[] {
    return [...this.states].map(([projector, state]) => ({ projector, ...state }));
  }

  private async run(projector: Projector): Promise<void> {
    const signal = this.abort.signal;
    const state = this.states.get(projector.name)!;
    const log = this.logger.child({ projector: projector.name });
    let backoffMs = 1000;
    while (!signal.aborted) {
      const leadership = await this.lead(projector, signal).catch((error: unknown) => {
        log.warn({ err: error }, 'could not reach the database to take leadership');
        return null;
      });
      if (!leadership) {
        await pause(this.options.standbyRetryMs ?? 2000, signal);
        continue;
      }
      state.leader = true;
      log.info('projector leadership taken');
      try {
        if ((await this.engine.ensure(projector)) === 'rebuild') {
          log.info('projector version or tables changed: rebuilding');
          await this.engine.rebuild(projector);
        }
        while (!signal.aborted && !leadership.lost) {
          const mark = this.notifier.mark();
          const applied = await this.engine.applyNextBatch(projector);
          if (applied === 0) await this.notifier.wait(this.options.pollIntervalMs ?? 1000, mark, signal);
          state.lastError = null;
          backoffMs = 1000;
        }
      } catch (error) {
        state.lastError = error instanceof Error ? error.message : String(error);
        log.error({ err: error }, 'projector failed; retrying');
        await pause(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      } finally {
        state.leader = false;
        await leadership.release();
      }
    }
  }

  /** Resolves with the leadership once this process holds the projector's lock, or null if aborted. */
  private async lead(projector: Projector, signal: AbortSignal): Promise<Leadership | null> {
    const client = dedicatedClient(this.connectionString);
    const leadership: Leadership = {
      lost: false,
      release: async () => {
        await client.end().catch(() => {});
      },
    };
    client.on('error', () => {
      leadership.lost = true;
    });
    try {
      await client.connect();
      while (!signal.aborted && !leadership.lost) {
        if (await tryLock(client, projector.name)) return leadership;
        await pause(this.options.standbyRetryMs ?? 2000, signal);
      }
    } catch (error) {
      await leadership.release();
      throw error;
    }
    await leadership.release();
    return null;
  }
}

interface Leadership {
  lost: boolean;
  release(): Promise<void>;
}

async function tryLock(client: pg.Client, name: string): Promise<boolean> {
  const result = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [LEADER_LOCK, name]);
  return result.rows[0]?.locked === true;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {});
}
