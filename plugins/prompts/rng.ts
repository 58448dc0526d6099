// Seeded randomness for prompt building and test-set making.
//
// Every random choice is derived from (seed, labels...) through sha256, never
// from a stream shared across items: the few-shot examples chosen for one
// instruction depend only on the seed and that instruction's key, so shards,
// resumed runs and re-orderings all build byte-identical prompts.

/** A uint32 derived from a seed and any labels ("response", an instruction id, ...). */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  const h = new Bun.CryptoHasher("sha256").update([seed, ...labels].join("\u241f")).digest("hex");
  return parseInt(h.slice(0, 8), 16) >>> 0;
}

/** The murmur3 finalizer: a cheap, well-mixing bijection on uint32. */
export function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A small deterministic generator: a Weyl sequence passed through fmix32.
 *  Not cryptographic; plenty for shuffles and picks. */
export class Rng {
  private state: number;
  constructor(seed: number, ...labels: (string | number)[]) {
    this.state = labels.length ? deriveSeed(seed, ...labels) : seed >>> 0;
  }
  /** Next uint32. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return fmix32(this.state);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Uniform integer in [0, n), without modulo bias (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x: number;
    do x = this.nextU32();
    while (x >= limit);
    return x % n;
  }
  /** Integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.pick: empty list");
    return items[this.int(items.length)]!;
  }
  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
  /** k distinct items in random order (partial Fisher-Yates). */
  sample<T>(items: readonly T[], k: number): T[] {
    if (k > items.length) throw new Error(`Rng.sample: asked for ${k} of ${items.length} items`);
    const out = items.slice();
    for (let i = 0; i < k; i++) {
      const j = i + this.int(out.length - i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out.slice(0, k);
  }
}
