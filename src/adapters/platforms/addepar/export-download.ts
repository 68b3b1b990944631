import { setTimeout as sleep } from 'node:timers/promises';
import { classifyTransportFailure, parseRetryAfter, requestError } from '../client-kit/index.ts';
import { PlatformError } from '../../../ports/platform-adapter.ts';
import { JSON_API } from './defaults.ts';

/**
 * Streams a job's TSV result. The client kit reads whole answers, which for a 200,000-row export
 * would hold tens of megabytes at once; this follows the job's 303 itself and reads the result
 * line by line. Transient failures (429 with Addepar's retry header, 5xx, resets) are retried;
 * a failure mid-stream resumes by skipping the rows already delivered (an export's rows keep
 * their order).
 */

export interface DownloadOptions {
  /** `<base>/v1/jobs/<id>/download`. */
  readonly url: string;
  /** Sets the credentials and the firm header on the request to the job's download endpoint. */
  readonly authorize: (headers: Record<string, string>) => Promise<void>;
  /** The access token was refused: renew it once. */
  readonly onUnauthorized: (sentAuthorization: string | undefined) => void;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly retryAfterHeader: string;
}

/** The download endpoint answered 410: the job's results expired and the job must be submitted again. */
export class ExportExpiredError extends Error {
  constructor() {
    super('the export job results have expired');
  }
}

class Transient extends Error {
  constructor(
    readonly code: 'RATE_LIMITED' | 'PLATFORM_UNAVAILABLE' | 'TIMEOUT' | 'CONNECTION_RESET',
    readonly detail: string,
    readonly retryAfterMs?: number,
  ) {
    super(detail);
  }
}

/** The data rows of one received chunk, each as its cells (the header row gives their names). */
export interface TsvRows {
  readonly header: readonly string[];
  readonly rows: readonly string[][];
}

/**
 * Yields the data rows chunk by chunk as they arrive: the consumer awaits a chunk, not a row. A
 * chunk is delivered once it is yielded (the consumer takes all of it before asking for more).
 */
export async function* downloadTsv(options: DownloadOptions): AsyncGenerator<TsvRows> {
  let delivered = 0;
  let refusedOnce = false;
  for (let attempt = 1; ; attempt++) {
    try {
      let skip = delivered;
      for await (const chunk of attemptDownload(options, () => {
        if (refusedOnce) throw requestError('addepar', 'AUTH_REVOKED', 'GET /v1/jobs/:id/download: the platform refused renewed credentials (401)');
        refusedOnce = true;
      })) {
        const rows = skip === 0 ? chunk.rows : chunk.rows.slice(skip);
        skip -= chunk.rows.length - rows.length;
        if (rows.length === 0) continue;
        delivered += rows.length;
        yield { header: chunk.header, rows };
      }
      return;
    } catch (error) {
      if (error instanceof Reauthorize) {
        options.onUnauthorized(error.sentAuthorization);
        continue;
      }
      if (!(error instanceof Transient) && !(error instanceof PlatformError) && !(error instanceof ExportExpiredError)) {
        const { code, detail } = classifyTransportFailure(error);
        error = new Transient(code === 'TIMEOUT' || code === 'CONNECTION_RESET' || code === 'PLATFORM_UNAVAILABLE' ? code : 'CONNECTION_RESET', detail);
      }
      if (!(error instanceof Transient)) throw error;
      if (attempt >= options.maxAttempts) throw requestError('addepar', error.code, `downloading an export: ${error.detail}; gave up after ${options.maxAttempts} attempts`);
      const backoff = Math.random() * Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (attempt - 1));
      await sleep(error.retryAfterMs ?? backoff);
    }
  }
}

class Reauthorize extends Error {
  constructor(readonly sentAuthorization: string | undefined) {
    super('reauthorize');
  }
}

async function* attemptDownload(options: DownloadOptions, onRefused: () => void): AsyncGenerator<TsvRows> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const headers: Record<string, string> = { accept: `${JSON_API}, text/tab-separated-values` };
  await options.authorize(headers);
  const redirect = await fetch(options.url, { headers, redirect: 'manual', signal });
  await redirect.body?.cancel().catch(() => undefined);
  if (redirect.status === 401) {
    onRefused();
    throw new Reauthorize(headers['authorization']);
  }
  check(redirect, options);
  const location = redirect.headers.get('location');
  if (redirect.status !== 303 || location === null) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `GET /v1/jobs/:id/download answered ${redirect.status} instead of a redirect to the results`);
  // The signed result URL carries its own authorization; credentials are not sent there.
  const result = await fetch(new URL(location, options.url), { signal });
  if (!result.ok) await result.body?.cancel().catch(() => undefined);
  check(result, options);
  if (result.body === null) throw new Transient('CONNECTION_RESET', 'the export answered without a body');
  let header: string[] | undefined;
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of result.body as unknown as AsyncIterable<Uint8Array>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const rows: string[][] = [];
    let start = 0;
    for (let end = text.indexOf('\n', start); end >= 0; start = end + 1, end = text.indexOf('\n', start)) {
      const line = text.slice(start, end);
      if (line === '') continue;
      const cells = line.split('\t');
      if (header === undefined) header = cells;
      else rows.push(cells);
    }
    rest = text.slice(start);
    if (header !== undefined && rows.length > 0) yield { header, rows };
  }
  if (rest !== '' && header !== undefined) yield { header, rows: [rest.split('\t')] };
}

function check(response: Response, options: DownloadOptions): void {
  if (response.status === 410) throw new ExportExpiredError();
  if (response.status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers.get(options.retryAfterHeader), Date.now());
    throw new Transient('RATE_LIMITED', 'rate limited (429)', retryAfterMs);
  }
  if (response.status >= 500) throw new Transient('PLATFORM_UNAVAILABLE', `answered ${response.status}`);
  if (response.status >= 400) throw requestError('addepar', 'PLATFORM_UNAVAILABLE', `downloading an export: answered ${response.status}`);
}
