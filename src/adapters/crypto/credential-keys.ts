import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { CredentialVault, KEY_ID_PATTERN, type CredentialKey } from './credential-vault.ts';
import { loadOrCreateSecretFile } from './local-secret-file.ts';

export const LOCAL_KEYS_FILE = 'credential-keys.json';

const KeysFileSchema = z.object({ keys: z.array(z.object({ id: z.string().regex(KEY_ID_PATTERN), key: z.string() })).min(1) });

/**
 * Parses `LEDGER_CREDENTIAL_KEYS`: comma-separated `keyId:base64key`, oldest first. Errors name
 * the entry by position or id, never by its key.
 */
export function parseCredentialKeys(text: string): CredentialKey[] {
  return text.split(',').map((entry, index) => {
    const separator = entry.indexOf(':');
    const id = entry.slice(0, separator).trim();
    if (separator < 0 || !KEY_ID_PATTERN.test(id)) throw new Error(`LEDGER_CREDENTIAL_KEYS: entry ${index + 1} must read keyId:base64key`);
    return { id, key: decodeKey(entry.slice(separator + 1).trim(), id) };
  });
}

function decodeKey(text: string, id: string): Buffer {
  const key = Buffer.from(text, /[-_]/.test(text) ? 'base64url' : 'base64');
  if (key.length !== 32) throw new Error(`credential key "${id}" must be 32 bytes written in base64`);
  return key;
}

/**
 * The configured keys; without `LEDGER_CREDENTIAL_KEYS` (local and embedded use) one key is
 * generated once into `<dataDir>/credential-keys.json`, readable by its owner only.
 */
export async function loadCredentialKeys(config: { readonly LEDGER_CREDENTIAL_KEYS?: string | undefined; readonly LEDGER_DATA_DIR: string }): Promise<CredentialKey[]> {
  if (config.LEDGER_CREDENTIAL_KEYS) return parseCredentialKeys(config.LEDGER_CREDENTIAL_KEYS);
  const file = path.resolve(config.LEDGER_DATA_DIR, LOCAL_KEYS_FILE);
  const text = await loadOrCreateSecretFile(file, () =>
    JSON.stringify({ keys: [{ id: `local-${randomBytes(4).toString('hex')}`, key: randomBytes(32).toString('base64') }] }, null, 2),
  );
  const parsed = KeysFileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file} is not a credential key file ({"keys":[{"id","key"}]})`);
  return parsed.data.keys.map(({ id, key }) => ({ id, key: decodeKey(key, id) }));
}

export async function openCredentialVault(config: Parameters<typeof loadCredentialKeys>[0]): Promise<CredentialVault> {
  return new CredentialVault(await loadCredentialKeys(config));
}
