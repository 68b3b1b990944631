/** A fixed-window request limit per key (an account, a firm, a client). */

export type RateDecision = { readonly ok: true; readonly remaining: number } | { readonly ok: false; readonly retryAfterSeconds: number; readonly retryAfterMs: number };

export interface RateLimiterOptions {
  readonly limit: number;
  readonly windowMs: number;
  readonly now?: () => number;
}

export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly now: () => number;
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(options: RateLimiterOptions) {
    if (!Number.isInteger(options.limit) || options.limit < 1) throw new RangeError('limit must be a positive integer');
    if (!(options.windowMs > 0)) throw new RangeError('windowMs must be positive');
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.now = options.now ?? Date.now;
  }

  take(key: string): RateDecision {
    const now = this.now();
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    let window = this.windows.get(key);
    if (window === undefined || window.start !== start) {
      if (this.windows.size > 10_000) this.forgetBefore(start);
      window = { start, count: 0 };
      this.windows.set(key, window);
    }
    if (window.count < this.limit) {
      window.count++;
      return { ok: true, remaining: this.limit - window.count };
    }
    const retryAfterMs = start + this.windowMs - now;
    // Retry headers carry whole seconds; a client that waits that long lands in a fresh window.
    return { ok: false, retryAfterMs, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
  }

  reset(): void {
    this.windows.clear();
  }

  private forgetBefore(start: number): void {
    for (const [key, window] of this.windows) if (window.start < start) this.windows.delete(key);
  }
}
