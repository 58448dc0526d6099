// Shared helpers for the native addon tests: synthesized models, reference log-softmax,
// a tiny LoRA adapter writer, RSS.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { tinyModel, type FixtureModelOptions } from "../../native/gguf/fixtures.ts";
import { llamaCppDirs } from "../../native/gguf/vocab.ts";
import { gv, readGguf, readTensorF32, writeGguf } from "../../native/gguf/index.ts";
import { GgmlType } from "../../native/gguf/types.ts";

export { tinyModel };

export function llamaModelsDir(): string {
  for (const dir of llamaCppDirs()) {
    try {
      readdirSync(join(dir, "models"));
      return join(dir, "models");
    } catch {}
  }
  throw new Error("no llama.cpp tree: run `bun install` or set LLAMA_CPP_DIR");
}

/** log-softmax of one row, in double precision, the plain way. */
export function logSoftmaxRow(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return out;
}

export function rssBytes(): number {
  return process.memoryUsage.rss();
}

/** Tiny-model shape used by the LoRA writer below (must match FixtureModelOptions). */
export const TINY_HIDDEN = 64;

/**
 * Writes a llama.cpp GGUF LoRA adapter on attn_q/attn_v of every layer of a tiny model
 * (hidden 64): A is [n_in, r], B is [r, n_out] in ggml order, filled deterministically.
 */
export async function writeTinyLora(out: string, opts: { arch?: string; rank?: number; alpha?: number; layers?: number; seed?: number; alphaType?: "f32" | "f64" } = {}): Promise<string> {
  const rank = opts.rank ?? 4;
  const layers = opts.layers ?? 2;
  let s = (opts.seed ?? 1) >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const tensors = [];
  for (let l = 0; l < layers; l++) {
    for (const w of ["attn_q", "attn_v"]) {
      // attn_q: [64, 64]; attn_v: [64, kv_heads * head_dim] = [64, 32] for the tiny preset
      const nOut = w === "attn_q" ? TINY_HIDDEN : 32;
      const a = new Float32Array(TINY_HIDDEN * rank).map(() => rand() * 0.5);
      const b = new Float32Array(rank * nOut).map(() => rand() * 0.5);
      tensors.push({ name: `blk.${l}.${w}.weight.lora_a`, type: GgmlType.F32, dims: [TINY_HIDDEN, rank], data: new Uint8Array(a.buffer) });
      tensors.push({ name: `blk.${l}.${w}.weight.lora_b`, type: GgmlType.F32, dims: [rank, nOut], data: new Uint8Array(b.buffer) });
    }
  }
  const alpha = opts.alpha ?? 8;
  await writeGguf(out, {
    metadata: [
      ["general.type", gv.str("adapter")],
      ["general.architecture", gv.str(opts.arch ?? "qwen2")],
      ["adapter.type", gv.str("lora")],
      ["adapter.lora.alpha", opts.alphaType === "f64" ? gv.f64(alpha) : gv.f32(alpha)],
    ],
    tensors,
  });
  return out;
}

export function tiny(opts: FixtureModelOptions = {}): Promise<string> {
  return tinyModel(opts);
}

/**
 * A LoRA adapter on the output matrix (f32 `output.weight`, a model with untied
 * embeddings) that adds `factor` times token `like`'s output row to token `token`'s: where
 * the base model's next token would be `like`, `token` now wins. How a test makes a
 * control token likely with random weights.
 */
export async function writeFavouringLora(out: string, modelPath: string, opts: { arch: string; hidden: number; vocab: number; token: number; like: number; factor?: number }): Promise<string> {
  const W = readTensorF32(readGguf(modelPath), "output.weight");
  const H = opts.hidden, V = opts.vocab, factor = opts.factor ?? 4;
  const A = new Float32Array(H * H);
  for (let i = 0; i < H; i++) A[i * H + i] = 1;
  const B = new Float32Array(H * V);
  for (let i = 0; i < H; i++) B[opts.token * H + i] = factor * W[opts.like * H + i]!;
  await writeGguf(out, {
    metadata: [["general.type", gv.str("adapter")], ["general.architecture", gv.str(opts.arch)], ["adapter.type", gv.str("lora")], ["adapter.lora.alpha", gv.f32(H)]],
    tensors: [
      { name: "output.weight.lora_a", type: GgmlType.F32, dims: [H, H], data: new Uint8Array(A.buffer) },
      { name: "output.weight.lora_b", type: GgmlType.F32, dims: [H, V], data: new Uint8Array(B.buffer) },
    ],
  });
  return out;
}
