import { sql } from 'kysely';
import { requestSync } from '../../commands/sync-requests.ts';
import { runSync, type SyncOutcome } from '../../commands/sync-run.ts';
import type { SyncProgress } from '../../commands/sync-services.ts';
import { sourceStreamId } from '../../domain/ingestion/events.ts';
import type { DataType } from '../../domain/platforms/records.ts';
import { createSyncServices, type PlatformEndpoints, type SyncLedger } from './sync-services.ts';

export interface SyncCommandOptions {
  readonly connectionId: string;
  readonly dataTypes?: readonly DataType[];
  readonly force: boolean;
  readonly requestedBy: string;
  /** Where the live line goes (a terminal rewrites it in place). */
  readonly progress: NodeJS.WriteStream;
}

const REFRESH_MS = 250;

/**
 * `ledger sync`: requests a manual sync, runs it here, and keeps one line up to date with what was
 * pulled from the platform, appended to the log and projected into source_records; returns when
 * the read model holds the whole run.
 */
export async function syncNow(ledger: SyncLedger, endpoints: PlatformEndpoints, options: SyncCommandOptions): Promise<SyncOutcome> {
  const services = createSyncServices(ledger, endpoints);
  const { operationId } = await requestSync(services, {
    connectionId: options.connectionId,
    ...(options.dataTypes ? { dataTypes: options.dataTypes } : {}),
    force: options.force,
    trigger: 'manual',
    requestedBy: options.requestedBy,
  });
  const out = options.progress;
  const seen = new Map<DataType, SyncProgress>();
  let current: SyncProgress | null = null;
  let projected = 0;
  const lineOf = (progress: SyncProgress, count: number) =>
    `sync ${operationId} ${progress.dataType}: pulled ${progress.pulled.toLocaleString('en-US')}, appended ${progress.appended.toLocaleString('en-US')}, projected ${count.toLocaleString('en-US')}`;
  const draw = () => {
    if (current && out.isTTY) out.write(`\r\x1b[2K${lineOf(current, projected)}`);
  };
  // Projected: this run's records the read model holds so far, counted in the background.
  let counting: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (!current || counting) return;
    const dataType = current.dataType;
    counting = projectedCount(ledger, options.connectionId, dataType, operationId)
      .then((count) => {
        if (current?.dataType === dataType) projected = count;
        draw();
      })
      .catch(() => {})
      .finally(() => {
        counting = null;
      });
  }, REFRESH_MS);
  try {
    const outcome = await runSync(services, operationId, {
      onProgress: (progress) => {
        if (current && current.dataType !== progress.dataType) {
          if (out.isTTY) out.write('\n');
          projected = 0;
        }
        current = progress;
        seen.set(progress.dataType, progress);
        draw();
      },
    });
    clearInterval(timer);
    await counting;
    if (out.isTTY && current) out.write('\r\x1b[2K');
    // The final line of each data type, once the read model holds all of it.
    for (const progress of seen.values()) {
      await services.sourceState.caughtUp(sourceStreamId(options.connectionId, progress.dataType));
      out.write(`${lineOf(progress, await projectedCount(ledger, options.connectionId, progress.dataType, operationId))}\n`);
    }
    return outcome;
  } finally {
    clearInterval(timer);
  }
}

async function projectedCount(ledger: SyncLedger, connectionId: string, dataType: DataType, operationId: string): Promise<number> {
  const result = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM source_records
     WHERE connection_id = ${connectionId} AND data_type = ${dataType} AND last_operation_id = ${operationId}`.execute(ledger.database.db);
  return result.rows[0]?.n ?? 0;
}
