import type { ConnectionSettings } from '../domain/connections/events.ts';
import { connectionDecider, connectionStreamId } from '../domain/connections/connection.ts';
import { DomainRuleViolation } from '../domain/decider.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import type { Platform } from '../domain/platforms/records.ts';
import type { CredentialStore } from '../ports/credential-store.ts';
import type { EventStore } from '../ports/event-store.ts';
import type { Credentials } from '../ports/platform-adapter.ts';
import { handleCommand, type CommandResult } from './command-handler.ts';

export interface ConnectionServices {
  readonly store: EventStore;
  readonly credentials: CredentialStore;
}

export function initiateConnection(
  services: ConnectionServices,
  input: { connectionId: string; ownerId: string; platform: Platform; platformAccountId?: string; settings?: Partial<ConnectionSettings> },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  return handleCommand(services.store, connectionDecider, connectionStreamId(input.connectionId), { kind: 'InitiateConnection', ...input }, { metadata });
}

/**
 * Keeps a connection's new credentials in the vault and records, in the log, only which version
 * of them is current and when they expire: tokens and secrets never enter the log.
 */
export async function authorizeConnection(
  services: ConnectionServices,
  input: { connectionId: string; credentials: Credentials },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  const credentialVersion = await services.credentials.save(input.connectionId, input.credentials);
  try {
    return await handleCommand(
      services.store,
      connectionDecider,
      connectionStreamId(input.connectionId),
      {
        kind: 'AuthorizeConnection',
        connectionId: input.connectionId,
        credentialVersion,
        accessTokenExpiresAt: new Date(input.credentials.accessTokenExpiresAt).toISOString(),
        grantedAt: new Date(input.credentials.grantedAt).toISOString(),
      },
      { metadata },
    );
  } catch (error) {
    // A connection that does not exist or was disconnected keeps no credentials.
    if (error instanceof DomainRuleViolation) await services.credentials.remove(input.connectionId);
    throw error;
  }
}

/** Display name, schedule, direction, conflict strategy or data filters; a filter change re-consolidates the connection's holdings. */
export function changeConnectionSettings(
  services: Pick<ConnectionServices, 'store'>,
  input: { connectionId: string; changes: Partial<ConnectionSettings> },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  return handleCommand(services.store, connectionDecider, connectionStreamId(input.connectionId), { kind: 'ChangeConnectionSettings', ...input }, { metadata });
}

/**
 * Ends a connection: it syncs no more and its credentials leave the vault. With keepData the read
 * models keep what it synced; without, its holdings leave them (the log keeps everything).
 */
export async function disconnectConnection(
  services: ConnectionServices,
  input: { connectionId: string; keepData: boolean; disconnectedBy: string },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  const result = await handleCommand(services.store, connectionDecider, connectionStreamId(input.connectionId), { kind: 'DisconnectConnection', ...input }, { metadata });
  await services.credentials.remove(input.connectionId);
  return result;
}
