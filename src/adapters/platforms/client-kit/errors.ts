import type { Platform } from '../../../domain/platforms/records.ts';
import type { SyncErrorCode } from '../../../domain/platforms/sync-error.ts';
import { PlatformError } from '../../../ports/platform-adapter.ts';

const RETRYABLE: ReadonlySet<SyncErrorCode> = new Set(['RATE_LIMITED', 'PLATFORM_UNAVAILABLE', 'TIMEOUT', 'CONNECTION_RESET']);

/**
 * A PlatformError for a failed request (not a record): `recordId` names the request. Callers pass
 * messages they wrote themselves, never a lower layer's message, so no token or secret can ride along.
 */
export function requestError(platform: Platform, code: SyncErrorCode, message: string, request = 'request'): PlatformError {
  return new PlatformError(platform, {
    recordId: request,
    code,
    message,
    severity: code === 'AUTH_REVOKED' || code === 'AUTH_EXPIRED' ? 'critical' : 'error',
    retryable: RETRYABLE.has(code),
  });
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * What a transport failure of fetch means. undici reports `TypeError: fetch failed` (or
 * `terminated` mid-body) with the socket error as `cause`; only the error's code is kept, since
 * undici's messages may quote the request.
 */
export function classifyTransportFailure(error: unknown): { code: SyncErrorCode; detail: string } {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current.name === 'AbortError' || current.name === 'TimeoutError') return { code: 'TIMEOUT', detail: 'no answer within the timeout' };
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (RESET_CODES.has(code)) return { code: 'CONNECTION_RESET', detail: `connection closed by the platform (${code})` };
      if (UNREACHABLE_CODES.has(code)) return { code: 'PLATFORM_UNAVAILABLE', detail: `platform unreachable (${code})` };
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { code: 'TIMEOUT', detail: `no answer within the timeout (${code})` };
    }
  }
  if (error instanceof TypeError && error.message === 'terminated') return { code: 'CONNECTION_RESET', detail: 'connection closed while reading the answer' };
  return { code: 'CONNECTION_RESET', detail: 'the request failed in transport' };
}
