import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Client-side rate limit as a token bucket (kept in GCRA form: one timestamp, O(1) per request).
 * At most `requests` start in any window of `perMs`, whatever window the platform counts in: the
 * burst (default a tenth of the limit) plus the refill over one window make exactly the limit. A
 * larger burst serves short jobs at once at the cost of a slower steady pace. Callers over the
 * limit wait their turn in arrival order instead of failing.
 */
export class TokenBucket {
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  /** When the bucket would next be empty if nobody else came (the "theoretical arrival time"). */
  private theoreticalArrival = 0;

  constructor(limit: { readonly requests: number; readonly perMs: number; readonly burst?: number }) {
    if (!(limit.requests >= 1) || !(limit.perMs > 0)) throw new RangeError('rate limit needs requests >= 1 and perMs > 0');
    const burst = Math.min(Math.max(1, Math.floor(limit.burst ?? limit.requests / 10)), Math.max(1, limit.requests - 1));
    this.intervalMs = limit.perMs / Math.max(1, limit.requests - burst);
    this.toleranceMs = (burst - 1) * this.intervalMs;
  }

  /** Milliseconds the next request must wait; reserves its slot. */
  reserve(now: number): number {
    const arrival = Math.max(this.theoreticalArrival, now);
    const wait = Math.max(0, arrival - this.toleranceMs - now);
    this.theoreticalArrival = arrival + this.intervalMs;
    return wait;
  }

  async take(signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(performance.now());
    if (wait > 0) await sleep(wait, undefined, signal ? { signal } : undefined);
  }
}
