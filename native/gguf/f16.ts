// IEEE half (f16) and bfloat16 conversions on raw bits, round-to-nearest-even.
//
// Written out on the bits rather than through Float16Array so the output is the same on
// every runtime (the tests use Float16Array, where present, as an independent oracle).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f16 bits of an f32 bit pattern, rounded to nearest, ties to even. */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;

  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is forced quiet so it cannot become Inf.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  // f32 bias 127, f16 bias 15.
  const halfExp = exp - 112;
  if (halfExp >= 31) return sign | 0x7c00;
  if (halfExp <= 0) {
    // f16 subnormal (or zero). Below half the smallest subnormal (2^-25) everything rounds
    // to zero; exactly 2^-25 is a tie that goes to the even value, zero, too.
    if (halfExp < -10) return sign;
    const full = mant | 0x800000;
    const drop = 14 - halfExp; // 13 mantissa bits plus the subnormal shift
    const halfway = 1 << (drop - 1);
    const rest = full & ((1 << drop) - 1);
    let q = full >>> drop;
    if (rest > halfway || (rest === halfway && (q & 1) === 1)) q += 1;
    return sign | q; // a carry into bit 10 correctly yields the smallest normal
  }
  let q = (halfExp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) === 1)) q += 1; // a carry may reach Inf, which is right
  return sign | q;
}

export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]!);
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** Encodes `src` into `dst` (same length) as f16 bits. */
export function encodeF16(src: Float32Array, dst: Uint16Array): void {
  if (dst.length < src.length) throw new Error(`encodeF16: destination holds ${dst.length} < ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToF16Bits(bits[i]!);
}

export function decodeF16(src: Uint16Array, dst: Float32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = f16BitsToF32(src[i]!);
}

/** bf16 bits of an f32 bit pattern: the top half, rounded to nearest even; NaN stays NaN. */
export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0]!);
}

export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

export function encodeBf16(src: Float32Array, dst: Uint16Array): void {
  if (dst.length < src.length) throw new Error(`encodeBf16: destination holds ${dst.length} < ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToBf16Bits(bits[i]!);
}
