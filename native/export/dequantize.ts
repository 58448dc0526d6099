// Dequantization of GGUF tensor data to f32, for merging a LoRA into a quantized base.
//
// The export merges W' = W + s·B·A in f32, so every weight the adapter touches must be read as
// f32 first. The native addon's quantize() cannot do it (llama_model_quantize refuses to
// requantize an already-quantized tensor unless allow_requantize is set, which our addon does
// not expose), so the block formats we train on are decoded here, from the block layouts of
// ggml-common.h: what each block stores and how ggml's reference dequantizer combines it.
// Checked by test/export/dequantize.test.ts against llama.cpp's own quantizer (quantize an
// f32 model, decode, compare with the original within each format's rounding step) and by the
// merged model's logits against llama.cpp's on the quantized base (test/export/merge.test.ts).
import { f16BitsToF32, bf16BitsToF32 } from "../gguf/f16.ts";
import { GgmlType, ggmlTypeName, ggmlTypeLayout } from "../gguf/types.ts";

const QK_K = 256;

/** ggml types this module decodes. Others (IQ*, Q2_K, Q3_K, ...) are refused with their name. */
export const DEQUANTIZABLE: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]);

export class DequantizeError extends Error {}

/** `count` values of a tensor of ggml `type` stored in `bytes`, as f32. */
export function dequantize(type: number, bytes: Uint8Array, count: number): Float32Array {
  const layout = ggmlTypeLayout(type);
  if (!layout || !DEQUANTIZABLE.has(type)) {
    throw new DequantizeError(`cannot dequantize ${ggmlTypeName(type)} tensors (supported: ${[...DEQUANTIZABLE].map(ggmlTypeName).join(", ")})`);
  }
  const need = (count / layout.blockSize) * layout.blockBytes;
  if (count % layout.blockSize !== 0 || bytes.length < need) {
    throw new DequantizeError(`${layout.name}: ${count} values need ${need} bytes in whole blocks, got ${bytes.length}`);
  }
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = (at: number) => f16BitsToF32(dv.getUint16(at, true));
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < count; i++) out[i] = half(i * 2);
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < count; i++) out[i] = bf16BitsToF32(dv.getUint16(i * 2, true));
      return out;
    case GgmlType.Q8_0:
      // block: f16 scale d, 32 x int8; x = d * q.
      for (let b = 0, at = 0; b < count / 32; b++, at += 34) {
        const d = half(at);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(at + 2 + j);
      }
      return out;
    case GgmlType.Q4_0:
      // block: f16 d, 16 bytes of nibbles; low nibbles are elements 0..15, high 16..31, offset 8.
      for (let b = 0, at = 0; b < count / 32; b++, at += 18) {
        const d = half(at);
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 2 + j]!;
          out[b * 32 + j] = d * ((q & 0xf) - 8);
          out[b * 32 + j + 16] = d * ((q >> 4) - 8);
        }
      }
      return out;
    case GgmlType.Q4_K:
      decodeQ4K(bytes, dv, out, count);
      return out;
    case GgmlType.Q5_K:
      decodeQ5K(bytes, dv, out, count);
      return out;
    case GgmlType.Q6_K:
      decodeQ6K(bytes, dv, out, count);
      return out;
  }
  throw new DequantizeError(`unreachable: ${layout.name}`);
}

/**
 * The 6-bit scale and min of sub-block `j` (0..7) of a Q4_K/Q5_K super-block, packed in 12
 * bytes: sub-blocks 0..3 keep theirs in the low 6 bits of bytes j and j+4; 4..7 split theirs
 * between a nibble of byte j+4 and the top 2 bits of bytes j-4 and j.
 */
function scaleMin(bytes: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [bytes[at + j]! & 63, bytes[at + j + 4]! & 63];
  const hi = bytes[at + j + 4]!;
  return [(hi & 0xf) | ((bytes[at + j - 4]! >> 6) << 4), (hi >> 4) | ((bytes[at + j]! >> 6) << 4)];
}

// Q4_K super-block (144 bytes): f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles.
// 8 sub-blocks of 32: x = d·scale_j·q − dmin·min_j. Each 32 bytes of nibbles hold two
// sub-blocks: low nibbles the first, high nibbles the second.
function decodeQ4K(bytes: Uint8Array, dv: DataView, out: Float32Array, count: number): void {
  for (let b = 0; b < count / QK_K; b++) {
    const at = b * 144;
    const d = f16BitsToF32(dv.getUint16(at, true));
    const dmin = f16BitsToF32(dv.getUint16(at + 2, true));
    const qs = at + 16;
    for (let pair = 0; pair < 4; pair++) {
      const [s1, m1] = scaleMin(bytes, at + 4, 2 * pair);
      const [s2, m2] = scaleMin(bytes, at + 4, 2 * pair + 1);
      const base = b * QK_K + pair * 64;
      for (let l = 0; l < 32; l++) {
        const q = bytes[qs + pair * 32 + l]!;
        out[base + l] = d * s1 * (q & 0xf) - dmin * m1;
        out[base + 32 + l] = d * s2 * (q >> 4) - dmin * m2;
      }
    }
  }
}

// Q5_K super-block (176 bytes): as Q4_K plus 32 bytes qh of fifth bits (after the scales,
// before the nibbles): bit 2·pair of qh[l] tops the low-nibble value, bit 2·pair+1 the high.
function decodeQ5K(bytes: Uint8Array, dv: DataView, out: Float32Array, count: number): void {
  for (let b = 0; b < count / QK_K; b++) {
    const at = b * 176;
    const d = f16BitsToF32(dv.getUint16(at, true));
    const dmin = f16BitsToF32(dv.getUint16(at + 2, true));
    const qh = at + 16;
    const qs = at + 48;
    for (let pair = 0; pair < 4; pair++) {
      const [s1, m1] = scaleMin(bytes, at + 4, 2 * pair);
      const [s2, m2] = scaleMin(bytes, at + 4, 2 * pair + 1);
      const lowBit = 1 << (2 * pair);
      const highBit = 2 << (2 * pair);
      const base = b * QK_K + pair * 64;
      for (let l = 0; l < 32; l++) {
        const q = bytes[qs + pair * 32 + l]!;
        const h = bytes[qh + l]!;
        out[base + l] = d * s1 * ((q & 0xf) + (h & lowBit ? 16 : 0)) - dmin * m1;
        out[base + 32 + l] = d * s2 * ((q >> 4) + (h & highBit ? 16 : 0)) - dmin * m2;
      }
    }
  }
}

// Q6_K super-block (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits),
// 16 int8 scales, f16 d last. 16 sub-blocks of 16: x = d·scale·(q − 32). Each half of 128
// values uses 64 bytes of ql and 32 of qh: value l (0..31) of its four quarters takes the low
// or high nibble of ql[l] / ql[l+32] and the bit pair 0, 2, 4, 6 of qh[l].
function decodeQ6K(bytes: Uint8Array, dv: DataView, out: Float32Array, count: number): void {
  for (let b = 0; b < count / QK_K; b++) {
    const at = b * 210;
    const d = f16BitsToF32(dv.getUint16(at + 208, true));
    for (let halfIdx = 0; halfIdx < 2; halfIdx++) {
      const ql = at + halfIdx * 64;
      const qh = at + 128 + halfIdx * 32;
      const sc = at + 192 + halfIdx * 8;
      const base = b * QK_K + halfIdx * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const lo1 = bytes[ql + l]!;
        const lo2 = bytes[ql + l + 32]!;
        const h = bytes[qh + l]!;
        const q1 = ((lo1 & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((lo2 & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((lo1 >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((lo2 >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[base + l] = d * dv.getInt8(sc + is) * q1;
        out[base + l + 32] = d * dv.getInt8(sc + is + 2) * q2;
        out[base + l + 64] = d * dv.getInt8(sc + is + 4) * q3;
        out[base + l + 96] = d * dv.getInt8(sc + is + 6) * q4;
      }
    }
  }
}
