import type { WireRecord } from '../domain/ingestion/source-records.ts';
import type { DataType, Platform } from '../domain/platforms/records.ts';
import type { CredentialStore } from '../ports/credential-store.ts';
import type { EventStore } from '../ports/event-store.ts';
import type { PlatformAdapter } from '../ports/platform-adapter.ts';

/** What the ledger knows of one record of a source before a pull. */
export interface KnownSourceRecord {
  revision: number;
  hash: string;
  removed: boolean;
  lastOperationId: string;
}

/** The source_records read model, as the sync engine reads it. */
export interface SourceState {
  /** Resolves once the read model holds every event of the stream (appended so far). */
  caughtUp(streamId: string): Promise<void>;
  /** Every record of a connection's data type, in one query. */
  known(connectionId: string, dataType: DataType): Promise<Map<string, KnownSourceRecord>>;
  /** The stored versions of the given records. */
  records(connectionId: string, dataType: DataType, recordIds: readonly string[]): Promise<Map<string, WireRecord>>;
  /** Where each account's incremental fetch resumes. */
  cursors(connectionId: string, dataType: DataType): Promise<Map<string, string>>;
}

/** Live progress of a sync, for a progress line. */
export interface SyncProgress {
  readonly dataType: DataType;
  /** Records (and record errors) pulled from the platform so far in this data type. */
  readonly pulled: number;
  /** Events appended to the source stream so far in this data type. */
  readonly appended: number;
}

export interface SyncServices {
  readonly store: EventStore;
  readonly credentials: CredentialStore;
  readonly sourceState: SourceState;
  /** The adapter that talks to a platform (the real host, or a sandbox). */
  adapterFor(platform: Platform): PlatformAdapter;
  /** Epoch milliseconds; Date.now unless a test says otherwise. */
  readonly now?: () => number;
}
