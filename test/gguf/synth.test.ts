import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { modelInfo, modelSynth } from "../../native/gguf/commands.ts";
import { describeGguf, formatGgufDescription } from "../../native/gguf/describe.ts";
import { f32ToF16Bits } from "../../native/gguf/f16.ts";
import { cachedModel, tinyModel } from "../../native/gguf/fixtures.ts";
import { fillNormalish, streamKey } from "../../native/gguf/random.ts";
import { readGguf, readTensorBytes, readTensorF32, type GgufFile } from "../../native/gguf/reader.ts";
import { planTensors, presetShape, synthesizeModel } from "../../native/gguf/synth.ts";
import { GgmlType } from "../../native/gguf/types.ts";
import { plain } from "../../native/gguf/values.ts";
import { vocabPath } from "../../native/gguf/vocab.ts";
import { tempDir } from "./helpers.ts";

const dir = tempDir("gguf-synth");

/** What llama.cpp's loaders (src/models/qwen2.cpp, llama.cpp) ask for, written out by hand. */
function expectedTable(arch: "qwen2" | "llama", vocab: number): Map<string, number[]> {
  const t = new Map<string, number[]>([
    ["token_embd.weight", [64, vocab]],
    ["output_norm.weight", [64]],
  ]);
  if (arch === "llama") t.set("output.weight", [64, vocab]);
  for (const i of [0, 1]) {
    t.set(`blk.${i}.attn_norm.weight`, [64]);
    t.set(`blk.${i}.attn_q.weight`, [64, 64]);
    t.set(`blk.${i}.attn_k.weight`, [64, 32]);
    t.set(`blk.${i}.attn_v.weight`, [64, 32]);
    if (arch === "qwen2") {
      t.set(`blk.${i}.attn_q.bias`, [64]);
      t.set(`blk.${i}.attn_k.bias`, [32]);
      t.set(`blk.${i}.attn_v.bias`, [32]);
    }
    t.set(`blk.${i}.attn_output.weight`, [64, 64]);
    t.set(`blk.${i}.ffn_norm.weight`, [64]);
    t.set(`blk.${i}.ffn_gate.weight`, [64, 128]);
    t.set(`blk.${i}.ffn_up.weight`, [64, 128]);
    t.set(`blk.${i}.ffn_down.weight`, [128, 64]);
  }
  return t;
}

function tokenizerEntries(file: GgufFile): [string, unknown][] {
  return [...file.metadata].filter(([k]) => k.startsWith("tokenizer.")).map(([k, v]) => [k, { type: v.type, value: plain(v) }]);
}

function stats(x: Float32Array): { mean: number; std: number; maxAbs: number } {
  let s = 0;
  let s2 = 0;
  let maxAbs = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean), maxAbs };
}

const cases = [
  { arch: "qwen2", type: "f32", vocab: "qwen2", vocabSize: 151_936, fileType: 0, weightType: GgmlType.F32 },
  { arch: "llama", type: "f16", vocab: "llama-spm", vocabSize: 32_000, fileType: 1, weightType: GgmlType.F16 },
] as const;

describe("tiny synthesized models", () => {
  for (const c of cases) {
    test(`${c.arch} ${c.type}: tensor table, types and metadata as llama.cpp expects`, async () => {
      const file = readGguf(await tinyModel({ arch: c.arch, type: c.type }));
      const table = new Map(file.tensors.map((t) => [t.name, t.dims]));
      expect(table).toEqual(expectedTable(c.arch, c.vocabSize));
      for (const t of file.tensors) expect([t.name, t.type]).toEqual([t.name, t.dims.length === 1 ? GgmlType.F32 : c.weightType]);

      const meta = (k: string) => plain(file.metadata.get(k)!);
      expect(file.metadata.get("general.architecture")).toEqual({ type: "string", value: c.arch });
      expect(file.metadata.get("general.file_type")).toEqual({ type: "u32", value: c.fileType });
      for (const [key, value] of [
        ["context_length", 4096],
        ["embedding_length", 64],
        ["block_count", 2],
        ["feed_forward_length", 128],
        ["attention.head_count", 4],
        ["attention.head_count_kv", 2],
        ["vocab_size", c.vocabSize],
      ] as const) {
        expect(file.metadata.get(`${c.arch}.${key}`)).toEqual({ type: "u32", value });
      }
      expect(file.metadata.get(`${c.arch}.rope.freq_base`)?.type).toBe("f32");
      expect(meta(`${c.arch}.rope.freq_base`)).toBe(c.arch === "qwen2" ? 1e6 : 5e5);
      expect(file.metadata.get(`${c.arch}.attention.layer_norm_rms_epsilon`)?.type).toBe("f32");
      expect(meta(`${c.arch}.attention.layer_norm_rms_epsilon`)).toBe(Math.fround(c.arch === "qwen2" ? 1e-6 : 1e-5));

      // Every tokenizer key is copied with its type, in order; the chat template too.
      const vocab = readGguf(vocabPath(c.vocab));
      expect(tokenizerEntries(file)).toEqual(tokenizerEntries(vocab));
      expect(file.metadata.has("tokenizer.chat_template")).toBe(c.arch === "qwen2");
    });
  }

  test("weights: normal-ish with the planned std, norms exactly 1, bounded", async () => {
    const file = readGguf(await tinyModel({ arch: "qwen2", type: "f32" }));
    const embd = stats(readTensorF32(file, "token_embd.weight"));
    expect(Math.abs(embd.mean)).toBeLessThan(0.002);
    expect(embd.std).toBeCloseTo(2 / 8, 2);
    expect(embd.maxAbs).toBeLessThanOrEqual(0.25 * 2 * Math.sqrt(3));
    const q = stats(readTensorF32(file, "blk.0.attn_q.weight"));
    expect(q.std).toBeGreaterThan(0.12);
    expect(q.std).toBeLessThan(0.13);
    const down = stats(readTensorF32(file, "blk.1.ffn_down.weight"));
    expect(down.std).toBeCloseTo(1 / Math.sqrt(128), 2);
    expect(stats(readTensorF32(file, "blk.0.attn_k.bias")).std).toBeLessThan(0.04);
    for (const name of ["output_norm.weight", "blk.0.attn_norm.weight", "blk.1.ffn_norm.weight"]) {
      expect(readTensorF32(file, name).every((v) => v === 1)).toBe(true);
    }
  });

  test("f16 weights are the f32 weights rounded to nearest even", async () => {
    const f32 = readGguf(await tinyModel({ arch: "qwen2", type: "f32" }));
    const f16 = readGguf(await tinyModel({ arch: "qwen2", type: "f16" }));
    expect(f16.metadata.get("general.file_type")).toEqual({ type: "u32", value: 1 });
    for (const name of ["token_embd.weight", "blk.1.ffn_up.weight", "blk.0.attn_q.bias"]) {
      const wide = readTensorF32(f32, name);
      const tensor = f16.tensors.find((t) => t.name === name)!;
      if (tensor.type === GgmlType.F32) {
        expect(readTensorF32(f16, name)).toEqual(wide);
        continue;
      }
      const bytes = readTensorBytes(f16, tensor);
      const half = new Uint16Array(bytes.buffer, bytes.byteOffset, wide.length);
      for (let i = 0; i < wide.length; i++) {
        if (half[i] !== f32ToF16Bits(wide[i]!)) throw new Error(`${name}[${i}]: ${half[i]} vs ${f32ToF16Bits(wide[i]!)}`);
      }
    }
  });

  test("same seed gives identical bytes; another seed other weights", async () => {
    const opts = { arch: "llama", preset: "tiny", type: "f16", seed: 5 } as const;
    const a = await synthesizeModel({ ...opts, out: join(dir, "a.gguf") });
    const b = await synthesizeModel({ ...opts, out: join(dir, "b.gguf") });
    const c = await synthesizeModel({ ...opts, seed: 6, out: join(dir, "c.gguf") });
    expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
    const fa = readGguf(a);
    const fc = readGguf(c);
    expect(readTensorBytes(fa, "blk.0.attn_q.weight")).not.toEqual(readTensorBytes(fc, "blk.0.attn_q.weight"));
    expect(fc.metadata.get("selftune.synth.seed")).toEqual({ type: "u32", value: 6 });
  });

  test("generation is independent of chunking", () => {
    const key = streamKey(3, "blk.0.ffn_up.weight");
    const whole = new Float32Array(1000);
    fillNormalish(whole, key, 0, 1);
    const part = new Float32Array(300);
    fillNormalish(part, key, 517, 1);
    expect(part).toEqual(whole.subarray(517, 817));
    expect(streamKey(3, "a")).not.toBe(streamKey(4, "a"));
    expect(streamKey(3, "a")).not.toBe(streamKey(3, "b"));
  });

  test("describeGguf summarises a synthesized model", async () => {
    const path = await tinyModel({ arch: "qwen2", type: "f16" });
    const d = describeGguf(path);
    expect(d).toMatchObject({
      architecture: "qwen2",
      fileType: { id: 1, name: "MOSTLY_F16" },
      tensorCount: 26,
      tensorTypes: { F16: 15, F32: 11 },
      parameterCount: 9_798_208,
      vocabSize: 151_936,
      tokenizerModel: "gpt2",
      chatTemplate: true,
      tiedEmbeddings: true,
      synthetic: true,
      hyperParameters: { embeddingLength: 64, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 128, contextLength: 4096, ropeFreqBase: 1e6, rmsEpsilon: 1e-6 },
    });
    expect(d.sizeBytes).toBe(Bun.file(path).size);
    expect(formatGgufDescription(d)).toContain("151936 tokens, chat template present");
    const vocabOnly = describeGguf(vocabPath("llama-spm"));
    expect(vocabOnly).toMatchObject({ tensorCount: 0, tiedEmbeddings: undefined, chatTemplate: false, vocabSize: 32000 });
  });
});

describe("model commands", () => {
  test("modelSynth writes and describes; modelInfo renders text and JSON", async () => {
    const out = join(dir, "cmd.gguf");
    const result = await modelSynth({ arch: "llama", preset: "tiny", type: "f16", out, seed: 2 });
    expect(result.path).toBe(out);
    expect(result.description).toMatchObject({ architecture: "llama", tensorCount: 21, tiedEmbeddings: false, synthetic: true });
    expect(modelInfo(out)).toContain("llama \"selftune-synth-llama-tiny\" (synthetic, random weights)");
    expect(JSON.parse(modelInfo(out, "json"))).toEqual(JSON.parse(JSON.stringify(result.description)));
  });
});

describe("presets and options", () => {
  // Published parameter counts of Qwen2.5 0.5B / 1.5B / 7B (7B pads its vocabulary to 152,064).
  test("qwen2 presets have the real models' parameter counts", () => {
    const count = (preset: "0.5b" | "1.5b" | "7b", vocab: number) =>
      planTensors("qwen2", presetShape("qwen2", preset), vocab).reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);
    expect(count("0.5b", 151_936)).toBe(494_032_768);
    expect(count("1.5b", 151_936)).toBe(1_543_714_304);
    expect(count("7b", 152_064)).toBe(7_615_616_512);
    expect(planTensors("qwen2", presetShape("qwen2", "7b"), 10).some((t) => t.name === "output.weight")).toBe(true);
    expect(planTensors("qwen2", presetShape("qwen2", "1.5b"), 10).some((t) => t.name === "output.weight")).toBe(false);
  });

  test("shape overrides and their validation", async () => {
    const out = join(dir, "wide.gguf");
    await synthesizeModel({ arch: "llama", preset: "tiny", type: "f16", out, shape: { hidden: 256, ffn: 512, layers: 1 } });
    const file = readGguf(out);
    expect(file.tensors.find((t) => t.name === "blk.0.ffn_down.weight")?.dims).toEqual([512, 256]);
    expect(file.tensors.some((t) => t.name.startsWith("blk.1."))).toBe(false);
    await expect(synthesizeModel({ arch: "llama", preset: "tiny", out, shape: { hidden: 66 } })).rejects.toThrow(/hidden 66 is not a multiple of heads 4/);
    await expect(synthesizeModel({ arch: "llama", preset: "tiny", out, seed: -1 })).rejects.toThrow(/seed/);
  });

  test("vocabulary lookup names what it tried", () => {
    expect(() => vocabPath("no-such-vocab")).toThrow(/vocabulary "no-such-vocab" not found; looked for .*ggml-vocab-no-such-vocab\.gguf/);
  });
});

describe("fixture cache", () => {
  test("concurrent calls share one synthesis; the file is reused afterwards", async () => {
    const saved = process.env.SELFTUNE_MODEL_CACHE;
    process.env.SELFTUNE_MODEL_CACHE = join(dir, "cache");
    try {
      const [a, b, c] = await Promise.all([
        tinyModel({ arch: "llama", type: "f16", seed: 9 }),
        tinyModel({ arch: "llama", type: "f16", seed: 9 }),
        tinyModel({ arch: "llama", type: "f32", seed: 9 }),
      ]);
      expect(a).toBe(b);
      expect(a).not.toBe(c);
      expect(a.startsWith(join(dir, "cache"))).toBe(true);
      const mtime = Bun.file(a).lastModified;
      expect(await cachedModel("tiny", { arch: "llama", type: "f16", seed: 9 })).toBe(a);
      expect(Bun.file(a).lastModified).toBe(mtime);
      expect(readGguf(a).metadata.get("selftune.synth.seed")).toEqual({ type: "u32", value: 9 });
    } finally {
      if (saved === undefined) delete process.env.SELFTUNE_MODEL_CACHE;
      else process.env.SELFTUNE_MODEL_CACHE = saved;
    }
  });
});
