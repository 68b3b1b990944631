import { setTimeout as delay } from 'node:timers/promises';

/** Polls until the check holds; fails the test if it does not within the timeout. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await delay(50);
  }
}
