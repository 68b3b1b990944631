import type { Kysely } from 'kysely';
import type { SourceState, SyncServices } from '../../commands/sync-services.ts';
import type { DataType, Platform } from '../../domain/platforms/records.ts';
import type { CredentialStore } from '../../ports/credential-store.ts';
import type { EventStore } from '../../ports/event-store.ts';
import type { PlatformAdapter } from '../../ports/platform-adapter.ts';
import { loadCursors, loadKnownRecords, loadRecords, sourceRecordsProjector } from '../../projections/source-records.ts';
import { platformModule } from '../platforms/registry.ts';
import type { ProjectionEngine } from '../postgres/projection-engine.ts';

/**
 * The source_records read model on PostgreSQL. Waiting for it to catch up drives the projector
 * itself when it lags (safe beside a running worker: the engine's apply lock and checkpoint check
 * keep a batch from being applied twice), so a sync never waits on a worker that is not running.
 */
export class PostgresSourceState implements SourceState {
  private ready: Promise<void> | null = null;

  constructor(
    private readonly db: Kysely<unknown>,
    private readonly store: EventStore,
    private readonly engine: ProjectionEngine,
  ) {}

  async caughtUp(streamId: string): Promise<void> {
    await (this.ready ??= this.ensure());
    const [last] = await this.store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
    if (!last) return;
    await this.engine.catchUpTo(sourceRecordsProjector, { transactionId: last.transactionId, position: last.globalPosition });
  }

  known(connectionId: string, dataType: DataType) {
    return loadKnownRecords(this.db, connectionId, dataType);
  }

  records(connectionId: string, dataType: DataType, recordIds: readonly string[]) {
    return loadRecords(this.db, connectionId, dataType, recordIds);
  }

  cursors(connectionId: string, dataType: DataType) {
    return loadCursors(this.db, connectionId, dataType);
  }

  private async ensure(): Promise<void> {
    if ((await this.engine.ensure(sourceRecordsProjector)) === 'rebuild') await this.engine.rebuild(sourceRecordsProjector);
  }
}

/** Where each platform is reached: its base URL and any adapter settings (a sandbox's, or the real host's). */
export type PlatformEndpoints = Partial<Record<Platform, { readonly baseUrl: string; readonly [setting: string]: unknown }>>;

/** One adapter per platform, made on first use from the registry's module. */
export function adapterLookup(endpoints: PlatformEndpoints): (platform: Platform) => PlatformAdapter {
  const adapters = new Map<Platform, PlatformAdapter>();
  return (platform) => {
    let adapter = adapters.get(platform);
    if (!adapter) {
      const endpoint = endpoints[platform];
      if (!endpoint) throw new Error(`no endpoint is configured for ${platform}`);
      adapter = platformModule(platform).createAdapter(endpoint);
      adapters.set(platform, adapter);
    }
    return adapter;
  };
}

export interface SyncLedger {
  readonly database: { readonly db: Kysely<unknown> };
  readonly store: EventStore;
  readonly engine: ProjectionEngine;
  readonly credentials: CredentialStore;
}

export function createSyncServices(ledger: SyncLedger, endpoints: PlatformEndpoints, options: { now?: () => number } = {}): SyncServices {
  return {
    store: ledger.store,
    credentials: ledger.credentials,
    sourceState: new PostgresSourceState(ledger.database.db, ledger.store, ledger.engine),
    adapterFor: adapterLookup(endpoints),
    ...(options.now ? { now: options.now } : {}),
  };
}
