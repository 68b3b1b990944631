import type pg from 'pg';
import type { CredentialVault } from '../crypto/credential-vault.ts';
import { CredentialsChangedError, CredentialsSchema, type CredentialHolder, type Credentials } from '../../ports/platform-adapter.ts';
import type { CredentialStore } from '../../ports/credential-store.ts';

export class CredentialsNotFoundError extends Error {
  override readonly name = 'CredentialsNotFoundError';
  constructor(readonly connectionId: string) {
    super(`no credentials are stored for connection ${connectionId}`);
  }
}

interface Row {
  readonly connection_id: string;
  readonly ciphertext: string;
  readonly version: number;
}

/** How many rows `reencryptAll` reads per round trip. */
const REENCRYPT_BATCH = 200;

/**
 * Each connection's credentials, encrypted by the vault (the connection id is bound into the
 * ciphertext). Replacing them is a compare-and-swap on the row's version.
 */
export class PostgresCredentialStore implements CredentialStore {
  /** The version each Credentials object was read or written at, for compare-and-swap. */
  private readonly versions = new WeakMap<Credentials, number>();

  constructor(
    private readonly pool: pg.Pool,
    /** Also seals the API's short-lived secrets at rest (the PKCE verifiers of connections being made). */
    readonly vault: CredentialVault,
  ) {}

  /** The key new and re-encrypted credentials are sealed under. */
  get newestKeyId(): string {
    return this.vault.newestKeyId;
  }

  /** Stores the credentials of a new (or re-authorized) connection, replacing whatever was there. */
  async save(connectionId: string, credentials: Credentials): Promise<number> {
    const valid = CredentialsSchema.parse(credentials);
    const result = await this.pool.query<{ version: number }>(
      `INSERT INTO connection_credentials (connection_id, key_id, ciphertext, version) VALUES ($1, $2, $3, 1)
       ON CONFLICT (connection_id) DO UPDATE SET key_id = EXCLUDED.key_id, ciphertext = EXCLUDED.ciphertext,
         version = connection_credentials.version + 1, updated_at = now()
       RETURNING version`,
      [connectionId, this.vault.newestKeyId, this.seal(connectionId, valid)],
    );
    const version = result.rows[0]!.version;
    this.versions.set(credentials, version);
    return version;
  }

  async load(connectionId: string): Promise<Credentials> {
    const result = await this.pool.query<Row>('SELECT connection_id, ciphertext, version FROM connection_credentials WHERE connection_id = $1', [connectionId]);
    const row = result.rows[0];
    if (!row) throw new CredentialsNotFoundError(connectionId);
    return this.open(row);
  }

  async remove(connectionId: string): Promise<boolean> {
    const result = await this.pool.query('DELETE FROM connection_credentials WHERE connection_id = $1', [connectionId]);
    return (result.rowCount ?? 0) > 0;
  }

  /** Stores `next` only if the row still holds `previous`; otherwise CredentialsChangedError. */
  async replace(connectionId: string, previous: Credentials, next: Credentials): Promise<number> {
    const valid = CredentialsSchema.parse(next);
    const version = this.versions.get(previous) ?? (await this.versionHolding(connectionId, previous));
    const result = await this.pool.query<{ version: number }>(
      `UPDATE connection_credentials SET key_id = $2, ciphertext = $3, version = version + 1, updated_at = now()
        WHERE connection_id = $1 AND version = $4 RETURNING version`,
      [connectionId, this.vault.newestKeyId, this.seal(connectionId, valid), version],
    );
    const row = result.rows[0];
    if (!row) throw new CredentialsChangedError();
    this.versions.set(next, row.version);
    return row.version;
  }

  /** The CredentialHolder a connection's TokenManager works through. */
  holder(connectionId: string): CredentialHolder {
    return {
      current: () => this.load(connectionId),
      replace: (previous, next) => this.replace(connectionId, previous, next),
    };
  }

  /**
   * Re-encrypts every row not yet under the vault's newest key. The version stays: the content is
   * the same, so a token refresh racing with this is not turned away; a row that changed meanwhile
   * was written under the newest key anyway. Returns how many rows moved.
   */
  async reencryptAll(): Promise<number> {
    const newest = this.vault.newestKeyId;
    let moved = 0;
    let after = '';
    for (;;) {
      const batch = await this.pool.query<Row>(
        `SELECT connection_id, ciphertext, version FROM connection_credentials
          WHERE key_id <> $1 AND connection_id > $2 ORDER BY connection_id LIMIT $3`,
        [newest, after, REENCRYPT_BATCH],
      );
      for (const row of batch.rows) {
        const plaintext = this.vault.decrypt(row.ciphertext, row.connection_id);
        const updated = await this.pool.query(
          'UPDATE connection_credentials SET key_id = $2, ciphertext = $3 WHERE connection_id = $1 AND version = $4',
          [row.connection_id, newest, this.vault.encrypt(plaintext, row.connection_id), row.version],
        );
        moved += updated.rowCount ?? 0;
        after = row.connection_id;
      }
      if (batch.rows.length < REENCRYPT_BATCH) return moved;
    }
  }

  /** When `previous` did not come from this store: the current row's version if it holds the same credentials. */
  private async versionHolding(connectionId: string, previous: Credentials): Promise<number> {
    const current = await this.load(connectionId);
    if (JSON.stringify(CredentialsSchema.parse(previous)) !== JSON.stringify(current)) throw new CredentialsChangedError();
    return this.versions.get(current)!;
  }

  private seal(connectionId: string, credentials: Credentials): string {
    return this.vault.encrypt(JSON.stringify(credentials), connectionId);
  }

  private open(row: Row): Credentials {
    const credentials = CredentialsSchema.parse(JSON.parse(this.vault.decrypt(row.ciphertext, row.connection_id)));
    this.versions.set(credentials, row.version);
    return credentials;
  }
}
