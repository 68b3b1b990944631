import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { monotonicUlids } from '../src/adapters/postgres/event-ids.ts';

describe('monotonic ULIDs', () => {
  it('are valid ULIDs of the current time, strictly increasing and unique in a burst', () => {
    const next = monotonicUlids();
    const before = Date.now();
    const ids = Array.from({ length: 50_000 }, () => next());
    const after = Date.now();
    for (const id of ids) expect(id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
    expect(ids.every((id, i) => i === 0 || ids[i - 1]! < id)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(decodeTime(ids[0]!)).toBeGreaterThanOrEqual(before);
    expect(decodeTime(ids[ids.length - 1]!)).toBeLessThanOrEqual(after);
  });

  it('counts up across a carry within one millisecond', () => {
    const realNow = Date.now;
    Date.now = () => 1_700_000_000_000;
    try {
      const next = monotonicUlids();
      const ids = Array.from({ length: 3000 }, () => next());
      // 3000 increments carry out of the last two base-32 digits at least twice.
      expect(ids.every((id, i) => i === 0 || ids[i - 1]! < id)).toBe(true);
      expect(new Set(ids.map((id) => id.slice(0, 24))).size).toBeGreaterThan(2);
      expect(ids.every((id) => decodeTime(id) === 1_700_000_000_000)).toBe(true);
    } finally {
      Date.now = realNow;
    }
  });
});
