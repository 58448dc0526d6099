// A llama.cpp GGUF LoRA adapter read into memory (small: r x (n_in + n_out) per projection),
// and the names of its projections in llama.cpp and in transformers.
//
// Format (../shared/FACTS.md, llama.cpp src/llama-adapter.cpp): general.type "adapter",
// adapter.type "lora", adapter.lora.alpha; tensors "<base tensor>.lora_a" of ggml shape
// [n_in, r] (row-major r x n_in) and "<base tensor>.lora_b" of [r, n_out] (row-major
// n_out x r). llama.cpp applies W·x + s·B·(A·x) with s = alpha / r (r = B.ne[0]; alpha 0:
// s = 1), times the per-call scale (1 here).
import { GgufError, readGguf, readTensorBytes, metaNumber, metaString, type GgufFile } from "../gguf/reader.ts";
import { dequantize } from "./dequantize.ts";

export interface LoraPair {
  /** The base tensor it adapts, e.g. "blk.0.attn_q.weight". */
  base: string;
  nIn: number;
  nOut: number;
  /** row-major r x nIn (= ggml [nIn, r]) */
  a: Float32Array;
  /** row-major nOut x r (= ggml [r, nOut]) */
  b: Float32Array;
}

export interface LoraAdapter {
  path: string;
  file: GgufFile;
  architecture: string;
  alpha: number;
  rank: number;
  /** alpha / rank, or 1 when alpha is 0 (llama.cpp's rule). */
  scale: number;
  pairs: LoraPair[];
}

export class AdapterFormatError extends Error {}

export function loraScale(alpha: number, rank: number): number {
  return alpha === 0 ? 1 : alpha / rank;
}

/** Reads and checks an adapter: matching a/b pairs, consistent rank, 2-D shapes. */
export function readLoraAdapter(path: string): LoraAdapter {
  const file = readGguf(path);
  const fail = (why: string): never => {
    throw new GgufError(path, why);
  };
  if (metaString(file, "general.type") !== "adapter" || metaString(file, "adapter.type") !== "lora") fail("not a LoRA adapter (general.type must be \"adapter\" and adapter.type \"lora\")");
  const architecture = metaString(file, "general.architecture") ?? fail("no general.architecture");
  const alpha = metaNumber(file, "adapter.lora.alpha") ?? 0;
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const pairs: LoraPair[] = [];
  let rank = -1;
  for (const t of file.tensors) {
    if (!t.name.endsWith(".lora_a")) {
      if (!t.name.endsWith(".lora_b")) fail(`tensor "${t.name}" is neither .lora_a nor .lora_b`);
      if (!byName.has(t.name.replace(/\.lora_b$/, ".lora_a"))) fail(`tensor "${t.name}" has no .lora_a`);
      continue;
    }
    const base = t.name.slice(0, -".lora_a".length);
    const tb = byName.get(`${base}.lora_b`) ?? fail(`tensor "${t.name}" has no .lora_b`);
    if (t.dims.length !== 2 || tb.dims.length !== 2) fail(`"${base}": LoRA tensors must be 2-D`);
    const [nIn, r] = t.dims as [number, number];
    const [rb, nOut] = tb.dims as [number, number];
    if (rb !== r) fail(`"${base}": lora_a has rank ${r}, lora_b ${rb}`);
    if (rank >= 0 && r !== rank) fail(`"${base}" has rank ${r}, other tensors ${rank}`);
    if (base === "token_embd.weight") fail(`a LoRA on token_embd (A and B swapped in llama.cpp) is not supported here`);
    rank = r;
    pairs.push({
      base,
      nIn,
      nOut,
      a: dequantize(t.type, readTensorBytes(file, t), t.elementCount),
      b: dequantize(tb.type, readTensorBytes(file, tb), tb.elementCount),
    });
  }
  if (pairs.length === 0) fail("the adapter has no LoRA tensors");
  return { path, file, architecture, alpha, rank, scale: loraScale(alpha, rank), pairs };
}

// ---- names: llama.cpp <-> transformers ------------------------------------------------

/** llama.cpp's per-layer tensor stem -> transformers' module path inside a decoder layer. */
export const HF_MODULES: Readonly<Record<string, string>> = {
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};
const GGUF_STEMS = new Map(Object.entries(HF_MODULES).map(([g, h]) => [h, g]));

/** "blk.3.attn_q.weight" -> {layer 3, module "self_attn.q_proj"}; null for anything else. */
export function hfModuleOf(baseTensor: string): { layer: number; module: string } | null {
  const m = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(baseTensor);
  const module = m ? HF_MODULES[m[2]!] : undefined;
  return m && module ? { layer: Number(m[1]), module } : null;
}

/** The inverse: layer 3, "self_attn.q_proj" -> "blk.3.attn_q.weight". */
export function ggufTensorOf(layer: number, module: string): string | null {
  const stem = GGUF_STEMS.get(module);
  return stem ? `blk.${layer}.${stem}.weight` : null;
}
