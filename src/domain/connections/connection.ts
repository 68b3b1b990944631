import { DomainRuleViolation, type Decider, type DomainEvent } from '../decider.ts';
import type { EventData } from '../events/catalogue.ts';
import type { Platform } from '../platforms/records.ts';
import type { SyncError } from '../platforms/sync-error.ts';
import type {
  ConnectionAuthorized,
  ConnectionCredentialsRenewed,
  ConnectionDisconnected,
  ConnectionErrorRecorded,
  ConnectionInitiated,
  ConnectionSettings,
  ConnectionSettingsChanged,
} from './events.ts';


export type ConnectionEvent =
  | DomainEvent<'ConnectionInitiated', EventData<typeof ConnectionInitiated>>
  | DomainEvent<'ConnectionAuthorized', EventData<typeof ConnectionAuthorized>>
  | DomainEvent<'ConnectionSettingsChanged', EventData<typeof ConnectionSettingsChanged>>
  | DomainEvent<'ConnectionCredentialsRenewed', EventData<typeof ConnectionCredentialsRenewed>>
  | DomainEvent<'ConnectionErrorRecorded', EventData<typeof ConnectionErrorRecorded>>
  | DomainEvent<'ConnectionDisconnected', EventData<typeof ConnectionDisconnected>>;

type CredentialRef = { readonly credentialVersion: number; readonly accessTokenExpiresAt: string; readonly grantedAt: string };

export type ConnectionCommand =
  | {
      readonly kind: 'InitiateConnection';
      readonly connectionId: string;
      readonly ownerId: string;
      readonly platform: Platform;
      readonly platformAccountId?: string;
      readonly settings?: Partial<ConnectionSettings>;
    }
  | ({ readonly kind: 'AuthorizeConnection'; readonly connectionId: string } & CredentialRef)
  | { readonly kind: 'ChangeConnectionSettings'; readonly connectionId: string; readonly changes: Partial<ConnectionSettings> }
  | ({ readonly kind: 'RenewConnectionCredentials'; readonly connectionId: string; readonly rotated: boolean } & CredentialRef)
  | { readonly kind: 'RecordConnectionError'; readonly connectionId: string; readonly error: SyncError }
  | { readonly kind: 'DisconnectConnection'; readonly connectionId: string; readonly keepData: boolean; readonly disconnectedBy: string };

export type ConnectionStatus = 'pending' | 'active' | 'error' | 'disconnected';

export type ConnectionState =
  | { readonly status: 'absent' }
  | {
      readonly status: ConnectionStatus;
      readonly connectionId: string;
      readonly ownerId: string;
      readonly platform: Platform;
      readonly platformAccountId?: string;
      readonly settings: ConnectionSettings;
      readonly credentialVersion?: number;
      readonly lastError?: SyncError;
    };

const PLATFORM_NAMES: Record<Platform, string> = { black_diamond: 'Black Diamond', orion: 'Orion', addepar: 'Addepar' };

/** Read-only with automatic, latest-observation-wins conflict handling unless the user chooses otherwise. */
export function defaultSettings(platform: Platform): ConnectionSettings {
  return { displayName: PLATFORM_NAMES[platform], autoSync: true, direction: 'read_only', conflictStrategy: 'TIMESTAMP', dataFilters: {} };
}

export const connectionStreamId = (connectionId: string) => `connection-${connectionId}`;

/** Errors that mean the credential is dead: the connection needs the user before it can sync again. */
const CREDENTIAL_ERRORS = new Set<SyncError['code']>(['AUTH_REVOKED']);

export const connectionDecider: Decider<ConnectionState, ConnectionCommand, ConnectionEvent> = {
  initialState: () => ({ status: 'absent' }),

  decide(command, state) {
    switch (command.kind) {
      case 'InitiateConnection': {
        if (state.status !== 'absent') {
          if (state.ownerId === command.ownerId && state.platform === command.platform) return [];
          throw new DomainRuleViolation('CONNECTION_EXISTS', `connection ${command.connectionId} already exists`);
        }
        const settings = { ...defaultSettings(command.platform), ...command.settings };
        const { connectionId, ownerId, platform, platformAccountId } = command;
        return [{ type: 'ConnectionInitiated', data: { connectionId, ownerId, platform, ...(platformAccountId ? { platformAccountId } : {}), settings } }];
      }
      case 'AuthorizeConnection': {
        const current = requireLive(state, command.connectionId);
        if (current.credentialVersion === command.credentialVersion) return [];
        const { connectionId, credentialVersion, accessTokenExpiresAt, grantedAt } = command;
        return [{ type: 'ConnectionAuthorized', data: { connectionId, credentialVersion, accessTokenExpiresAt, grantedAt } }];
      }
      case 'ChangeConnectionSettings': {
        const current = requireLive(state, command.connectionId);
        const changes = Object.fromEntries(
          Object.entries(command.changes).filter(([key, value]) => value !== undefined && JSON.stringify(current.settings[key as keyof ConnectionSettings]) !== JSON.stringify(value)),
        ) as Partial<ConnectionSettings>;
        if (Object.keys(changes).length === 0) return [];
        return [{ type: 'ConnectionSettingsChanged', data: { connectionId: command.connectionId, changes } }];
      }
      case 'RenewConnectionCredentials': {
        const current = requireLive(state, command.connectionId);
        if (current.status === 'pending') throw new DomainRuleViolation('CONNECTION_NOT_AUTHORIZED', `connection ${command.connectionId} has not been authorized yet`);
        if (current.credentialVersion !== undefined && command.credentialVersion <= current.credentialVersion) return [];
        const { connectionId, credentialVersion, accessTokenExpiresAt, grantedAt, rotated } = command;
        return [{ type: 'ConnectionCredentialsRenewed', data: { connectionId, credentialVersion, accessTokenExpiresAt, grantedAt, rotated } }];
      }
      case 'RecordConnectionError': {
        requireLive(state, command.connectionId);
        return [{ type: 'ConnectionErrorRecorded', data: { connectionId: command.connectionId, error: command.error } }];
      }
      case 'DisconnectConnection': {
        if (state.status === 'absent') throw new DomainRuleViolation('CONNECTION_NOT_FOUND', `connection ${command.connectionId} does not exist`);
        if (state.status === 'disconnected') return [];
        const { connectionId, keepData, disconnectedBy } = command;
        return [{ type: 'ConnectionDisconnected', data: { connectionId, keepData, disconnectedBy } }];
      }
    }
  },

  evolve(state, event) {
    if (event.type === 'ConnectionInitiated') {
      const { settings, ...rest } = event.data;
      return { status: 'pending', ...rest, settings };
    }
    if (state.status === 'absent') return state;
    switch (event.type) {
      case 'ConnectionAuthorized':
      case 'ConnectionCredentialsRenewed': {
        const { lastError: _cleared, ...rest } = state;
        return { ...rest, status: 'active', credentialVersion: event.data.credentialVersion };
      }
      case 'ConnectionSettingsChanged':
        return { ...state, settings: { ...state.settings, ...event.data.changes } };
      case 'ConnectionErrorRecorded':
        return { ...state, lastError: event.data.error, status: CREDENTIAL_ERRORS.has(event.data.error.code) ? 'error' : state.status };
      case 'ConnectionDisconnected':
        return { ...state, status: 'disconnected' };
    }
  },
};

function requireLive(state: ConnectionState, connectionId: string): Exclude<ConnectionState, { status: 'absent' }> {
  if (state.status === 'absent') throw new DomainRuleViolation('CONNECTION_NOT_FOUND', `connection ${connectionId} does not exist`);
  if (state.status === 'disconnected') throw new DomainRuleViolation('CONNECTION_DISCONNECTED', `connection ${connectionId} is disconnected`);
  return state;
}
