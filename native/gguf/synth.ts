// Model synthesizer: GGUF files of real llama / qwen2 shapes with seeded random weights and
// a real vocabulary copied from one of llama.cpp's vocab-only GGUFs. They load in llama.cpp
// like any converted model, so tests and the smoke run exercise the real code paths
// without downloading anything.
//
// Tensor names and ggml shapes follow llama.cpp's loaders (src/models/qwen2.cpp, llama.cpp):
// a weight matrix is [n_in, n_out]; 1-D tensors (norms, biases) are always F32, as in every
// llama.cpp file type. Without output.weight llama.cpp ties the output to token_embd.

import { basename } from "node:path";
import { encodeBf16, encodeF16 } from "./f16.ts";
import { fillNormalish, streamKey } from "./random.ts";
import { readGguf } from "./reader.ts";
import { GgmlType, LlamaFileType, elementCount } from "./types.ts";
import * as gv from "./values.ts";
import type { GgufMetadata } from "./values.ts";
import { vocabPath } from "./vocab.ts";
import { writeGguf, type GgufTensorSource } from "./writer.ts";

export type SynthArch = "qwen2" | "llama";
export type SynthPreset = "tiny" | "0.5b" | "1.5b" | "7b";
export type SynthType = "f32" | "f16" | "bf16";

/** Bumped whenever synthesized bytes change for the same options (fixture caches key on it). */
export const SYNTH_VERSION = 1;

export interface ModelShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  /** No output.weight: the output projection reuses token_embd. */
  tiedEmbeddings: boolean;
  contextLength: number;
  ropeFreqBase: number;
  rmsEpsilon: number;
}

// Qwen2.5 0.5B / 1.5B / 7B shapes; "tiny" keeps the real vocabulary but is otherwise small
// enough for CPU tests (head dim 16, grouped-query attention like the real ones).
const sizes: Record<SynthPreset, Pick<ModelShape, "hidden" | "layers" | "heads" | "kvHeads" | "ffn" | "contextLength"> & { qwenTied: boolean }> = {
  tiny: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, contextLength: 4096, qwenTied: true },
  "0.5b": { hidden: 896, layers: 24, heads: 14, kvHeads: 2, ffn: 4864, contextLength: 32768, qwenTied: true },
  "1.5b": { hidden: 1536, layers: 28, heads: 12, kvHeads: 2, ffn: 8960, contextLength: 32768, qwenTied: true },
  "7b": { hidden: 3584, layers: 28, heads: 28, kvHeads: 4, ffn: 18944, contextLength: 32768, qwenTied: false },
};

export function presetShape(arch: SynthArch, preset: SynthPreset): ModelShape {
  const { qwenTied, ...size } = sizes[preset];
  return arch === "qwen2"
    ? { ...size, tiedEmbeddings: qwenTied, ropeFreqBase: 1e6, rmsEpsilon: 1e-6 }
    : { ...size, tiedEmbeddings: false, ropeFreqBase: 5e5, rmsEpsilon: 1e-5 };
}

/** Vocabulary used when none is given: qwen2's own; for llama the small SentencePiece one (32k tokens, adds BOS). */
export const DEFAULT_VOCAB: Record<SynthArch, string> = { qwen2: "qwen2", llama: "llama-spm" };

export interface SynthOptions {
  arch: SynthArch;
  preset: SynthPreset;
  /** A vocab GGUF path, or a llama.cpp vocab name ("qwen2", "llama-spm", "llama-bpe"). */
  vocab?: string;
  /** Type of the 2-D weights; 1-D tensors are always F32. Default f16. */
  type?: SynthType;
  out: string;
  /** Default 0. Same options and seed give a byte-identical file. */
  seed?: number;
  /** Overrides on the preset's shape (e.g. hidden 256 so K-quants with 256-element blocks apply). */
  shape?: Partial<ModelShape>;
  alignment?: number;
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

/** How a tensor is initialised: ones (norm gains) or normal-ish noise with this std. */
type Init = { kind: "ones" } | { kind: "normal"; std: number };

export interface SynthTensorPlan {
  name: string;
  dims: number[];
  init: Init;
}

/**
 * The tensors llama.cpp expects for this architecture and shape, in file order, with their
 * initialisation. Matrices get std 1/sqrt(n_in) so every projection keeps activations near
 * unit scale (~0.02 at the real sizes, larger at tiny); embeddings and output get 2/sqrt(hidden)
 * so logits have a std of about 2: peaked enough to matter, far from one-hot.
 */
export function planTensors(arch: SynthArch, shape: ModelShape, vocabSize: number): SynthTensorPlan[] {
  const headDim = shape.hidden / shape.heads;
  const qDim = headDim * shape.heads;
  const kvDim = headDim * shape.kvHeads;
  const matrix = (name: string, nIn: number, nOut: number): SynthTensorPlan => ({
    name,
    dims: [nIn, nOut],
    init: { kind: "normal", std: 1 / Math.sqrt(nIn) },
  });
  const ones = (name: string, n: number): SynthTensorPlan => ({ name, dims: [n], init: { kind: "ones" } });
  const bias = (name: string, n: number): SynthTensorPlan => ({ name, dims: [n], init: { kind: "normal", std: 0.02 } });
  const embeddingStd = 2 / Math.sqrt(shape.hidden);

  const plan: SynthTensorPlan[] = [
    { name: "token_embd.weight", dims: [shape.hidden, vocabSize], init: { kind: "normal", std: embeddingStd } },
  ];
  for (let i = 0; i < shape.layers; i++) {
    const blk = `blk.${i}`;
    plan.push(ones(`${blk}.attn_norm.weight`, shape.hidden));
    plan.push(matrix(`${blk}.attn_q.weight`, shape.hidden, qDim));
    plan.push(matrix(`${blk}.attn_k.weight`, shape.hidden, kvDim));
    plan.push(matrix(`${blk}.attn_v.weight`, shape.hidden, kvDim));
    if (arch === "qwen2") {
      plan.push(bias(`${blk}.attn_q.bias`, qDim));
      plan.push(bias(`${blk}.attn_k.bias`, kvDim));
      plan.push(bias(`${blk}.attn_v.bias`, kvDim));
    }
    plan.push(matrix(`${blk}.attn_output.weight`, qDim, shape.hidden));
    plan.push(ones(`${blk}.ffn_norm.weight`, shape.hidden));
    plan.push(matrix(`${blk}.ffn_gate.weight`, shape.hidden, shape.ffn));
    plan.push(matrix(`${blk}.ffn_up.weight`, shape.hidden, shape.ffn));
    plan.push(matrix(`${blk}.ffn_down.weight`, shape.ffn, shape.hidden));
  }
  plan.push(ones("output_norm.weight", shape.hidden));
  if (!shape.tiedEmbeddings) {
    plan.push({ name: "output.weight", dims: [shape.hidden, vocabSize], init: { kind: "normal", std: embeddingStd } });
  }
  return plan;
}

function checkShape(shape: ModelShape): void {
  const ints: (keyof ModelShape)[] = ["hidden", "layers", "heads", "kvHeads", "ffn", "contextLength"];
  for (const k of ints) {
    const v = shape[k] as number;
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`model shape: ${k} must be a positive integer, got ${v}`);
  }
  if (shape.hidden % shape.heads !== 0) throw new Error(`model shape: hidden ${shape.hidden} is not a multiple of heads ${shape.heads}`);
  if (shape.heads % shape.kvHeads !== 0) throw new Error(`model shape: heads ${shape.heads} is not a multiple of kvHeads ${shape.kvHeads}`);
  if ((shape.hidden / shape.heads) % 2 !== 0) throw new Error(`model shape: head dim ${shape.hidden / shape.heads} must be even for RoPE`);
}

const FILE_TYPES: Record<SynthType, { tensor: number; file: number }> = {
  f32: { tensor: GgmlType.F32, file: LlamaFileType.ALL_F32 },
  f16: { tensor: GgmlType.F16, file: LlamaFileType.MOSTLY_F16 },
  bf16: { tensor: GgmlType.BF16, file: LlamaFileType.MOSTLY_BF16 },
};

/** Elements generated per chunk: 4 MB of f32 scratch, whatever the model size. */
const CHUNK_ELEMENTS = 1 << 20;

function* tensorChunks(plan: SynthTensorPlan, type: number, seed: number): Generator<ArrayBufferView> {
  const total = elementCount(plan.dims);
  const key = streamKey(seed, plan.name);
  const scratch = type === GgmlType.F32 ? undefined : new Float32Array(Math.min(CHUNK_ELEMENTS, total));
  for (let start = 0; start < total; start += CHUNK_ELEMENTS) {
    const n = Math.min(CHUNK_ELEMENTS, total - start);
    // Fresh output per chunk: the writer may still be writing the previous one.
    const values = scratch ? scratch.subarray(0, n) : new Float32Array(n);
    if (plan.init.kind === "ones") values.fill(1);
    else fillNormalish(values, key, start, plan.init.std);
    if (type === GgmlType.F32) {
      yield values;
    } else {
      const half = new Uint16Array(n);
      (type === GgmlType.F16 ? encodeF16 : encodeBf16)(values, half);
      yield half;
    }
  }
}

function resolveVocab(arch: SynthArch, vocab: string | undefined): string {
  const v = vocab ?? DEFAULT_VOCAB[arch];
  return v.endsWith(".gguf") || v.includes("/") ? v : vocabPath(v);
}

/** Builds the metadata: general.*, the architecture's hyper-parameters, provenance, tokenizer.*. */
function buildMetadata(opts: SynthOptions, shape: ModelShape, vocabFile: string, vocabMeta: GgufMetadata, vocabSize: number): GgufMetadata {
  const { arch, preset } = opts;
  const type = opts.type ?? "f16";
  const headDim = shape.hidden / shape.heads;
  const m: GgufMetadata = new Map();
  m.set("general.architecture", gv.str(arch));
  m.set("general.type", gv.str("model"));
  m.set("general.name", gv.str(`selftune-synth-${arch}-${preset}`));
  m.set("general.description", gv.str(`Random weights (seed ${opts.seed ?? 0}) of ${arch} ${preset} shape with the ${basename(vocabFile)} vocabulary; synthesized by selftune for tests`));
  m.set("general.file_type", gv.u32(FILE_TYPES[type].file));
  m.set("general.quantization_version", gv.u32(2));
  m.set(`${arch}.vocab_size`, gv.u32(vocabSize));
  m.set(`${arch}.context_length`, gv.u32(shape.contextLength));
  m.set(`${arch}.embedding_length`, gv.u32(shape.hidden));
  m.set(`${arch}.block_count`, gv.u32(shape.layers));
  m.set(`${arch}.feed_forward_length`, gv.u32(shape.ffn));
  m.set(`${arch}.attention.head_count`, gv.u32(shape.heads));
  m.set(`${arch}.attention.head_count_kv`, gv.u32(shape.kvHeads));
  m.set(`${arch}.rope.dimension_count`, gv.u32(headDim));
  m.set(`${arch}.rope.freq_base`, gv.f32(shape.ropeFreqBase));
  m.set(`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(shape.rmsEpsilon));
  m.set("selftune.synthetic", gv.bool(true));
  m.set("selftune.synth.version", gv.u32(SYNTH_VERSION));
  m.set("selftune.synth.preset", gv.str(preset));
  m.set("selftune.synth.seed", gv.u32(opts.seed ?? 0));
  m.set("selftune.synth.vocab", gv.str(basename(vocabFile)));
  // Every tokenizer key, the chat template included: a base model may carry one, and our
  // loader must be seen to ignore it.
  for (const [key, value] of vocabMeta) if (key.startsWith("tokenizer.")) m.set(key, value);
  return m;
}

/** The shape after applying overrides, validated. */
export function resolveShape(opts: Pick<SynthOptions, "arch" | "preset" | "shape">): ModelShape {
  const shape = { ...presetShape(opts.arch, opts.preset), ...opts.shape };
  checkShape(shape);
  return shape;
}

/**
 * Writes a random-weight model (atomically: temp file + rename) and returns its path.
 * Streams tensor by tensor in 1M-element chunks, so memory stays small even for 7b.
 */
export async function synthesizeModel(opts: SynthOptions): Promise<string> {
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer in 0..2^32-1, got ${seed}`);
  const type = opts.type ?? "f16";
  if (!(type in FILE_TYPES)) throw new Error(`type must be f32, f16 or bf16, got ${type}`);
  if (!(opts.preset in sizes)) throw new Error(`unknown preset "${opts.preset}"; one of ${Object.keys(sizes).join(", ")}`);
  if (opts.arch !== "qwen2" && opts.arch !== "llama") throw new Error(`unknown arch "${opts.arch}"; qwen2 or llama`);
  const shape = resolveShape(opts);

  const vocabFile = resolveVocab(opts.arch, opts.vocab);
  const vocab = readGguf(vocabFile);
  const tokens = vocab.metadata.get("tokenizer.ggml.tokens");
  if (!tokens || tokens.type !== "array" || tokens.itemType !== "string") {
    throw new Error(`${vocabFile}: no tokenizer.ggml.tokens string array; not a vocabulary GGUF`);
  }
  const vocabSize = tokens.value.length;

  const tensorType = FILE_TYPES[type].tensor;
  const tensors: GgufTensorSource[] = planTensors(opts.arch, shape, vocabSize).map((plan) => {
    const t = plan.dims.length >= 2 ? tensorType : GgmlType.F32;
    return { name: plan.name, dims: plan.dims, type: t, data: () => tensorChunks(plan, t, seed) };
  });
  const written = await writeGguf(opts.out, {
    metadata: buildMetadata(opts, shape, vocabFile, vocab.metadata, vocabSize),
    tensors,
    alignment: opts.alignment,
    onProgress: opts.onProgress,
  });
  return written.path;
}
