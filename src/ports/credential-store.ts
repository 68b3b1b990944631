import type { CredentialHolder, Credentials } from './platform-adapter.ts';

/** Where connections' credentials are kept, encrypted; the log refers to them only by version. */
export interface CredentialStore {
  /** Stores a connection's new credentials and answers their version (1 for the first, counting up). */
  save(connectionId: string, credentials: Credentials): Promise<number>;
  /** The compare-and-swap view a connection's TokenManager works through. */
  holder(connectionId: string): CredentialHolder;
  remove(connectionId: string): Promise<boolean>;
}
