import { connectionDecider, connectionStreamId, type ConnectionCommand, type ConnectionState } from '../domain/connections/connection.ts';
import { DomainRuleViolation } from '../domain/decider.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import { deterministicEventId } from '../domain/ingestion/source-records.ts';
import type { DataType } from '../domain/platforms/records.ts';
import type { SyncError } from '../domain/platforms/sync-error.ts';
import type { SyncCounts } from '../domain/sync/events.ts';
import { syncOperationDecider, syncOperationStreamId, type SyncOperationCommand, type SyncOperationEvent, type SyncOperationState } from '../domain/sync/sync-operation.ts';
import type { EventStore } from '../ports/event-store.ts';
import { PlatformError, type CredentialHolder, type Credentials, type PlatformConnection } from '../ports/platform-adapter.ts';
import { handleCommand } from './command-handler.ts';
import { ingestDataType, type MutableCounts } from './sync-ingest.ts';
import { foldOperation, loadConnection } from './sync-requests.ts';
import type { SyncProgress, SyncServices } from './sync-services.ts';

export interface SyncOutcome {
  readonly operationId: string;
  readonly connectionId: string;
  readonly status: 'completed' | 'partial' | 'failed';
  readonly counts: SyncCounts;
  /** Why a failed operation failed. */
  readonly error?: SyncError;
  /** When the automatic retry of a failed operation is due; absent when none follows. */
  readonly retryAt?: string;
}

export interface RunSyncOptions {
  readonly onProgress?: (progress: SyncProgress) => void;
}

/** Errors that say the credential is unusable: the connection records them too. */
const CONNECTION_ERRORS = new Set<SyncError['code']>(['AUTH_REVOKED', 'AUTH_EXPIRED']);

/**
 * The operation's own stream. Every event gets an id derived from the operation and what it
 * says, so a second run of the same operation (after a crash) re-appends nothing.
 */
class OperationStream {
  constructor(
    private readonly store: EventStore,
    readonly operationId: string,
    public state: SyncOperationState,
    private readonly metadata: EventMetadata,
  ) {}

  async execute(command: SyncOperationCommand, ...idParts: string[]): Promise<SyncOperationEvent[]> {
    const events = syncOperationDecider.decide(command, this.state);
    if (events.length === 0) return events;
    await this.store.append(
      syncOperationStreamId(this.operationId),
      events.map((event) => ({ id: deterministicEventId(this.operationId, event.type, ...idParts), type: event.type, data: event.data, metadata: this.metadata })),
      { expectedVersion: 'any' },
    );
    for (const event of events) this.state = syncOperationDecider.evolve(this.state, event);
    return events;
  }
}

/** Watches the adapter's token refreshes, so that the log can say the connection's credentials were renewed. */
export class WatchedHolder implements CredentialHolder {
  latest: { previous: Credentials; next: Credentials; version: number } | null = null;
  constructor(private readonly inner: CredentialHolder) {}
  current(): Promise<Credentials> {
    return this.inner.current();
  }
  async replace(previous: Credentials, next: Credentials): Promise<number> {
    const version = await this.inner.replace(previous, next);
    this.latest = { previous: this.latest?.previous ?? previous, next, version };
    return version;
  }
}

/**
 * Carries out a requested sync operation: pulls each data type from the platform, appends what
 * changed to the connection's source streams, and records the run on the operation's stream
 * (started, progress, record errors, completed with counts, or failed with the retry rule's
 * due time). Running an operation again resumes it: what an earlier run stored is not appended
 * again, and a finished operation answers with its outcome.
 */
export async function runSync(services: SyncServices, operationId: string, options: RunSyncOptions = {}): Promise<SyncOutcome> {
  const { store } = services;
  const history = await store.readStream(syncOperationStreamId(operationId));
  const initial = foldOperation(history);
  if (initial.status === 'absent') throw new DomainRuleViolation('SYNC_NOT_FOUND', `sync ${operationId} does not exist`);
  const { request } = initial;
  const metadata: EventMetadata = { correlationId: operationId, actor: request.requestedBy, source: 'sync' };
  const operation = new OperationStream(store, operationId, initial, metadata);
  const finished = outcomeOf(operation.state, history);
  if (finished) return finished;

  const counts: MutableCounts = { processed: 0, inserted: 0, updated: 0, skipped: 0, failed: 0 };
  const connection = await loadConnection(store, request.connectionId);
  const refusal = refusalOf(connection, request.connectionId);
  if (refusal) return fail(services, operation, counts, refusal);

  const live = connection as Exclude<ConnectionState, { status: 'absent' }>;
  await operation.execute({ kind: 'StartSync', operationId });
  const adapter = services.adapterFor(live.platform);
  const holder = new WatchedHolder(services.credentials.holder(request.connectionId));
  const platformConnection = adapter.open(holder);
  const context = {
    store,
    sourceState: services.sourceState,
    connection: platformConnection,
    connectionId: request.connectionId,
    platform: live.platform,
    operationId,
    force: request.force,
    metadata,
    counts,
    recordProgress: (dataType: DataType, pulled: number) => operation.execute({ kind: 'RecordSyncProgress', operationId, dataType, pulled }, dataType, String(pulled)).then(() => {}),
    recordErrors: (dataType: DataType, errors: readonly SyncError[], batch: number) =>
      operation.execute({ kind: 'RecordSyncErrors', operationId, dataType, errors }, dataType, String(batch)).then(() => {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  try {
    const accountIds = live.platformAccountId ? [live.platformAccountId] : await accountsOf(platformConnection);
    for (const dataType of request.dataTypes) {
      // Asked for before the platform stopped offering it: nothing to pull.
      if (!adapter.capabilities.includes(dataType)) continue;
      const only = request.onlyRecords?.[dataType];
      await ingestDataType({ ...context, ...(request.onlyRecords ? { onlyRecords: new Set(only ?? []) } : {}) }, dataType, accountIds);
    }
  } catch (error) {
    if (!(error instanceof PlatformError)) throw error;
    await recordRenewal(services, live, holder, metadata);
    return fail(services, operation, counts, error.syncError);
  }
  await recordRenewal(services, live, holder, metadata);
  await operation.execute({ kind: 'CompleteSync', operationId, counts: { ...counts } });
  return outcomeOf(operation.state, [])!;
}

async function accountsOf(connection: PlatformConnection): Promise<string[]> {
  const ids: string[] = [];
  for await (const item of connection.accounts()) if (item.kind === 'record') ids.push(item.record.platformAccountId);
  return ids;
}

function refusalOf(connection: ConnectionState, connectionId: string): SyncError | null {
  const refuse = (code: SyncError['code'], message: string): SyncError => ({ recordId: connectionId, code, message, severity: 'critical', retryable: false });
  switch (connection.status) {
    case 'absent':
      return refuse('UNSUPPORTED', `connection ${connectionId} does not exist`);
    case 'disconnected':
      return refuse('UNSUPPORTED', `connection ${connectionId} is disconnected`);
    case 'pending':
      return refuse('AUTH_EXPIRED', `connection ${connectionId} has not been authorized`);
    case 'error':
      return refuse('AUTH_REVOKED', `connection ${connectionId} needs to be authorized again: ${connection.lastError?.message ?? 'its credential was refused'}`);
    case 'active':
      return null;
  }
}

async function fail(services: SyncServices, operation: OperationStream, counts: MutableCounts, error: SyncError): Promise<SyncOutcome> {
  const { operationId } = operation;
  const now = services.now?.() ?? Date.now();
  const events = await operation.execute({ kind: 'FailSync', operationId, counts: { ...counts }, error, now });
  if (CONNECTION_ERRORS.has(error.code) && operation.state.status !== 'absent') {
    const connectionId = operation.state.request.connectionId;
    const command: ConnectionCommand = { kind: 'RecordConnectionError', connectionId, error };
    await handleCommand(services.store, connectionDecider, connectionStreamId(connectionId), command, { metadata: { correlationId: operationId, source: 'sync' } }).catch((refused: unknown) => {
      // A connection that no longer exists or was disconnected has nothing to record.
      if (!(refused instanceof DomainRuleViolation)) throw refused;
    });
  }
  return outcomeOf(operation.state, events)!;
}

/** The adapter refreshed (or rotated) the connection's tokens during the run: the log records the new version. */
export async function recordRenewal(services: Pick<SyncServices, 'store'>, connection: Exclude<ConnectionState, { status: 'absent' }>, holder: WatchedHolder, metadata: EventMetadata): Promise<void> {
  if (!holder.latest) return;
  const { previous, next, version: credentialVersion } = holder.latest;
  await handleCommand(
    services.store,
    connectionDecider,
    connectionStreamId(connection.connectionId),
    {
      kind: 'RenewConnectionCredentials',
      connectionId: connection.connectionId,
      credentialVersion,
      accessTokenExpiresAt: new Date(next.accessTokenExpiresAt).toISOString(),
      grantedAt: new Date(next.grantedAt).toISOString(),
      rotated: next.grantedAt !== previous.grantedAt,
    },
    { metadata },
  ).catch((refused: unknown) => {
    if (!(refused instanceof DomainRuleViolation)) throw refused;
  });
}

/** The outcome of a finished operation, or null while it has not finished. */
function outcomeOf(state: SyncOperationState, history: readonly { type: string; data: unknown }[]): SyncOutcome | null {
  if (state.status === 'absent' || state.status === 'requested' || state.status === 'running') return null;
  const { operationId, connectionId } = state.request;
  const counts = state.counts ?? { processed: 0, inserted: 0, updated: 0, skipped: 0, failed: 0 };
  if (state.status !== 'failed') return { operationId, connectionId, status: state.status, counts };
  const failed = [...history].reverse().find((event) => event.type === 'SyncFailed')?.data as { error: SyncError; retryAt?: string } | undefined;
  return { operationId, connectionId, status: 'failed', counts, ...(failed ? { error: failed.error, ...(failed.retryAt ? { retryAt: failed.retryAt } : {}) } : {}) };
}
