import type { PlatformModule } from '../../src/adapters/platforms/platform-module.ts';
import type { RunningSandbox } from '../../src/adapters/platforms/sandbox-kit/index.ts';
import {
  CredentialsChangedError,
  PlatformError,
  type CredentialHolder,
  type Credentials,
  type Fetched,
  type PlatformAdapter,
  type PlatformConnection,
} from '../../src/ports/platform-adapter.ts';

/** Credentials kept in memory with the port's compare-and-swap, counting replacements. */
export class MemoryHolder implements CredentialHolder {
  replacements = 0;
  constructor(public credentials: Credentials) {}
  async current(): Promise<Credentials> {
    return this.credentials;
  }
  async replace(previous: Credentials, next: Credentials): Promise<number> {
    if (previous !== this.credentials) throw new CredentialsChangedError();
    this.credentials = next;
    return ++this.replacements + 1;
  }
}

/** Retries and breaker quick enough for faults injected in a test to pass or fail within seconds. */
const FAST_CLIENT = { retry: { maxAttempts: 4, initialDelayMs: 20, maxDelayMs: 200 }, timeoutMs: 2000, breaker: { consecutiveFailures: 50, halfOpenAfterMs: 1000 } };

/**
 * A platform's adapters for a test's sandboxes (FAST_CLIENT's settings, then the platform's, then
 * the call's) and its connections, whose credentials are kept in a MemoryHolder.
 */
export function platformTestKit(module: PlatformModule, defaults: { readonly owner: string; readonly adapter?: Record<string, unknown> }) {
  const adapterFor = (sandbox: Pick<RunningSandbox, 'url'>, extras: Record<string, unknown> = {}): PlatformAdapter =>
    module.createAdapter({ baseUrl: sandbox.url, ...FAST_CLIENT, ...defaults.adapter, ...extras });
  const connect = async (sandbox: Pick<RunningSandbox, 'url'>, adapter: PlatformAdapter, owner = defaults.owner): Promise<{ holder: MemoryHolder; connection: PlatformConnection }> => {
    const holder = new MemoryHolder(await module.connectWithoutUser(adapter, sandbox, owner));
    return { holder, connection: adapter.open(holder) };
  };
  return { adapterFor, connect };
}

/** A fetch's records, its per-record errors and the cursor it ended with. */
export async function collect<T>(items: AsyncIterable<Fetched<T>>): Promise<{ records: T[]; errors: Extract<Fetched<T>, { kind: 'error' }>[]; cursor?: string }> {
  const records: T[] = [];
  const errors: Extract<Fetched<T>, { kind: 'error' }>[] = [];
  let cursor: string | undefined;
  for await (const item of items) {
    if (item.kind === 'record') records.push(item.record);
    else if (item.kind === 'error') errors.push(item);
    else cursor = item.cursor;
  }
  return cursor === undefined ? { records, errors } : { records, errors, cursor };
}

/** The PlatformError `run` ends in; anything else, or success, fails the test. */
export async function failure(run: () => Promise<unknown>): Promise<PlatformError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof PlatformError) return error;
    throw error;
  }
  throw new Error('expected a PlatformError');
}
