// Seeded, counter-based random numbers for synthetic weights. Element i of a tensor depends
// only on (seed, tensor name, i), so chunks can be generated in any order or size and the
// file is byte-identical however it is streamed.

const GOLDEN = 0x9e3779b9;

/** 32-bit avalanche mix (the murmur3 finalizer): close inputs give unrelated outputs. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A 32-bit stream key for one tensor: FNV-1a over the name, folded with the seed. */
export function streamKey(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ mix32(seed >>> 0);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return mix32(h);
}

// Sum of four 16-bit uniforms minus its mean has variance 4 * (65536^2 - 1) / 12 ~ 65536^2 / 3.
const IRWIN_HALL_MEAN = 4 * 32767.5;
const IRWIN_HALL_UNIT = Math.sqrt(3) / 65536;

/**
 * Fills `out` with elements [start, start + out.length) of the stream: an Irwin-Hall (sum of
 * four uniforms) approximation of N(0, std^2), bounded at +-3.46 std so no outlier can
 * overflow f16 or blow up activations.
 */
export function fillNormalish(out: Float32Array, key: number, start: number, std: number): void {
  const scale = std * IRWIN_HALL_UNIT;
  let ctr = (key + Math.imul(2 * start, GOLDEN)) | 0;
  for (let i = 0; i < out.length; i++) {
    ctr = (ctr + GOLDEN) | 0;
    const a = mix32(ctr);
    ctr = (ctr + GOLDEN) | 0;
    const b = mix32(ctr);
    out[i] = ((a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16) - IRWIN_HALL_MEAN) * scale;
  }
}

/**
 * mulberry32: a small seeded stream of uniforms in [0, 1), the same on every machine. For
 * sequential draws (datasets, mutation corpora, kill schedules); weights use the
 * counter-based stream above.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
