import type { PlatformHttpClientOptions } from './http-client.ts';
import type { TokenManager } from './token-manager.ts';

/**
 * The client's `authorize` and `onUnauthorized` for a token-bearing platform: every attempt carries
 * `<scheme> <access token>` in `header`; a 401 invalidates the refused token and retries once.
 */
export function tokenAuthorization(
  tokens: TokenManager,
  options: { readonly scheme?: string; readonly header?: string } = {},
): Required<Pick<PlatformHttpClientOptions, 'authorize' | 'onUnauthorized'>> {
  const header = (options.header ?? 'authorization').toLowerCase();
  const prefix = `${options.scheme ?? 'Bearer'} `;
  return {
    authorize: async (headers) => {
      headers[header] = prefix + (await tokens.accessToken());
    },
    onUnauthorized: async (_response, sent) => {
      const value = sent.headers[header];
      tokens.invalidate(value?.startsWith(prefix) ? value.slice(prefix.length) : undefined);
      return 'retry';
    },
  };
}
