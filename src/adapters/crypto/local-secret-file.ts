import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A secret generated once into a file readable by its owner only, for local and embedded use
 * when no secret is configured; answers the file's text. A file others can read is refused.
 */
export async function loadOrCreateSecretFile(file: string, generate: () => string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  if (!(await stat(file).then(() => true, () => false))) await install(file, generate());
  if (((await stat(file)).mode & 0o077) !== 0) throw new Error(`${file} must be readable by its owner only (chmod 600)`);
  return readFile(file, 'utf8');
}

async function install(file: string, content: string): Promise<void> {
  // Written aside and linked into place: two processes starting together cannot both install a
  // secret, and neither can read a half-written file; the loser reads the winner's.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(draft, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(draft);
  }
}
