import { describe, expect, it } from 'vitest';
import { connectionDecider, type ConnectionCommand, type ConnectionState } from '../../src/domain/connections/connection.ts';
import { runCommands, violationCode } from '../support/decider.ts';

const run = (commands: ConnectionCommand[], from?: ConnectionState) => runCommands(connectionDecider, commands, from);
const violation = (commands: ConnectionCommand[]) => violationCode(() => run(commands));

const initiate: ConnectionCommand = { kind: 'InitiateConnection', connectionId: 'c1', ownerId: 'u1', platform: 'orion' };
const authorize: ConnectionCommand = {
  kind: 'AuthorizeConnection',
  connectionId: 'c1',
  credentialVersion: 1,
  accessTokenExpiresAt: '2026-11-22T12:00:00.000Z',
  grantedAt: '2026-11-22T02:00:00.000Z',
};

describe('connection decider', () => {
  it('initiates with read-only defaults, becomes active once authorized, and repeats are no-ops', () => {
    const { events, state } = run([initiate, initiate, authorize, authorize]);
    expect(events.map((e) => e.type)).toEqual(['ConnectionInitiated', 'ConnectionAuthorized']);
    expect(events[0]!.data).toMatchObject({ settings: { displayName: 'Orion', direction: 'read_only', autoSync: true, dataFilters: {} } });
    expect(state).toMatchObject({ status: 'active', credentialVersion: 1 });
  });

  it('records only the settings that change', () => {
    const { events, state } = run([
      initiate,
      { kind: 'ChangeConnectionSettings', connectionId: 'c1', changes: { direction: 'read_only', conflictStrategy: 'MANUAL_REVIEW', dataFilters: { minimumValue: '100.00' } } },
      { kind: 'ChangeConnectionSettings', connectionId: 'c1', changes: { conflictStrategy: 'MANUAL_REVIEW' } },
    ]);
    expect(events.slice(1).map((e) => e.data)).toEqual([{ connectionId: 'c1', changes: { conflictStrategy: 'MANUAL_REVIEW', dataFilters: { minimumValue: '100.00' } } }]);
    expect(state.status !== 'absent' && state.settings.conflictStrategy).toBe('MANUAL_REVIEW');
  });

  it('renews credentials forward only, and a revoked credential puts the connection in error until re-authorized', () => {
    const renew = (credentialVersion: number): ConnectionCommand => ({ ...authorize, kind: 'RenewConnectionCredentials', credentialVersion, rotated: false });
    const revoked: ConnectionCommand = {
      kind: 'RecordConnectionError',
      connectionId: 'c1',
      error: { recordId: 'token', code: 'AUTH_REVOKED', message: 'the platform revoked the token', severity: 'critical', retryable: false },
    };
    const { events, state } = run([initiate, authorize, renew(2), renew(2), renew(1), revoked]);
    expect(events.map((e) => e.type)).toEqual(['ConnectionInitiated', 'ConnectionAuthorized', 'ConnectionCredentialsRenewed', 'ConnectionErrorRecorded']);
    expect(state.status).toBe('error');
    expect(run([{ ...authorize, credentialVersion: 3 }], state).state.status).toBe('active');
    expect(violation([initiate, renew(1)])).toBe('CONNECTION_NOT_AUTHORIZED');
  });

  it('disconnects once and refuses later changes; a different owner cannot take the id', () => {
    const disconnect: ConnectionCommand = { kind: 'DisconnectConnection', connectionId: 'c1', keepData: true, disconnectedBy: 'u1' };
    expect(run([initiate, authorize, disconnect, disconnect]).events.map((e) => e.type)).toEqual(['ConnectionInitiated', 'ConnectionAuthorized', 'ConnectionDisconnected']);
    expect(violation([initiate, disconnect, { kind: 'ChangeConnectionSettings', connectionId: 'c1', changes: { autoSync: false } }])).toBe('CONNECTION_DISCONNECTED');
    expect(violation([initiate, { ...initiate, ownerId: 'u2' } as ConnectionCommand])).toBe('CONNECTION_EXISTS');
    expect(violation([authorize])).toBe('CONNECTION_NOT_FOUND');
  });
});
