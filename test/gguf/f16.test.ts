import { describe, expect, test } from "bun:test";
import {
  bf16BitsToF32,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../../native/gguf/f16.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => {
  f32[0] = x;
  return u32[0]!;
};
const fromBits = (b: number) => {
  u32[0] = b >>> 0;
  return f32[0]!;
};
const hex = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;

describe("f32 -> f16, round to nearest even", () => {
  const cases: [string, number, number][] = [
    ["+0", 0, 0x0000],
    ["-0", -0, 0x8000],
    ["1", 1, 0x3c00],
    ["-2", -2, 0xc000],
    ["max finite 65504", 65504, 0x7bff],
    ["65519.99 rounds down to max", 65519.99, 0x7bff],
    ["65520 is a tie with 65536: goes to even (Inf)", 65520, 0x7c00],
    ["huge -> Inf", 1e10, 0x7c00],
    ["-huge -> -Inf", -1e10, 0xfc00],
    ["+Inf", Infinity, 0x7c00],
    ["-Inf", -Infinity, 0xfc00],
    ["smallest normal 2^-14", 2 ** -14, 0x0400],
    ["largest subnormal", 1023 * 2 ** -24, 0x03ff],
    ["smallest subnormal 2^-24", 2 ** -24, 0x0001],
    ["-smallest subnormal", -(2 ** -24), 0x8001],
    ["2^-25 is a tie with 0: goes to even (0)", 2 ** -25, 0x0000],
    ["just above 2^-25 rounds up to 2^-24", fromBits(bitsOf(2 ** -25) + 1), 0x0001],
    ["1.5 * 2^-24 is a tie: goes to even (2 * 2^-24)", 1.5 * 2 ** -24, 0x0002],
    ["2.5 * 2^-24 is a tie: goes to even (2 * 2^-24)", 2.5 * 2 ** -24, 0x0002],
    ["subnormal carrying into the smallest normal", 1023.5 * 2 ** -24, 0x0400],
    ["f32 subnormal -> 0", 1e-40, 0x0000],
    ["-f32 subnormal -> -0", -1e-40, 0x8000],
    ["1 + 2^-11 is a tie: goes to even (1)", 1 + 2 ** -11, 0x3c00],
    ["1 + 3 * 2^-11 is a tie: goes to even (1 + 2^-9)", 1 + 3 * 2 ** -11, 0x3c02],
    ["just above the 1 + 2^-11 tie rounds up", fromBits(bitsOf(1 + 2 ** -11) + 1), 0x3c01],
    ["just below the 1 + 3 * 2^-11 tie rounds down", fromBits(bitsOf(1 + 3 * 2 ** -11) - 1), 0x3c01],
    ["mantissa carry into exponent: 2 - 2^-12 -> 2", 2 - 2 ** -12, 0x4000],
    ["0.1", 0.1, 0x2e66],
    ["1/3", 1 / 3, 0x3555],
  ];
  for (const [name, value, expected] of cases) {
    test(name, () => {
      expect(hex(f32ToF16Bits(value))).toBe(hex(expected));
    });
  }

  test("NaN stays NaN (quiet), sign kept, never becomes Inf", () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0x7f802000]) {
      const h = f32BitsToF16Bits(bits);
      expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
      expect(h & 0x8000).toBe((bits >>> 16) & 0x8000);
      expect(Number.isNaN(f16BitsToF32(h))).toBe(true);
    }
  });

  test("every f16 value survives f16 -> f32 -> f16", () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = f16BitsToF32(h);
      if (Number.isNaN(x)) continue;
      if (f32ToF16Bits(x) !== h) throw new Error(`${hex(h)} -> ${x} -> ${hex(f32ToF16Bits(x))}`);
    }
  });

  test("decodes known patterns", () => {
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
  });

  // Float16Array rounds to nearest even by specification: an independent oracle.
  const oracle = typeof Float16Array === "function" ? new Float16Array(1) : undefined;
  const oracleBits = oracle ? new Uint16Array(oracle.buffer) : undefined;
  test.skipIf(!oracle)("agrees with Float16Array on millions of f32 patterns", () => {
    const check = (bits: number) => {
      const x = fromBits(bits);
      if (Number.isNaN(x)) return;
      oracle![0] = x;
      const want = oracleBits![0]!;
      const got = f32BitsToF16Bits(bits >>> 0);
      if (got !== want) throw new Error(`f32 bits ${bits.toString(16)} (${x}): got ${hex(got)}, want ${hex(want)}`);
    };
    for (let h = 0; h < 0x10000; h++) {
      oracleBits![0] = h;
      const want = oracle![0]!;
      const got = f16BitsToF32(h);
      if (!Object.is(got, want) && !(Number.isNaN(got) && Number.isNaN(want))) throw new Error(`decode ${hex(h)}: ${got} vs ${want}`);
    }
    // A coarse sweep over the whole f32 space...
    for (let b = 0; b < 2 ** 32; b += 1021) check(b);
    // ...and every pattern near each f16 rounding boundary in the interesting exponents.
    for (let exp = 100; exp <= 144; exp++) {
      for (let m = 0; m < 1 << 10; m++) {
        const base = (exp << 23) | (m << 13);
        for (const d of [-1, 0, 1, 0xfff, 0x1000, 0x1001, 0x1fff]) {
          check(base + d);
          check((base + d) | 0x80000000);
        }
      }
    }
  });

  test("bulk encode and decode agree with the scalar functions", () => {
    const src = new Float32Array([0, -0, 1, -1.5, 65504, 1e-7, 3.14159, -1e9, NaN, Infinity]);
    const half = new Uint16Array(src.length);
    encodeF16(src, half);
    expect(Array.from(half)).toEqual(Array.from(src, (x) => f32ToF16Bits(x)));
    const back = new Float32Array(src.length);
    decodeF16(half, back);
    expect(back[2]).toBe(1);
    expect(back[3]).toBe(-1.5);
    expect(back[6]).toBeCloseTo(3.14159, 2);
    expect(Number.isNaN(back[8]!)).toBe(true);
  });
});

describe("f32 -> bf16", () => {
  test("rounds to nearest even on the dropped 16 bits", () => {
    expect(f32BitsToBf16Bits(0x3f800000)).toBe(0x3f80); // 1
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80); // tie, even stays
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82); // tie, odd rounds up
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81); // above tie
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // max f32 -> Inf
    expect(f32BitsToBf16Bits(0xff800000)).toBe(0xff80); // -Inf
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
  });
  test("NaN stays NaN", () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001]) {
      expect(Number.isNaN(bf16BitsToF32(f32BitsToBf16Bits(bits)))).toBe(true);
    }
  });
  test("bulk encode matches scalar", () => {
    const src = new Float32Array([1, 2.5, -3.25e-20, 123456789]);
    const dst = new Uint16Array(4);
    encodeBf16(src, dst);
    expect(Array.from(dst)).toEqual(Array.from(src, (x) => f32ToBf16Bits(x)));
    expect(bf16BitsToF32(dst[1]!)).toBe(2.5);
  });
});
