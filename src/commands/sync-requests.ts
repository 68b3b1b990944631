import { ulid } from 'ulid';
import { connectionDecider, connectionStreamId, type ConnectionEvent, type ConnectionState } from '../domain/connections/connection.ts';
import { DomainRuleViolation } from '../domain/decider.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import type { DataType } from '../domain/platforms/records.ts';
import type { SyncTriggerSchema } from '../domain/sync/events.ts';
import { retryRequest, syncOperationDecider, syncOperationStreamId, type SyncOperationEvent, type SyncOperationState } from '../domain/sync/sync-operation.ts';
import type { EventStore, LogCursor } from '../ports/event-store.ts';
import { handleCommand } from './command-handler.ts';
import type { SyncServices } from './sync-services.ts';
import type { z } from 'zod';

export interface SyncRequest {
  readonly connectionId: string;
  /** Absent: every data type the platform offers. */
  readonly dataTypes?: readonly DataType[];
  /** Pull everything again instead of only what changed since the last sync. */
  readonly force?: boolean;
  readonly trigger: z.infer<typeof SyncTriggerSchema>;
  readonly requestedBy: string;
  /** A caller-chosen id makes the request idempotent (a scheduler's job id, say). */
  readonly operationId?: string;
}

/** Creates a sync operation (SyncRequested on its own stream); runSync carries it out. `lastCursor`: where it sits in the log (null when it existed already). */
export async function requestSync(
  services: Pick<SyncServices, 'store' | 'adapterFor'>,
  request: SyncRequest,
  metadata?: EventMetadata,
): Promise<{ operationId: string; lastCursor: LogCursor | null }> {
  const connection = await loadConnection(services.store, request.connectionId);
  if (connection.status === 'absent') throw new DomainRuleViolation('CONNECTION_NOT_FOUND', `connection ${request.connectionId} does not exist`);
  if (connection.status === 'disconnected') throw new DomainRuleViolation('CONNECTION_DISCONNECTED', `connection ${request.connectionId} is disconnected`);
  const offered = services.adapterFor(connection.platform).capabilities;
  const dataTypes = request.dataTypes ?? offered;
  const unsupported = dataTypes.filter((type) => !offered.includes(type));
  if (unsupported.length > 0) {
    throw new DomainRuleViolation('DATA_TYPE_NOT_SUPPORTED', `${connection.platform} does not offer ${unsupported.join(', ')} (it offers ${offered.join(', ')})`);
  }
  const operationId = request.operationId ?? ulid();
  const result = await handleCommand(
    services.store,
    syncOperationDecider,
    syncOperationStreamId(operationId),
    {
      kind: 'RequestSync',
      operationId,
      connectionId: request.connectionId,
      dataTypes: [...new Set(dataTypes)],
      force: request.force ?? false,
      trigger: request.trigger,
      requestedBy: request.requestedBy,
      attempt: 0,
    },
    { metadata: { correlationId: operationId, actor: request.requestedBy, ...metadata } },
  );
  return { operationId, lastCursor: result.lastCursor };
}

/** The id of the operation that retries another: derived, so that asking twice gives one retry. */
export const retryOperationId = (operationId: string, attempt: number) => `${operationId}.r${attempt}`;

/**
 * Retries a failed (or partial) operation as a new one: of everything, or of the failed records
 * only. Records SyncRetried on the old operation and SyncRequested on the new.
 */
export async function retrySync(
  services: Pick<SyncServices, 'store'>,
  input: { operationId: string; failedOnly: boolean; requestedBy: string },
  extraMetadata?: EventMetadata,
): Promise<{ operationId: string; lastCursor: LogCursor | null }> {
  const state = await loadOperation(services.store, input.operationId);
  if (state.status === 'absent') throw new DomainRuleViolation('SYNC_NOT_FOUND', `sync ${input.operationId} does not exist`);
  const next = retryOperationId(input.operationId, state.request.attempt + 1);
  const metadata = { correlationId: state.request.operationId, causationId: input.operationId, actor: input.requestedBy, ...extraMetadata };
  const retried = await handleCommand(services.store, syncOperationDecider, syncOperationStreamId(input.operationId), {
    kind: 'RetrySync',
    operationId: input.operationId,
    retryOperationId: next,
    failedOnly: input.failedOnly,
  }, { metadata });
  const requested = await handleCommand(services.store, syncOperationDecider, syncOperationStreamId(next), retryRequest(state, next, input.failedOnly, input.requestedBy), { metadata });
  return { operationId: next, lastCursor: requested.lastCursor ?? retried.lastCursor };
}

export async function loadConnection(store: EventStore, connectionId: string): Promise<ConnectionState> {
  const events = await store.readStream(connectionStreamId(connectionId));
  return events.reduce((state, event) => connectionDecider.evolve(state, { type: event.type, data: event.data } as ConnectionEvent), connectionDecider.initialState());
}

export async function loadOperation(store: EventStore, operationId: string): Promise<SyncOperationState> {
  const events = await store.readStream(syncOperationStreamId(operationId));
  return foldOperation(events);
}

export function foldOperation(events: readonly { type: string; data: unknown }[]): SyncOperationState {
  return events.reduce((state, event) => syncOperationDecider.evolve(state, { type: event.type, data: event.data } as SyncOperationEvent), syncOperationDecider.initialState());
}
