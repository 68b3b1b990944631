import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_KEYS_FILE, loadCredentialKeys, parseCredentialKeys } from '../src/adapters/crypto/credential-keys.ts';
import { CredentialDecryptionError, CredentialVault, keyIdOf, type CredentialKey } from '../src/adapters/crypto/credential-vault.ts';
import { PostgresCredentialStore } from '../src/adapters/postgres/credential-store.ts';
import { loadConfig } from '../src/config.ts';
import { CredentialsChangedError, type Credentials } from '../src/ports/platform-adapter.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { ledgerCli } from './support/processes.ts';

const key = (id: string): CredentialKey => ({ id, key: randomBytes(32) });
const envKeys = (...keys: CredentialKey[]) => keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',');

function credentials(tag: string): Credentials {
  return {
    accessToken: `access-${tag}-${randomBytes(12).toString('hex')}`,
    accessTokenExpiresAt: Date.now() + 3_600_000,
    refreshToken: `refresh-${tag}-${randomBytes(12).toString('hex')}`,
    grantedAt: Date.now(),
    apiSecret: `secret-${tag}-${randomBytes(12).toString('hex')}`,
  };
}

describe('credential vault', () => {
  const k1 = key('k1');
  const vault = new CredentialVault([k1]);

  it('round-trips, with a fresh IV every time and the key id in the ciphertext', () => {
    const a = vault.encrypt('the refresh token', 'conn-1');
    const b = vault.encrypt('the refresh token', 'conn-1');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^v1\.k1\.[\w-]{16}\.[\w-]{22}\.[\w-]+$/);
    expect(keyIdOf(a)).toBe('k1');
    expect(vault.decrypt(a, 'conn-1')).toBe('the refresh token');
    expect(a).not.toContain('refresh');
  });

  it('detects a changed byte anywhere: IV, tag, data, key id, or another connection', () => {
    const sealed = vault.encrypt('{"accessToken":"abc"}', 'conn-1');
    const parts = sealed.split('.');
    for (const index of [2, 3, 4]) {
      const bytes = Buffer.from(parts[index]!, 'base64url');
      bytes[bytes.length - 1]! ^= 0x01;
      const tampered = parts.map((p, i) => (i === index ? bytes.toString('base64url') : p)).join('.');
      expect(() => vault.decrypt(tampered, 'conn-1')).toThrow(CredentialDecryptionError);
    }
    expect(() => vault.decrypt(sealed, 'conn-2')).toThrow(/another connection/);
    const otherId = new CredentialVault([k1, { id: 'k9', key: k1.key }]);
    expect(() => otherId.decrypt(sealed.replace('v1.k1.', 'v1.k9.'), 'conn-1')).toThrow(CredentialDecryptionError);
    expect(() => vault.decrypt('not-a-ciphertext', 'conn-1')).toThrow(/known format/);
  });

  it('after rotation the old key still decrypts and the newest encrypts; an unknown key is named', () => {
    const old = vault.encrypt('before rotation', 'conn-1');
    const rotated = new CredentialVault([k1, key('k2')]);
    expect(rotated.decrypt(old, 'conn-1')).toBe('before rotation');
    expect(keyIdOf(rotated.encrypt('after', 'conn-1'))).toBe('k2');
    expect(() => new CredentialVault([key('k2')]).decrypt(old, 'conn-1')).toThrow(/"k1", which is not configured/);
  });

  it('reads LEDGER_CREDENTIAL_KEYS and never repeats a key in its errors', () => {
    const k2 = key('k2');
    expect(parseCredentialKeys(envKeys(k1, k2)).map((k) => k.id)).toEqual(['k1', 'k2']);
    const short = randomBytes(16).toString('base64');
    expect(() => parseCredentialKeys(`k1:${short}`)).toThrow(/"k1" must be 32 bytes/);
    try {
      parseCredentialKeys(`k1:${short}`);
    } catch (error) {
      expect(String(error)).not.toContain(short);
    }
    expect(() => loadConfig({ LEDGER_CREDENTIAL_KEYS: `no separator ${short}` })).toThrow(/LEDGER_CREDENTIAL_KEYS: must be comma-separated/);
    try {
      loadConfig({ LEDGER_CREDENTIAL_KEYS: `no separator ${short}` });
    } catch (error) {
      expect(String(error)).not.toContain(short);
    }
  });

  it('without LEDGER_CREDENTIAL_KEYS generates one key into the data folder, owner-only, and keeps it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ledger-keys-'));
    try {
      const [first, second] = await Promise.all([loadCredentialKeys({ LEDGER_DATA_DIR: dir }), loadCredentialKeys({ LEDGER_DATA_DIR: dir })]);
      expect(first).toHaveLength(1);
      expect(second![0]!.key.equals(first![0]!.key)).toBe(true);
      const file = path.join(dir, LOCAL_KEYS_FILE);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const again = await loadCredentialKeys({ LEDGER_DATA_DIR: dir });
      expect(again[0]!.id).toBe(first![0]!.id);
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ keys: [{ id: first![0]!.id }] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Postgres credential store', () => {
  let database: TestDatabase;
  const k1 = key('k1');
  const k2 = key('k2');

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => database?.drop());

  const rowOf = async (connectionId: string) =>
    (await database.pool.query<{ key_id: string; ciphertext: string; version: number; whole: string }>(
      'SELECT key_id, ciphertext, version, c::text AS whole FROM connection_credentials c WHERE connection_id = $1',
      [connectionId],
    )).rows[0]!;

  it('stores ciphertext only: the row never holds a token or secret', async () => {
    const store = new PostgresCredentialStore(database.pool, new CredentialVault([k1]));
    const stored = credentials('plain');
    await store.save('conn-plain', stored);
    const row = await rowOf('conn-plain');
    for (const secret of [stored.accessToken, stored.refreshToken!, stored.apiSecret!]) {
      expect(row.whole).not.toContain(secret);
      expect(row.whole).not.toContain(Buffer.from(secret).toString('base64'));
    }
    expect(row.key_id).toBe('k1');
    expect(await store.load('conn-plain')).toEqual(stored);
  });

  it('replace is a compare-and-swap: a writer holding stale credentials gets CredentialsChangedError', async () => {
    const store = new PostgresCredentialStore(database.pool, new CredentialVault([k1]));
    await store.save('conn-cas', credentials('v1'));
    const holder = store.holder('conn-cas');
    const seenByA = await holder.current();
    const seenByB = await holder.current();
    const fromA = credentials('a');
    await holder.replace(seenByA, fromA);
    await expect(holder.replace(seenByB, credentials('b'))).rejects.toBeInstanceOf(CredentialsChangedError);
    expect(await holder.current()).toEqual(fromA);
    // Credentials built elsewhere (not read from this store) are compared by content.
    await holder.replace({ ...fromA }, credentials('c'));
    await expect(holder.replace({ ...fromA }, credentials('d'))).rejects.toBeInstanceOf(CredentialsChangedError);
    expect((await rowOf('conn-cas')).version).toBe(3);
  });

  it('`ledger credentials reencrypt` moves every row to the newest key; the old key is then no longer needed', async () => {
    const before = new PostgresCredentialStore(database.pool, new CredentialVault([k1]));
    const saved = new Map<string, Credentials>();
    for (let i = 0; i < 5; i++) {
      const c = credentials(`r${i}`);
      saved.set(`conn-r${i}`, c);
      await before.save(`conn-r${i}`, c);
    }
    const total = Number((await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM connection_credentials')).rows[0]!.n);
    const env = { DATABASE_URL: database.connectionString, LEDGER_CREDENTIAL_KEYS: envKeys(k1, k2) };
    const result = await ledgerCli(['credentials', 'reencrypt'], env);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(`re-encrypted ${total} credentials under key k2`);
    const keyIds = await database.pool.query<{ key_id: string; ciphertext: string }>('SELECT key_id, ciphertext FROM connection_credentials');
    expect(keyIds.rows.every((r) => r.key_id === 'k2' && keyIdOf(r.ciphertext) === 'k2')).toBe(true);
    const onlyNewest = new PostgresCredentialStore(database.pool, new CredentialVault([k2]));
    for (const [id, c] of saved) expect(await onlyNewest.load(id)).toEqual(c);

    const again = await ledgerCli(['credentials', 'reencrypt'], env);
    expect(again.stdout.trim()).toBe('re-encrypted 0 credentials under key k2');
  });
});
