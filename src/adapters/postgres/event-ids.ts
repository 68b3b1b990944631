import { randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A generator of monotonic ULIDs, as the ulid package's monotonicFactory makes them (48-bit
 * millisecond time, then 80 random bits that count up by one within a millisecond), built for
 * the store's bulk use: the random part is kept as base-32 digits, so an id within the same
 * millisecond costs one increment and one concatenation, and randomness is drawn in bulk (the
 * package asks the system once per character).
 */
export function monotonicUlids(): () => string {
  const pool = new Uint8Array(4096);
  let drawn = pool.length;
  const digits = new Uint8Array(16);
  let lastTime = -1;
  /** The time and the first 15 random digits, encoded. */
  let head = '';
  return () => {
    const now = Date.now();
    if (now > lastTime) {
      lastTime = now;
      if (drawn + digits.length > pool.length) {
        randomFillSync(pool);
        drawn = 0;
      }
      // 256 is a multiple of 32, so the low five bits of a random byte are a uniform digit.
      for (let i = 0; i < digits.length; i++) digits[i] = pool[drawn++]! & 31;
      head = encode(lastTime, digits);
    } else {
      // The same millisecond (or a clock that stepped back): count up, carrying.
      let i = digits.length - 1;
      while (i >= 0 && digits[i] === 31) digits[i--] = 0;
      if (i < 0) throw new Error('ULID random part overflowed within one millisecond');
      digits[i]!++;
      if (i < digits.length - 1) head = encode(lastTime, digits);
    }
    return head + CROCKFORD[digits[digits.length - 1]!]!;
  };
}

function encode(time: number, digits: Uint8Array): string {
  let out = '';
  for (let t = time, i = 0; i < 10; i++, t = Math.floor(t / 32)) out = CROCKFORD[t % 32]! + out;
  for (let i = 0; i < digits.length - 1; i++) out += CROCKFORD[digits[i]!]!;
  return out;
}
