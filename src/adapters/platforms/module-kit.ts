import type { Platform } from '../../domain/platforms/records.ts';
import type { Credentials, PlatformAdapter } from '../../ports/platform-adapter.ts';
import { requestError } from './client-kit/index.ts';
import type { PlatformModule } from './platform-module.ts';

/** The set fields only: the adapters' configurations take an absent setting, not an undefined one. */
export function definedOnly<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

/**
 * connectWithoutUser for a platform that connects through an OAuth code flow with the sandbox's
 * consent page. What the user's browser does: open the authorization URL (with the owner as login
 * hint), approve on the consent page unless the sandbox approves by itself, and hand the redirect
 * back to the adapter.
 */
export function connectThroughConsent(platform: Platform, redirectUri: string): PlatformModule['connectWithoutUser'] {
  return async (adapter: PlatformAdapter, sandbox, ownerId): Promise<Credentials> => {
    const start = await adapter.beginAuthorization(redirectUri);
    const url = new URL(start.authorizationUrl);
    url.searchParams.set('login_hint', ownerId);
    let response = await fetch(url, { redirect: 'manual' });
    if (response.status === 200) {
      const form = new URLSearchParams(url.searchParams);
      form.delete('login_hint');
      form.set('user', ownerId);
      form.set('decision', 'approve');
      await response.arrayBuffer();
      response = await fetch(new URL(url.pathname, sandbox.url), { method: 'POST', body: form, redirect: 'manual' });
    }
    const location = response.headers.get('location');
    await response.arrayBuffer();
    if (response.status < 300 || response.status >= 400 || location === null) {
      throw requestError(platform, 'AUTH_REVOKED', `the sandbox's authorization answered ${response.status} without a redirect`, 'authorization');
    }
    return adapter.completeAuthorization({ callbackUrl: location, expectedState: start.state, codeVerifier: start.codeVerifier, redirectUri });
  };
}
