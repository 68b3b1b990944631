import { describe, expect, it } from 'vitest';
import type { PushInstructionData } from '../../src/domain/push/events.ts';
import { pushDecider, type PushCommand } from '../../src/domain/push/push.ts';
import { runCommands, violationCode } from '../support/decider.ts';

const trade: PushInstructionData = { kind: 'trade', platformAccountId: 'A-1', side: 'BUY', security: { ticker: 'AAPL' }, quantity: '10', orderType: 'MARKET' };
const request = (direction: 'read_only' | 'write_back' | 'bidirectional', status = 'active', instruction = trade): PushCommand => ({
  kind: 'RequestPush',
  pushId: 'p-1',
  connectionId: 'c-1',
  platform: 'addepar',
  connection: { status, direction },
  instruction,
  requestedBy: 'alice',
});
const accepted: PushCommand = { kind: 'RecordPushReceipt', pushId: 'p-1', receipt: { status: 'accepted', platformReference: 'ord-9', acceptedAt: '2026-11-22T06:00:00.000Z' } };
const unreachable: PushCommand = { kind: 'RecordPushReceipt', pushId: 'p-1', receipt: { status: 'rejected', code: 'PLATFORM_UNAVAILABLE', message: 'down', retryable: true } };
const refused: PushCommand = { kind: 'RecordPushReceipt', pushId: 'p-1', receipt: { status: 'rejected', code: 'INVALID_IDENTIFIER', message: 'bad isin', retryable: false } };

describe('push decider', () => {
  it('pushes only through a live connection that allows writing back', () => {
    expect(violationCode(() => pushDecider.decide(request('read_only'), pushDecider.initialState()))).toBe('PUSH_NOT_ALLOWED');
    expect(violationCode(() => pushDecider.decide(request('write_back', 'error'), pushDecider.initialState()))).toBe('CONNECTION_NOT_ACTIVE');
    expect(violationCode(() => pushDecider.decide(request('write_back', 'absent'), pushDecider.initialState()))).toBe('CONNECTION_NOT_FOUND');
    for (const direction of ['write_back', 'bidirectional'] as const) {
      expect(pushDecider.decide(request(direction), pushDecider.initialState()).map((e) => e.type)).toEqual(['PushRequested']);
    }
  });

  it('takes a repeated request as a no-op and refuses another instruction under the same id', () => {
    const { state } = runCommands(pushDecider, [request('write_back')]);
    expect(pushDecider.decide(request('write_back'), state)).toEqual([]);
    expect(violationCode(() => pushDecider.decide(request('write_back', 'active', { ...trade, quantity: '11' }), state))).toBe('PUSH_EXISTS');
  });

  it('records the answer once; a retryable failure may be followed by the answer to the push sent again', () => {
    expect(runCommands(pushDecider, [request('write_back'), accepted, accepted, refused]).events.map((e) => e.type)).toEqual(['PushRequested', 'PushAcknowledged']);
    const retried = runCommands(pushDecider, [request('write_back'), unreachable, unreachable, accepted]);
    expect(retried.events.map((e) => e.type)).toEqual(['PushRequested', 'PushRejected', 'PushAcknowledged']);
    expect(retried.state.status).toBe('acknowledged');
    const final = runCommands(pushDecider, [request('write_back'), refused, accepted]);
    expect(final.events.map((e) => e.type)).toEqual(['PushRequested', 'PushRejected']);
    expect(violationCode(() => pushDecider.decide(accepted, pushDecider.initialState()))).toBe('PUSH_NOT_FOUND');
  });
});
