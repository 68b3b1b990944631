import { Dec } from '../domain/money/decimal.ts';
import { DomainRuleViolation } from '../domain/decider.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import type { PushInstructionData } from '../domain/push/events.ts';
import { pushDecider, pushStreamId, type PushEvent, type PushState } from '../domain/push/push.ts';
import { PlatformError, type PushInstruction } from '../ports/platform-adapter.ts';
import { handleCommand } from './command-handler.ts';
import { loadConnection } from './sync-requests.ts';
import { recordRenewal, WatchedHolder } from './sync-run.ts';
import type { SyncServices } from './sync-services.ts';

export interface PushOutcome {
  readonly pushId: string;
  readonly status: 'acknowledged' | 'rejected';
  readonly platformReference?: string;
  readonly code?: string;
  readonly message?: string;
}

/**
 * Write-back: records PushRequested (refused unless the connection is live and allows pushing),
 * sends the instruction with the push id as its client reference (so the platform applies it once
 * however often it is sent), and records the platform's answer. Asking again with the same id
 * answers the recorded outcome, or sends again when the platform could not be reached before.
 */
export async function pushInstruction(
  services: Pick<SyncServices, 'store' | 'credentials' | 'adapterFor'>,
  input: { pushId: string; connectionId: string; instruction: PushInstructionData; requestedBy: string },
  metadata: EventMetadata = {},
): Promise<PushOutcome> {
  const connection = await loadConnection(services.store, input.connectionId);
  if (connection.status === 'absent') throw new DomainRuleViolation('CONNECTION_NOT_FOUND', `connection ${input.connectionId} does not exist`);
  const options = { metadata: { correlationId: input.pushId, actor: input.requestedBy, source: 'push', ...metadata } };
  const streamId = pushStreamId(input.pushId);
  await handleCommand(
    services.store,
    pushDecider,
    streamId,
    {
      kind: 'RequestPush',
      pushId: input.pushId,
      connectionId: input.connectionId,
      platform: connection.platform,
      connection: { status: connection.status, direction: connection.settings.direction },
      instruction: input.instruction,
      requestedBy: input.requestedBy,
    },
    options,
  );
  const state = await loadPush(services.store, input.pushId);
  if (state.status === 'acknowledged' || (state.status === 'rejected' && !state.retryable)) return outcomeOf(services, input.pushId);

  const holder = new WatchedHolder(services.credentials.holder(input.connectionId));
  let receipt;
  try {
    const answer = await services.adapterFor(connection.platform).open(holder).push(toPortInstruction(input.pushId, input.instruction));
    receipt = answer.status === 'accepted' ? answer : { ...answer, retryable: false };
  } catch (error) {
    if (!(error instanceof PlatformError)) throw error;
    receipt = { status: 'rejected' as const, code: error.syncError.code, message: error.syncError.message, retryable: error.syncError.retryable };
  } finally {
    await recordRenewal(services, connection, holder, options.metadata);
  }
  await handleCommand(services.store, pushDecider, streamId, { kind: 'RecordPushReceipt', pushId: input.pushId, receipt }, options);
  return outcomeOf(services, input.pushId);
}

async function loadPush(store: SyncServices['store'], pushId: string): Promise<PushState> {
  const events = await store.readStream(pushStreamId(pushId));
  return events.reduce((state, event) => pushDecider.evolve(state, { type: event.type, data: event.data } as PushEvent), pushDecider.initialState());
}

async function outcomeOf(services: Pick<SyncServices, 'store'>, pushId: string): Promise<PushOutcome> {
  const events = await services.store.readStream(pushStreamId(pushId));
  const last = events.at(-1)!;
  if (last.type === 'PushAcknowledged') return { pushId, status: 'acknowledged', platformReference: (last.data as { platformReference: string }).platformReference };
  const rejected = last.data as { code: string; message: string };
  return { pushId, status: 'rejected', code: rejected.code, message: rejected.message };
}

function toPortInstruction(clientRef: string, instruction: PushInstructionData): PushInstruction {
  switch (instruction.kind) {
    case 'trade': {
      const { limitPrice, quantity, ...rest } = instruction;
      return { ...rest, clientRef, quantity: new Dec(quantity), ...(limitPrice !== undefined ? { limitPrice: new Dec(limitPrice) } : {}) };
    }
    case 'rebalance':
      return { ...instruction, clientRef, targets: instruction.targets.map((target) => ({ security: target.security, weight: new Dec(target.weight) })) };
    case 'manual_override':
      return { ...instruction, clientRef, value: new Dec(instruction.value) };
  }
}
