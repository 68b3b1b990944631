import type { SyncDirection } from '../connections/events.ts';
import { DomainRuleViolation, type Decider, type DomainEvent } from '../decider.ts';
import type { EventData } from '../events/catalogue.ts';
import type { Platform } from '../platforms/records.ts';
import type { PushAcknowledged, PushInstructionData, PushRejected, PushRequested } from './events.ts';

export type PushEvent =
  | DomainEvent<'PushRequested', EventData<typeof PushRequested>>
  | DomainEvent<'PushAcknowledged', EventData<typeof PushAcknowledged>>
  | DomainEvent<'PushRejected', EventData<typeof PushRejected>>;

export type PushCommand =
  | {
      readonly kind: 'RequestPush';
      readonly pushId: string;
      readonly connectionId: string;
      readonly platform: Platform;
      /** The connection as it stands: only a live write-back or bidirectional connection pushes. */
      readonly connection: { readonly status: string; readonly direction: SyncDirection };
      readonly instruction: PushInstructionData;
      readonly requestedBy: string;
    }
  | {
      readonly kind: 'RecordPushReceipt';
      readonly pushId: string;
      readonly receipt:
        | { readonly status: 'accepted'; readonly platformReference: string; readonly acceptedAt: string }
        | { readonly status: 'rejected'; readonly code: string; readonly message: string; readonly retryable: boolean };
    };

export type PushState =
  | { readonly status: 'absent' }
  | { readonly status: 'requested' | 'acknowledged' | 'rejected'; readonly request: EventData<typeof PushRequested>; readonly retryable?: boolean };

export const pushStreamId = (pushId: string) => `push-${pushId}`;

export const pushDecider: Decider<PushState, PushCommand, PushEvent> = {
  initialState: () => ({ status: 'absent' }),

  decide(command, state) {
    switch (command.kind) {
      case 'RequestPush': {
        const { pushId, connectionId, platform, instruction, requestedBy } = command;
        if (state.status !== 'absent') {
          // The same request again (a client's retry) changes nothing; a different one under the same id is refused.
          if (state.request.connectionId === connectionId && JSON.stringify(state.request.instruction) === JSON.stringify(instruction)) return [];
          throw new DomainRuleViolation('PUSH_EXISTS', `push ${pushId} was already requested with another instruction`);
        }
        if (command.connection.status === 'absent') throw new DomainRuleViolation('CONNECTION_NOT_FOUND', `connection ${connectionId} does not exist`);
        if (command.connection.status !== 'active') {
          throw new DomainRuleViolation('CONNECTION_NOT_ACTIVE', `connection ${connectionId} is ${command.connection.status}; only an active connection pushes`);
        }
        if (command.connection.direction === 'read_only') {
          throw new DomainRuleViolation('PUSH_NOT_ALLOWED', `connection ${connectionId} is read-only; set its direction to write_back or bidirectional to push`);
        }
        return [{ type: 'PushRequested', data: { pushId, connectionId, platform, instruction, requestedBy } }];
      }
      case 'RecordPushReceipt': {
        if (state.status === 'absent') throw new DomainRuleViolation('PUSH_NOT_FOUND', `push ${command.pushId} does not exist`);
        const { receipt, pushId } = command;
        const outcome = receipt.status === 'accepted' ? 'acknowledged' : 'rejected';
        // A retryable rejection may be followed by the platform's answer to the same push sent again.
        if (state.status === outcome || (state.status === 'acknowledged' && receipt.status === 'rejected')) return [];
        if (state.status === 'rejected' && !state.retryable) return [];
        return receipt.status === 'accepted'
          ? [{ type: 'PushAcknowledged', data: { pushId, platformReference: receipt.platformReference, acceptedAt: receipt.acceptedAt } }]
          : [{ type: 'PushRejected', data: { pushId, code: receipt.code, message: receipt.message, retryable: receipt.retryable } }];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'PushRequested':
        return { status: 'requested', request: event.data };
      case 'PushAcknowledged':
        return state.status === 'absent' ? state : { status: 'acknowledged', request: state.request };
      case 'PushRejected':
        return state.status === 'absent' ? state : { status: 'rejected', request: state.request, retryable: event.data.retryable };
    }
  },
};
