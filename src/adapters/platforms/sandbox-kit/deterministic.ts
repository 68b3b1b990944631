/**
 * Deterministic pseudo-randomness: every generated value is a pure function of (seed, key, index),
 * so a record can be produced on its own, in any order, without generating the ones before it.
 */

/** FNV-1a over the string's UTF-16 code units, finished with a mixer: a 32-bit key for a name. */
export function hashText(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return mix(hash, 0x2545f491);
}

/** Murmur3's finaliser over two 32-bit inputs: a well-spread 32-bit result. */
export function mix(a: number, b: number): number {
  let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A short stream of draws for one record: `new Draws(key, index)` always yields the same sequence. */
export class Draws {
  private state: number;

  constructor(key: number, index: number) {
    this.state = mix(key, index);
  }

  /** A uint32. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    return mix(this.state, 0x1b873593);
  }

  /** An integer in [0, bound). */
  below(bound: number): number {
    return Math.floor((this.next() / 4294967296) * bound);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  /** A float in [0, 1), for choosing among weighted options (never for an amount). */
  unit(): number {
    return this.next() / 4294967296;
  }

  pick<T>(options: readonly T[]): T {
    return options[this.below(options.length)]!;
  }
}
