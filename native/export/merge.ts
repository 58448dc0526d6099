// Merging a LoRA adapter into its base: W' = W + s·B·A for every adapted weight, the rest
// of the base copied byte for byte.
//
// In ggml terms a weight is [n_in, n_out] (row-major n_out x n_in), A [n_in, r] (r x n_in),
// B [r, n_out] (n_out x r), and llama.cpp computes W·x + s·B·(A·x) with s = alpha / r
// (lora.ts). So row o of W' is W[o] + s·Σ_k B[o][k]·A[k]: computed in f32 (double
// accumulation per row, then rounded once) from the base dequantized to f32, then stored as
// `dtype`. Untouched tensors keep their type and bytes, so a quantized base stays quantized
// except for the adapted projections.
import { GgufError, readTensorBytes, type GgufFile, type GgufTensorInfo } from "../gguf/reader.ts";
import type { GgufTensorSource } from "../gguf/writer.ts";
import { encodeBf16, encodeF16 } from "../gguf/f16.ts";
import { GgmlType, ggmlTypeName } from "../gguf/types.ts";
import { dequantize } from "./dequantize.ts";
import type { LoraAdapter, LoraPair } from "./lora.ts";

export type MergedType = "f32" | "f16" | "bf16";

const FLOAT_TYPES: Record<number, MergedType> = { [GgmlType.F32]: "f32", [GgmlType.F16]: "f16", [GgmlType.BF16]: "bf16" };
const TYPE_IDS: Record<MergedType, number> = { f32: GgmlType.F32, f16: GgmlType.F16, bf16: GgmlType.BF16 };

/** The type a merged weight is stored as: the base's when it is a float type, else f16 (or `forced`). */
export function mergedTypeOf(base: GgufTensorInfo, forced?: MergedType): MergedType {
  return forced ?? FLOAT_TYPES[base.type] ?? "f16";
}

/** W + scale·B·A as f32, row-major n_out x n_in. */
export function mergeWeight(w: Float32Array, pair: LoraPair, rank: number, scale: number): Float32Array {
  const { nIn, nOut, a, b } = pair;
  if (w.length !== nIn * nOut) throw new Error(`${pair.base}: base has ${w.length} values, the adapter expects ${nOut} x ${nIn}`);
  const out = new Float32Array(w.length);
  const row = new Float64Array(nIn);
  for (let o = 0; o < nOut; o++) {
    row.fill(0);
    for (let k = 0; k < rank; k++) {
      const c = b[o * rank + k]!;
      if (c === 0) continue;
      const ak = k * nIn;
      for (let i = 0; i < nIn; i++) row[i]! += c * a[ak + i]!;
    }
    const wo = o * nIn;
    for (let i = 0; i < nIn; i++) out[wo + i] = w[wo + i]! + scale * row[i]!;
  }
  return out;
}

function encode(values: Float32Array, type: MergedType): Uint8Array {
  if (type === "f32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bits = new Uint16Array(values.length);
  if (type === "f16") encodeF16(values, bits);
  else encodeBf16(values, bits);
  return new Uint8Array(bits.buffer);
}

const COPY_CHUNK = 64 << 20;

export interface MergePlan {
  tensors: GgufTensorSource[];
  /** base tensor name -> the type its merged weight is stored as */
  merged: Map<string, MergedType>;
}

/**
 * Tensor sources for the merged model, in the base's order. Every adapter tensor must name a
 * 2-D base tensor of matching shape; merged data is computed when the writer reaches it.
 */
export function planMerge(base: GgufFile, adapter: LoraAdapter, opts: { type?: MergedType } = {}): MergePlan {
  const pairs = new Map(adapter.pairs.map((p) => [p.base, p]));
  const merged = new Map<string, MergedType>();
  const tensors: GgufTensorSource[] = base.tensors.map((t) => {
    const pair = pairs.get(t.name);
    if (!pair) {
      return {
        name: t.name,
        dims: t.dims,
        type: t.type,
        data: function* () {
          for (let at = 0; at < t.byteSize; at += COPY_CHUNK) yield readTensorBytes(base, t, at, Math.min(t.byteSize, at + COPY_CHUNK));
        },
      };
    }
    if (t.dims.length !== 2 || t.dims[0] !== pair.nIn || t.dims[1] !== pair.nOut) {
      throw new GgufError(adapter.path, `"${t.name}": the adapter is for [${pair.nIn}, ${pair.nOut}], the base ${base.path} has [${t.dims.join(", ")}] (${ggmlTypeName(t.type)})`);
    }
    const type = mergedTypeOf(t, opts.type);
    merged.set(t.name, type);
    return {
      name: t.name,
      dims: t.dims,
      type: TYPE_IDS[type],
      data: function* () {
        const w = dequantize(t.type, readTensorBytes(base, t), t.elementCount);
        yield encode(mergeWeight(w, pair, adapter.rank, adapter.scale), type);
      },
    };
  });
  const missing = [...pairs.keys()].filter((n) => !merged.has(n));
  if (missing.length) throw new GgufError(adapter.path, `adapts tensors the base ${base.path} does not have: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? `, ... (${missing.length})` : ""}`);
  return { tensors, merged };
}
