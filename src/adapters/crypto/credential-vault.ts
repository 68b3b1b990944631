import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** One AES-256 key and the id every ciphertext made with it carries. */
export interface CredentialKey {
  readonly id: string;
  readonly key: Buffer;
}

export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CredentialDecryptionError extends Error {
  override readonly name = 'CredentialDecryptionError';
}

/**
 * AES-256-GCM for credentials at rest. A ciphertext reads `v1.<keyId>.<iv>.<tag>.<data>` (base64url),
 * so keys rotate: the newest key (last given) encrypts, every known key decrypts. The format, the
 * key id and the caller's context (the connection id) are authenticated data: a ciphertext copied
 * to another connection's row, or with its key id changed, fails like any tampered byte.
 */
export class CredentialVault {
  private readonly keys: ReadonlyMap<string, Buffer>;
  private readonly newest: CredentialKey;

  constructor(keys: readonly CredentialKey[]) {
    const newest = keys.at(-1);
    if (!newest) throw new Error('the credential vault needs at least one key');
    for (const { id, key } of keys) {
      if (!KEY_ID_PATTERN.test(id)) throw new Error(`credential key id "${id}" must be letters, digits, "_" or "-"`);
      if (key.length !== 32) throw new Error(`credential key "${id}" must be 32 bytes (AES-256)`);
    }
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
    if (this.keys.size !== keys.length) throw new Error('credential key ids must be unique');
    this.newest = newest;
  }

  get newestKeyId(): string {
    return this.newest.id;
  }

  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.newest.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(this.newest.id, context));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [FORMAT, this.newest.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  decrypt(ciphertext: string, context: string): string {
    const [format, keyId, iv, tag, data, ...rest] = ciphertext.split('.');
    if (format !== FORMAT || keyId === undefined || iv === undefined || tag === undefined || data === undefined || rest.length > 0) {
      throw new CredentialDecryptionError('not a credential ciphertext of a known format');
    }
    const key = this.keys.get(keyId);
    if (!key) throw new CredentialDecryptionError(`encrypted under credential key "${keyId}", which is not configured`);
    const ivBytes = Buffer.from(iv, 'base64url');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw new CredentialDecryptionError('the ciphertext is damaged');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES });
      decipher.setAAD(additionalData(keyId, context));
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new CredentialDecryptionError('the ciphertext failed authentication (tampered, or made for another connection)');
    }
  }
}

/** The key id a ciphertext was made with. */
export function keyIdOf(ciphertext: string): string | undefined {
  const [format, keyId] = ciphertext.split('.', 2);
  return format === FORMAT ? keyId : undefined;
}

function additionalData(keyId: string, context: string): Buffer {
  return Buffer.from(`${FORMAT}.${keyId}.${context}`, 'utf8');
}
