// Adapters: written in llama.cpp's GGUF LoRA format, loaded by llama.cpp itself (the
// inference addon), they change llama.cpp's logits exactly as our forward with LoRA
// predicts; and they load back into the engine unchanged.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findTensor, metaNumber, metaString, readGguf, readTensorF32 } from "../../native/gguf/index.ts";
import { loadModel, quantize, type Model } from "../../native/index.ts";
import { loadTrainModel, type LoraTarget, type TrainModel, type TrainSession } from "../../native/train.ts";
import { bitEqual, CPU_ENGINE, LLAMA_ON_CPU, maxAbsDiff, tiny, tiny256 } from "./helpers.ts";

const TEXTS = ["Instruction: Say hello.\nResponse: Hello!\nEND", "Instruction: Add 17 and 25.\nResponse: 42\nEND"];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "selftune-train-adapter-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Parameters with B non-zero, so the adapter actually changes the model. */
function randomise(s: TrainSession, seed: number, std = 0.05): Float32Array {
  const p = s.getParams();
  let x = seed >>> 0;
  for (let i = 0; i < p.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    p[i] = ((x / 2 ** 32) * 2 - 1) * std * 1.7;
  }
  s.setParams(p);
  return p;
}

async function q8(arch: "qwen2" | "llama"): Promise<string> {
  const base = await tiny256(arch);
  const out = base.replace(/\.gguf$/, "-q8_0.gguf");
  if (!existsSync(out)) {
    await quantize(base, `${out}.tmp-${process.pid}`, "q8_0");
    renameSync(`${out}.tmp-${process.pid}`, out);
  }
  return out;
}

// maxDiff: bound on |ours - llama.cpp| over all logits (f32 bases: llama.cpp's f16 KV
// cache is the only rounding left, mimicked by llamaParity, up to boundary flips).
// tight: share of positions within 1e-4 (rounding-boundary flips: see parity.test.ts).
const CASES: { name: string; arch: "qwen2" | "llama"; file: () => Promise<string>; targets?: LoraTarget[]; maxDiff: number; tight: number }[] = [
  { name: "qwen2 f32, all targets", arch: "qwen2", file: () => tiny("qwen2"), maxDiff: 3e-3, tight: 0.25 },
  { name: "llama f32, all targets", arch: "llama", file: () => tiny("llama"), maxDiff: 3e-3, tight: 0.25 },
  { name: "qwen2 f32, q and v only", arch: "qwen2", file: () => tiny("qwen2"), targets: ["q", "v"], maxDiff: 3e-3, tight: 0.25 },
  { name: "llama q8_0 base (QLoRA-style)", arch: "llama", file: () => q8("llama"), maxDiff: 0.6, tight: 0.5 },
];

for (const c of CASES) {
  describe(c.name, () => {
    let llama: Model, tm: TrainModel, s: TrainSession, path: string, params: Float32Array;
    beforeAll(async () => {
      const file = await c.file();
      llama = await loadModel(file, { threads: 2, flashAttention: "off", contextSize: 256, parallel: 1, ...LLAMA_ON_CPU });
      tm = await loadTrainModel(file, CPU_ENGINE);
      s = tm.createSession({ rank: 4, alpha: 8, targets: c.targets, threads: 2 });
      params = randomise(s, 7);
      path = join(dir, `${c.name.replace(/\W+/g, "-")}.gguf`);
      await s.saveAdapter(path, { "selftune.note": "test" });
    });
    afterAll(() => {
      s?.dispose();
      tm?.dispose();
      llama?.dispose();
    });

    test("file: llama.cpp's adapter keys, tensor names and ggml shapes", () => {
      const f = readGguf(path);
      expect(metaString(f, "general.type")).toBe("adapter");
      expect(metaString(f, "general.architecture")).toBe(c.arch);
      expect(metaString(f, "adapter.type")).toBe("lora");
      expect(metaNumber(f, "adapter.lora.alpha")).toBe(8);
      expect(metaString(f, "selftune.note")).toBe("test");
      const targets = c.targets ?? ["q", "k", "v", "o", "gate", "up", "down"];
      expect(f.tensors.length).toBe(2 * tm.info.layerCount * targets.length);
      const D = tm.info.embeddingSize, KV = tm.info.headCountKv * tm.info.headDim;
      const q = findTensor(f, "blk.0.attn_q.weight.lora_a");
      expect(q.dims).toEqual([D, 4]); // ggml [n_in, r]
      expect(findTensor(f, "blk.0.attn_q.weight.lora_b").dims).toEqual([4, D]); // [r, n_out]
      if (targets.includes("v")) expect(findTensor(f, "blk.1.attn_v.weight.lora_b").dims).toEqual([4, KV]);
      if (targets.includes("down")) expect(findTensor(f, "blk.0.ffn_down.weight.lora_a").dims).toEqual([tm.info.feedForwardSize, 4]);
      // A is the first block of the flat parameters: the file holds exactly them.
      expect(bitEqual(readTensorF32(f, q), params.subarray(0, 4 * D))).toBe(true);
    });

    test("loaded by llama.cpp, it changes the logits as our forward with LoRA predicts", async () => {
      const adapter = await llama.loadAdapter(path);
      const V = tm.info.vocabSize;
      let positions = 0, tight = 0, worst = 0, effect = 0;
      for (const text of TEXTS) {
        const toks = llama.tokenize(text);
        const ref = await llama.evalLogits(toks, { adapters: [{ adapter }] });
        const ours = await s.logits(toks, { llamaParity: true });
        const base = await s.logits(toks, { useLora: false, llamaParity: true });
        effect = Math.max(effect, maxAbsDiff(ours, base));
        for (let p = 0; p < toks.length; p++) {
          const d = maxAbsDiff(ours.subarray(p * V, (p + 1) * V), ref.subarray(p * V, (p + 1) * V));
          worst = Math.max(worst, d);
          if (d < 1e-4) tight++;
          positions++;
        }
      }
      console.log(`${c.name}: LoRA moves logits by up to ${effect.toFixed(2)}; ours vs llama.cpp with the adapter: max ${worst.toExponential(2)}, ${tight}/${positions} positions within 1e-4`);
      expect(effect).toBeGreaterThan(0.5);
      expect(tight / positions).toBeGreaterThanOrEqual(c.tight);
      expect(worst).toBeLessThan(c.maxDiff);
      adapter.dispose();
    });

    test("loads back into the engine bit for bit", () => {
      const s2 = tm.createSession({ adapter: path, dropout: 0 });
      expect(s2.info.rank).toBe(4);
      expect(s2.info.alpha).toBe(8);
      expect(s2.info.targets).toEqual(c.targets ?? ["q", "k", "v", "o", "gate", "up", "down"]);
      expect(bitEqual(s2.getParams(), params)).toBe(true);
      s2.dispose();
    });
  });
}

test("an adapter for another architecture is refused", async () => {
  const q = await loadTrainModel(await tiny("qwen2"));
  const l = await loadTrainModel(await tiny("llama"));
  const s = q.createSession({ rank: 2 });
  const p = join(dir, "qwen.gguf");
  await s.saveAdapter(p);
  expect(() => l.createSession({ adapter: p })).toThrow(/architecture/);
  s.dispose();
  q.dispose();
  l.dispose();
});

test("reserved metadata keys are refused", async () => {
  const q = await loadTrainModel(await tiny("qwen2"));
  const s = q.createSession({ rank: 2 });
  expect(() => s.saveAdapter(join(dir, "x.gguf"), { "general.name": "x" })).toThrow(/reserved/);
  s.dispose();
  q.dispose();
});
