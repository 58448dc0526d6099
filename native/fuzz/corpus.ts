// A seeded corpus of broken GGUF files, for the mutation test (test/native/gguf-mutation.test.ts)
// and as seeds for the coverage-guided fuzzer (native/fuzz/run.ts).
//
// Bases: tiny llama and qwen2 models (hidden 32, 2 layers, a 512-token SentencePiece
// vocabulary cut from llama.cpp's llama-spm) and a LoRA adapter for each. Mutants of each:
//   truncations at many offsets; byte flips in the header, metadata and tensor infos;
//   extreme values (0, 1, -1, huge, NaN, +-inf, denormal) written over every header,
//   metadata and tensor-info field in place; and rewritten files with one setting changed
//   (each hyper-parameter at odd values and wrong types, keys removed, vocabularies with
//   duplicate or NaN entries, tensors missing, extra, reshaped or retyped, adapters with
//   NaN alpha, mismatched ranks or shapes).
// The same seed gives the same files.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gv, readGguf, readTensorBytes, writeGguf } from "../gguf/index.ts";
import { mulberry32 } from "../gguf/random.ts";
import { synthesizeModel } from "../gguf/synth.ts";
import { GgmlType } from "../gguf/types.ts";
import type { GgufMetadata, GgufValue } from "../gguf/values.ts";
import { vocabPath } from "../gguf/vocab.ts";
import { ggufLayout, type Field } from "./layout.ts";

export type Arch = "llama" | "qwen2";

export interface BaseFiles {
  vocab: string;
  model: Record<Arch, string>;
  adapter: Record<Arch, string>;
}

export interface Mutant {
  id: string;
  kind: "model" | "adapter";
  arch: Arch;
  /** What was changed, for failure messages. */
  what: string;
  /** Only the header, metadata or tensor infos changed (the weights are intact). */
  headerOnly: boolean;
  write(path: string): Promise<void>;
}

export const TINY_SHAPE = { hidden: 32, layers: 2, heads: 2, kvHeads: 1, ffn: 64, contextLength: 256 };
const VOCAB_SIZE = 512;
const RANK = 4;

/** The first 512 tokens of llama-spm (unk, bos, eos, the 256 byte tokens, common pieces). */
async function writeSmallVocab(path: string): Promise<void> {
  const src = readGguf(vocabPath("llama-spm"));
  const meta: GgufMetadata = new Map();
  for (const [k, v] of src.metadata) {
    if (!k.startsWith("tokenizer.") && k !== "general.architecture") continue;
    if (v.type === "array") {
      meta.set(k, { ...v, value: v.value.slice(0, VOCAB_SIZE) } as GgufValue);
    } else meta.set(k, v);
  }
  await writeGguf(path, { metadata: meta, tensors: [] });
}

function randomF32(n: number, next: () => number, scale: number): Uint8Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (next() - 0.5) * scale;
  return new Uint8Array(a.buffer);
}

async function writeAdapter(path: string, arch: Arch, seed: number): Promise<void> {
  const next = mulberry32(seed);
  const E = TINY_SHAPE.hidden;
  const KV = (TINY_SHAPE.hidden / TINY_SHAPE.heads) * TINY_SHAPE.kvHeads;
  const tensors = [];
  for (let l = 0; l < TINY_SHAPE.layers; l++) {
    for (const [w, nOut] of [["attn_q", E], ["attn_v", KV]] as const) {
      tensors.push({ name: `blk.${l}.${w}.weight.lora_a`, type: GgmlType.F32, dims: [E, RANK], data: randomF32(E * RANK, next, 0.5) });
      tensors.push({ name: `blk.${l}.${w}.weight.lora_b`, type: GgmlType.F32, dims: [RANK, nOut], data: randomF32(RANK * nOut, next, 0.5) });
    }
  }
  // token_embd's pair is transposed (A looked up by token id): A [r, n_vocab], B [r, n_embd].
  // Only for llama: qwen2's tiny model ties its output to token_embd, where llama.cpp cannot
  // apply such a pair (a mutant below adds one).
  if (arch === "llama") tensors.push({ name: "token_embd.weight.lora_a", type: GgmlType.F32, dims: [RANK, VOCAB_SIZE], data: randomF32(RANK * VOCAB_SIZE, next, 0.5) });
  if (arch === "llama") tensors.push({ name: "token_embd.weight.lora_b", type: GgmlType.F32, dims: [RANK, E], data: randomF32(RANK * E, next, 0.5) });
  await writeGguf(path, {
    metadata: [
      ["general.type", gv.str("adapter")],
      ["general.architecture", gv.str(arch)],
      ["adapter.type", gv.str("lora")],
      ["adapter.lora.alpha", gv.f32(8)],
    ],
    tensors,
  });
}

export async function writeBaseFiles(dir: string): Promise<BaseFiles> {
  mkdirSync(dir, { recursive: true });
  const vocab = join(dir, "vocab-512.gguf");
  await writeSmallVocab(vocab);
  const model = {} as Record<Arch, string>;
  const adapter = {} as Record<Arch, string>;
  for (const arch of ["llama", "qwen2"] as const) {
    model[arch] = await synthesizeModel({ arch, preset: "tiny", type: "f32", seed: 7, vocab, shape: TINY_SHAPE, out: join(dir, `base-${arch}.gguf`) });
    adapter[arch] = join(dir, `base-${arch}-lora.gguf`);
    await writeAdapter(adapter[arch], arch, 11);
  }
  return { vocab, model, adapter };
}

// ---- in-place byte mutations -----------------------------------------------------------

function bytesMutant(base: Uint8Array, m: Omit<Mutant, "write">, edit: (b: Uint8Array, dv: DataView) => Uint8Array | void): Mutant {
  return {
    ...m,
    write: async (path) => {
      const copy = base.slice();
      const out = edit(copy, new DataView(copy.buffer)) ?? copy;
      await Bun.write(path, out);
    },
  };
}

/** Values to write over a field of `size` bytes holding a `valueType` (when a metadata value). */
function extremes(f: Field): { label: string; put: (dv: DataView, at: number) => void }[] {
  const ints = (size: number) => {
    const all: [string, bigint][] = [["0", 0n], ["1", 1n], ["3", 3n], ["48", 48n], ["513", 513n], ["65536", 65536n], ["all-ones", (1n << BigInt(size * 8)) - 1n], ["high-bit", 1n << BigInt(size * 8 - 1)]];
    return all
      .filter(([, v]) => v < 1n << BigInt(size * 8))
      .map(([label, v]) => ({
        label,
        put: (dv: DataView, at: number) => {
          for (let i = 0; i < size; i++) dv.setUint8(at + i, Number((v >> BigInt(8 * i)) & 0xffn));
        },
      }));
  };
  if (f.kind === "value" && (f.valueType === "f32" || f.valueType === "f64")) {
    const values: [string, number][] = [["0", 0], ["-1", -1], ["nan", NaN], ["inf", Infinity], ["-inf", -Infinity], ["huge", 3e38], ["denormal", 1e-45], ["0.5", 0.5]];
    return values.map(([label, v]) => ({ label, put: (dv, at) => (f.size === 4 ? dv.setFloat32(at, v, true) : dv.setFloat64(at, v, true)) }));
  }
  if (f.kind === "value-type" || f.kind === "array-item-type" || f.kind === "tensor-type") {
    const ids = f.kind === "tensor-type" ? [0, 1, 2, 8, 12, 26, 30, 39, 99, -1] : [0, 4, 5, 6, 7, 8, 9, 10, 12, 13, -1];
    return ids.map((id) => ({ label: `type ${id}`, put: (dv, at) => dv.setInt32(at, id, true) }));
  }
  return ints(f.size);
}

function byteMutants(kind: Mutant["kind"], arch: Arch, name: string, base: Uint8Array, seed: number, counts: { cuts: number; flips: number; tensorsSampled: number }): Mutant[] {
  const next = mulberry32(seed);
  const layout = ggufLayout(base);
  const out: Mutant[] = [];
  const tag = `${name}`;
  // Truncations: most inside the header (where parsing happens), some in the data.
  for (let i = 0; i < counts.cuts; i++) {
    const end = i < counts.cuts * 0.7 ? Math.floor(next() * layout.headerEnd) : layout.headerEnd + Math.floor(next() * (base.length - layout.headerEnd));
    out.push(bytesMutant(base, { id: `${tag}-cut-${end}`, kind, arch, what: `truncated to ${end} bytes`, headerOnly: false }, (b) => b.subarray(0, end)));
  }
  for (let i = 0; i < counts.flips; i++) {
    const at = Math.floor(next() * layout.headerEnd);
    const mask = 1 + Math.floor(next() * 255);
    out.push(bytesMutant(base, { id: `${tag}-flip-${at}-${mask}`, kind, arch, what: `byte ${at} xor ${mask}`, headerOnly: true }, (b) => void (b[at] = b[at]! ^ mask)));
  }
  // Extreme values over every field of the header and metadata, and over the tensor infos
  // of a sample of tensors (their fields repeat from tensor to tensor).
  const tensorNames = [...new Set(layout.fields.filter((f) => f.kind === "n-dims").map((f) => f.owner))];
  const sampled = new Set(tensorNames.filter((_, i) => i === 0 || i === tensorNames.length - 1 || next() < counts.tensorsSampled / tensorNames.length));
  for (const f of layout.fields) {
    const isTensor = ["name-length", "n-dims", "dim", "tensor-type", "tensor-offset"].includes(f.kind);
    if (isTensor && !sampled.has(f.owner)) continue;
    for (const x of extremes(f)) {
      // A tensor's type says how its bytes read as numbers: a new type makes new weights,
      // which may be NaN (data, not settings).
      const headerOnly = f.kind !== "tensor-type";
      out.push(bytesMutant(base, { id: `${tag}-${f.kind}@${f.at}-${x.label}`, kind, arch, what: `${f.owner} ${f.kind} at byte ${f.at} = ${x.label}`, headerOnly }, (_b, dv) => x.put(dv, f.at)));
    }
  }
  return out;
}

// ---- rewritten files: one setting changed --------------------------------------------

interface Parts {
  metadata: GgufMetadata;
  tensors: { name: string; dims: number[]; type: number; data: Uint8Array }[];
}

function readParts(path: string): Parts {
  const f = readGguf(path);
  return { metadata: new Map(f.metadata), tensors: f.tensors.map((t) => ({ name: t.name, dims: [...t.dims], type: t.type, data: readTensorBytes(f, t) })) };
}

function rewriteMutant(basePath: string, m: Omit<Mutant, "write">, edit: (p: Parts) => void): Mutant {
  return {
    ...m,
    write: async (path) => {
      const p = readParts(basePath);
      edit(p);
      await writeGguf(path, { metadata: p.metadata, tensors: p.tensors.map((t) => ({ ...t })) });
    },
  };
}

function zeros(n: number): Uint8Array {
  return new Uint8Array(n);
}

function modelRewrites(arch: Arch, base: string): Mutant[] {
  const A = `${arch}.`;
  const out: Mutant[] = [];
  const add = (what: string, edit: (p: Parts) => void) =>
    out.push(rewriteMutant(base, { id: `${arch}-set-${out.length}`, kind: "model", arch, what, headerOnly: true }, edit));
  const set = (key: string, v: GgufValue | undefined) => (p: Parts) => (v === undefined ? p.metadata.delete(key) : p.metadata.set(key, v));

  const intKeys = ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv", "rope.dimension_count", "vocab_size", "attention.key_length", "attention.value_length", "expert_count", "expert_used_count", "nextn_predict_layers"];
  for (const k of intKeys) {
    for (const v of [0, 1, 3, 16, 48, 65536, 0xffffffff]) add(`${A}${k} = ${v}`, set(A + k, gv.u32(v)));
    add(`${A}${k} as i32`, set(A + k, gv.i32(2)));
    add(`${A}${k} as f32`, set(A + k, gv.f32(2)));
    add(`${A}${k} as string`, set(A + k, gv.str("2")));
    add(`${A}${k} as a per-layer array`, set(A + k, gv.numbers("u32", new Uint32Array([2, 2]))));
    add(`${A}${k} as an array of 3`, set(A + k, gv.numbers("u32", new Uint32Array([2, 2, 2]))));
    add(`${A}${k} removed`, set(A + k, undefined));
  }
  const floatKeys = ["rope.freq_base", "attention.layer_norm_rms_epsilon", "rope.scaling.factor", "rope.scale_linear", "rope.scaling.attn_factor", "attention.scale", "rope.freq_base_swa", "attention.layer_norm_epsilon", "logit_scale"];
  for (const k of floatKeys) {
    for (const v of [NaN, Infinity, -Infinity, 0, -1, 1e-40, 3e38]) add(`${A}${k} = ${v}`, set(A + k, gv.f32(v)));
    add(`${A}${k} as f64`, set(A + k, gv.f64(1e-5)));
    add(`${A}${k} as u32`, set(A + k, gv.u32(1)));
    add(`${A}${k} removed`, set(A + k, undefined));
  }
  for (const v of ["bogus", "yarn", "none", "longrope"]) add(`${A}rope.scaling.type = ${v}`, set(A + "rope.scaling.type", gv.str(v)));
  for (const v of ["bogus", "gpt2", "qwen2", "llama", "gemma", "phi3", "mamba", "bert"]) add(`general.architecture = ${v}`, set("general.architecture", gv.str(v)));
  // Another architecture llama.cpp knows, with its keys renamed to match: only the generic
  // checks apply, llama.cpp's own load does the rest (and must not abort).
  for (const v of ["olmo", "gemma", "phi3", "starcoder2", "granite", "stablelm", "internlm2", "mamba", "bert", "gpt2", "falcon", "deci"]) {
    add(`architecture ${v} with its keys renamed`, (p) => {
      p.metadata = new Map([...p.metadata].map(([k, x]) => [k.startsWith(A) ? v + "." + k.slice(A.length) : k, x]));
      p.metadata.set("general.architecture", gv.str(v));
    });
  }
  add("general.architecture removed", set("general.architecture", undefined));
  add("general.architecture as u32", set("general.architecture", gv.u32(1)));
  add("general.name as u32", set("general.name", gv.u32(1)));
  add("general.file_type as string", set("general.file_type", gv.str("f32")));

  // The vocabulary.
  const tokens = (p: Parts) => (p.metadata.get("tokenizer.ggml.tokens") as { value: string[] }).value;
  add("a duplicate token", (p) => void (tokens(p)[300] = tokens(p)[301]!));
  add("a duplicate empty token", (p) => void (tokens(p)[300] = "[EMPTY_301]", (tokens(p)[301] = "")));
  add("an empty token", (p) => void (tokens(p)[300] = ""));
  add("one token fewer", (p) => void tokens(p).pop());
  add("one token more", (p) => void tokens(p).push("<extra>"));
  for (const v of [NaN, Infinity]) add(`a score of ${v}`, (p) => void ((p.metadata.get("tokenizer.ggml.scores") as { value: Float32Array }).value[5] = v));
  add("scores shorter", set("tokenizer.ggml.scores", gv.numbers("f32", new Float32Array(10))));
  add("scores as i32", set("tokenizer.ggml.scores", gv.numbers("i32", new Int32Array(512))));
  add("scores as u32", set("tokenizer.ggml.scores", gv.numbers("u32", new Uint32Array(512))));
  add("scores as a scalar", set("tokenizer.ggml.scores", gv.f32(1)));
  add("token types as u32", set("tokenizer.ggml.token_type", gv.numbers("u32", new Uint32Array(512))));
  add("token types shorter", set("tokenizer.ggml.token_type", gv.numbers("i32", new Int32Array(3))));
  add("token types out of range", set("tokenizer.ggml.token_type", gv.numbers("i32", new Int32Array(512).fill(99))));
  for (const v of ["bogus", "gpt2", "none", "bert", "t5", "rwkv"]) add(`tokenizer.ggml.model = ${v}`, set("tokenizer.ggml.model", gv.str(v)));
  add("tokenizer.ggml.model removed", set("tokenizer.ggml.model", undefined));
  add("tokenizer.ggml.pre = bogus", set("tokenizer.ggml.pre", gv.str("bogus")));
  add("tokens removed", set("tokenizer.ggml.tokens", undefined));
  add("tokens as u32", set("tokenizer.ggml.tokens", gv.numbers("u32", new Uint32Array(512))));
  for (const v of [0, 511, 512, 99999, 0xffffffff]) add(`bos id ${v}`, set("tokenizer.ggml.bos_token_id", gv.u32(v)));
  add("bos id as i32", set("tokenizer.ggml.bos_token_id", gv.i32(1)));
  add("add_bos as u32", set("tokenizer.ggml.add_bos_token", gv.u32(1)));

  // The tensor table.
  const find = (p: Parts, name: string) => p.tensors.find((t) => t.name === name)!;
  for (const name of ["token_embd.weight", "output_norm.weight", "blk.0.attn_norm.weight", "blk.1.ffn_up.weight", "blk.1.attn_k.weight", "blk.0.attn_output.weight", ...(arch === "llama" ? ["output.weight"] : ["blk.0.attn_q.bias"])]) {
    add(`${name} removed`, (p) => void (p.tensors = p.tensors.filter((t) => t.name !== name)));
  }
  add("an extra layer's tensor", (p) => void p.tensors.push({ name: "blk.2.attn_norm.weight", dims: [32], type: GgmlType.F32, data: zeros(128) }));
  add("an unknown tensor", (p) => void p.tensors.push({ name: "foo.weight", dims: [32], type: GgmlType.F32, data: zeros(128) }));
  add("a fused qkv tensor beside q, k, v", (p) => void p.tensors.push({ name: "blk.0.attn_qkv.weight", dims: [32, 64], type: GgmlType.F32, data: zeros(32 * 64 * 4) }));
  add("rope_freqs", (p) => void p.tensors.push({ name: "rope_freqs.weight", dims: [8], type: GgmlType.F32, data: new Uint8Array(new Float32Array(8).fill(1).buffer) }));
  const reshape = (name: string, dims: number[], type: number = GgmlType.F32, bytesPer = 4) =>
    add(`${name} shaped [${dims}] ${type}`, (p) => {
      const t = find(p, name);
      t.dims = dims;
      t.type = type;
      t.data = zeros((dims.reduce((a, b) => a * b, 1) * bytesPer) | 0);
    });
  reshape("token_embd.weight", [32, 511]);
  reshape("token_embd.weight", [32, 513]);
  reshape("token_embd.weight", [512, 32]);
  reshape("token_embd.weight", [16, 512]);
  reshape("blk.0.attn_q.weight", [32, 16]);
  reshape("blk.0.attn_q.weight", [32, 32, 1, 1]);
  reshape("blk.0.attn_q.weight", [32, 16, 2]);
  reshape("blk.0.attn_k.weight", [32, 32]);
  reshape("blk.1.attn_v.weight", [16, 32]);
  reshape("blk.0.ffn_down.weight", [32, 64]);
  reshape("blk.1.ffn_gate.weight", [32, 65]);
  reshape("blk.0.attn_norm.weight", [31]);
  reshape("blk.0.attn_norm.weight", [32, 1, 1, 2]);
  reshape("output_norm.weight", [32], GgmlType.F16, 2);
  reshape("blk.0.attn_norm.weight", [32], GgmlType.I32, 4);
  reshape("blk.0.attn_q.weight", [32, 32], GgmlType.I32, 4);
  reshape("blk.0.attn_q.weight", [32, 32], GgmlType.F16, 2);
  reshape("blk.0.attn_q.weight", [32, 32], GgmlType.F64, 8);
  reshape("blk.0.ffn_up.weight", [32, 64], GgmlType.I8, 1);
  return out;
}

function adapterRewrites(arch: Arch, base: string): Mutant[] {
  const out: Mutant[] = [];
  const add = (what: string, edit: (p: Parts) => void) =>
    out.push(rewriteMutant(base, { id: `${arch}-lora-set-${out.length}`, kind: "adapter", arch, what, headerOnly: true }, edit));
  const set = (key: string, v: GgufValue | undefined) => (p: Parts) => (v === undefined ? p.metadata.delete(key) : p.metadata.set(key, v));
  for (const v of [NaN, Infinity, -Infinity, 0, -1, 1e-45, 3e38, 1e5, 65536, 16]) add(`alpha ${v}`, set("adapter.lora.alpha", gv.f32(v)));
  add("alpha as f64", set("adapter.lora.alpha", gv.f64(8)));
  add("alpha as u32", set("adapter.lora.alpha", gv.u32(8)));
  add("alpha as string", set("adapter.lora.alpha", gv.str("8")));
  add("alpha removed", set("adapter.lora.alpha", undefined));
  for (const [k, v] of [["general.type", "model"], ["adapter.type", "ia3"], ["general.architecture", arch === "llama" ? "qwen2" : "llama"], ["general.architecture", "bogus"]] as const) add(`${k} = ${v}`, set(k, gv.str(v)));
  for (const k of ["general.type", "adapter.type", "general.architecture"]) {
    add(`${k} removed`, set(k, undefined));
    add(`${k} as u32`, set(k, gv.u32(1)));
  }
  const find = (p: Parts, name: string) => p.tensors.find((t) => t.name === name)!;
  const reshape = (name: string, dims: number[], type: number = GgmlType.F32, bytesPer = 4) =>
    add(`${name} shaped [${dims}] type ${type}`, (p) => {
      const t = find(p, name);
      t.dims = dims;
      t.type = type;
      t.data = zeros(dims.reduce((a, b) => a * b, 1) * bytesPer);
    });
  reshape("blk.0.attn_q.weight.lora_b", [3, 32]);
  reshape("blk.0.attn_q.weight.lora_a", [32, 5]);
  reshape("blk.0.attn_q.weight.lora_a", [31, 4]);
  reshape("blk.0.attn_q.weight.lora_b", [4, 16]);
  reshape("blk.0.attn_q.weight.lora_a", [32, 4, 2]);
  reshape("blk.1.attn_v.weight.lora_b", [4, 32]);
  if (arch === "llama") {
    reshape("token_embd.weight.lora_a", [3, 512]);
    reshape("token_embd.weight.lora_b", [5, 32]);
    reshape("token_embd.weight.lora_a", [4, 511]);
    reshape("token_embd.weight.lora_b", [4, 31]);
    reshape("token_embd.weight.lora_a", [512, 4]);
  } else {
    add("a token_embd pair on a model whose output is token_embd", (p) => void p.tensors.push({ name: "token_embd.weight.lora_a", dims: [4, 512], type: GgmlType.F32, data: zeros(4 * 512 * 4) }, { name: "token_embd.weight.lora_b", dims: [4, 32], type: GgmlType.F32, data: zeros(512) }));
  }
  reshape("blk.0.attn_q.weight.lora_a", [32, 0]);
  reshape("blk.0.attn_q.weight.lora_a", [32, 4], GgmlType.I32, 4);
  reshape("blk.0.attn_q.weight.lora_b", [4, 32], GgmlType.F16, 2);
  reshape("blk.0.attn_q.weight.lora_b", [4, 32], GgmlType.F64, 8);
  add("lora_b of a pair removed", (p) => void (p.tensors = p.tensors.filter((t) => t.name !== "blk.1.attn_q.weight.lora_b")));
  add("a pair for a tensor the model lacks", (p) => void p.tensors.push({ name: "blk.5.attn_q.weight.lora_a", dims: [32, 4], type: GgmlType.F32, data: zeros(512) }, { name: "blk.5.attn_q.weight.lora_b", dims: [4, 32], type: GgmlType.F32, data: zeros(512) }));
  add("a pair for a norm (skipped by llama.cpp)", (p) => void p.tensors.push({ name: "blk.0.attn_norm.weight", dims: [32], type: GgmlType.F32, data: zeros(128) }));
  add("a tensor that is not a LoRA tensor", (p) => void p.tensors.push({ name: "blk.0.attn_q.weight", dims: [32, 32], type: GgmlType.F32, data: zeros(4096) }));
  add("a pair for a bias", (p) => void p.tensors.push({ name: "blk.0.ffn_up.weight.lora_a", dims: [32, 4], type: GgmlType.F32, data: zeros(512) }, { name: "blk.0.ffn_up.weight.lora_b", dims: [4, 64], type: GgmlType.F32, data: zeros(1024) }));
  add("no tensors", (p) => void (p.tensors = []));
  return out;
}

/** Every mutant of the base files, in a fixed order for a fixed seed. */
export function mutants(bases: BaseFiles, seed = 1): Mutant[] {
  const out: Mutant[] = [];
  let s = seed;
  for (const arch of ["llama", "qwen2"] as const) {
    const model = new Uint8Array(readFileSync(bases.model[arch]));
    const adapter = new Uint8Array(readFileSync(bases.adapter[arch]));
    out.push(...byteMutants("model", arch, `${arch}`, model, s++, { cuts: 60, flips: 120, tensorsSampled: 3 }));
    out.push(...byteMutants("adapter", arch, `${arch}-lora`, adapter, s++, { cuts: 30, flips: 60, tensorsSampled: 3 }));
    out.push(...modelRewrites(arch, bases.model[arch]));
    out.push(...adapterRewrites(arch, bases.adapter[arch]));
  }
  return out;
}
