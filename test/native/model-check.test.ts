// The validators by example: a file with one bad setting is refused with the same message by
// `model info`, checkGguf, loadModel, loadAdapter and the training engine (the mutation
// corpus, gguf-mutation.test.ts, covers thousands of such files; these are the ones the
// issue names, readable).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeBaseFiles, type BaseFiles } from "../../native/fuzz/corpus.ts";
import { gv, readGguf, readTensorBytes, writeGguf } from "../../native/gguf/index.ts";
import type { GgufValue } from "../../native/gguf/values.ts";
import { checkGguf, loadAdapter, loadModel, nativeAvailable, type Model } from "../../native/index.ts";
import { loadTrainModel } from "../../native/train.ts";

let dir: string;
let bases: BaseFiles;
let llama: Model;

/** A copy of `base` with metadata `key` set to `value` (removed when undefined). */
async function withKey(base: string, name: string, key: string, value: GgufValue | undefined): Promise<string> {
  const f = readGguf(base);
  const metadata = new Map(f.metadata);
  if (value === undefined) metadata.delete(key);
  else metadata.set(key, value);
  const out = join(dir, name);
  await writeGguf(out, { metadata, tensors: f.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: readTensorBytes(f, t) })) });
  return out;
}

function modelInfo(path: string): { code: number; text: string; json: { check: { valid: boolean; problem?: string } } } {
  const root = resolve(import.meta.dir, "..", "..");
  const run = (json: boolean) => Bun.spawnSync(["bun", join(root, "core", "cli.ts"), "model", "info", path, ...(json ? ["--json"] : [])], { cwd: root, env: { ...process.env, SELFTUNE_LLAMA_LOG: "none" } });
  const text = run(false);
  return { code: text.exitCode ?? -1, text: text.stdout.toString(), json: JSON.parse(run(true).stdout.toString()) };
}

async function loadError(p: Promise<unknown>): Promise<string> {
  try {
    const x = await p;
    (x as { dispose?: () => void })?.dispose?.();
  } catch (e) {
    return (e as Error).message;
  }
  return "accepted";
}

beforeAll(async () => {
  if (!nativeAvailable()) return;
  dir = mkdtempSync(join(tmpdir(), "selftune-model-check-"));
  bases = await writeBaseFiles(join(dir, "bases"));
  llama = await loadModel(bases.model.llama, { contextSize: 64, threads: 1 });
});

afterAll(() => {
  llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!nativeAvailable())("model settings", () => {
  const cases: [string, string, GgufValue | undefined, RegExp][] = [
    ["rope-dim.gguf", "llama.rope.dimension_count", gv.u32(48), /llama\.rope\.dimension_count is 48 but the head size is 16 \(llama\.embedding_length 32 \/ llama\.attention\.head_count 2\)/],
    ["layers.gguf", "llama.block_count", gv.u32(65536), /llama\.block_count is 65536, outside 1 \.\. 512 \(llama\.cpp supports 1 to 512 layers\)/],
    ["too-few-layers.gguf", "llama.block_count", gv.u32(1), /tensor blk\.1\.\S+ is for layer 1 but llama\.block_count is 1/],
    ["too-many-layers.gguf", "llama.block_count", gv.u32(3), /missing tensor blk\.2\.\S+ \(llama\.block_count is 3\)/],
    ["eps-nan.gguf", "llama.attention.layer_norm_rms_epsilon", gv.f32(NaN), /llama\.attention\.layer_norm_rms_epsilon is nan; it must be a finite number/],
    ["eps-zero.gguf", "llama.attention.layer_norm_rms_epsilon", gv.f32(0), /llama\.attention\.layer_norm_rms_epsilon is 0, outside/],
    ["rope-base-nan.gguf", "llama.rope.freq_base", gv.f32(NaN), /llama\.rope\.freq_base is nan/],
    ["rope-base-inf.gguf", "llama.rope.freq_base", gv.f32(Infinity), /llama\.rope\.freq_base is inf/],
    ["kv-heads.gguf", "llama.attention.head_count_kv", gv.u32(0), /llama\.attention\.head_count_kv is 0/],
    ["kv-heads-3.gguf", "llama.attention.head_count_kv", gv.u32(3), /llama\.attention\.head_count_kv 3 does not divide llama\.attention\.head_count 2/],
    ["ctx.gguf", "llama.context_length", gv.u32(0), /llama\.context_length is 0, outside 1 \.\./],
    ["type.gguf", "llama.block_count", gv.i32(2), /llama\.block_count must be a u32, is i32/],
    ["vocab-size.gguf", "llama.vocab_size", gv.u32(600), /llama\.vocab_size is 600 but tokenizer\.ggml\.tokens has 512 entries/],
    ["scaling.gguf", "llama.rope.scaling.type", gv.str("bogus"), /llama\.rope\.scaling\.type is 'bogus'/],
  ];
  for (const [name, key, value, message] of cases) {
    test(`${key} = ${value === undefined ? "removed" : `${value.type} ${String(value.value)}`}: every reader refuses it alike`, async () => {
      const path = await withKey(bases.model.llama, name, key, value);
      const expected = new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: ${message.source}`);
      const viaLoad = await loadError(loadModel(path, { contextSize: 64, threads: 1 }));
      expect(viaLoad).toMatch(expected);
      expect(() => checkGguf(path)).toThrow(viaLoad);
      expect(await loadError(loadTrainModel(path, { backend: "cpu" }))).toBe(viaLoad);
      const info = modelInfo(path);
      expect(info.code).toBe(1);
      expect(info.text).toContain(`check         REJECTED: ${viaLoad}`);
      expect(info.json.check).toEqual({ valid: false, problem: viaLoad });
    });
  }

  test("per-layer head counts (one value per block, as llama.cpp allows) pass the checks, load and decode", async () => {
    const path = await withKey(bases.model.llama, "per-layer.gguf", "llama.attention.head_count", gv.numbers("u32", new Uint32Array([2, 2])));
    expect(checkGguf(path).kind).toBe("model");
    const m = await loadModel(path, { contextSize: 64, threads: 1 });
    const logits = await m.evalLogits(m.tokenize("Hello world"));
    m.dispose();
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(modelInfo(path).code).toBe(0);
  });

  test("a duplicate token is refused before llama.cpp's vocabulary (which asserts on it)", async () => {
    const f = readGguf(bases.model.llama);
    const tokens = [...(f.metadata.get("tokenizer.ggml.tokens") as { value: string[] }).value];
    tokens[300] = tokens[301]!;
    const path = await withKey(bases.model.llama, "dup.gguf", "tokenizer.ggml.tokens", gv.strings(tokens));
    expect(await loadError(loadModel(path, { vocabOnly: true }))).toMatch(/tokenizer\.ggml\.tokens has the token '.*' twice \(ids 300 and 301\)/);
  });
});

describe.skipIf(!nativeAvailable())("adapter settings", () => {
  for (const [alpha, shown] of [[NaN, "nan"], [Infinity, "inf"], [-Infinity, "-inf"], [-1, "-1"], [1e9, "1e\\+09"]] as const) {
    test(`alpha ${alpha}: refused by checkGguf, loadAdapter and the training engine`, async () => {
      const path = await withKey(bases.adapter.llama, `alpha-${shown}.gguf`, "adapter.lora.alpha", gv.f32(alpha));
      const viaLoad = await loadError(loadAdapter(llama, path));
      expect(viaLoad).toMatch(new RegExp(`: adapter\\.lora\\.alpha is ${shown}`));
      expect(() => checkGguf(path)).toThrow(viaLoad);
      const train = await loadTrainModel(bases.model.llama, { backend: "cpu" });
      try {
        expect(() => train.createSession({ adapter: path, threads: 1 })).toThrow(viaLoad);
      } finally {
        train.dispose();
      }
    });
  }

  test("the valid adapter loads and its logits are finite", async () => {
    const a = await loadAdapter(llama, bases.adapter.llama);
    const logits = await llama.evalLogits(llama.tokenize("Hello world"), { adapters: [{ adapter: a }] });
    a.dispose();
    expect(logits.every(Number.isFinite)).toBe(true);
  });
});
