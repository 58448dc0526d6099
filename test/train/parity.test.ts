// Forward parity with llama.cpp: our engine's logits on the same GGUF file equal llama.cpp's
// (the inference addon's reference path, flash attention off), for llama and qwen2 and every
// weight type we train on: f32, f16, bf16 (synthesized), q8_0, q4_k, q6_k (quantized by
// llama.cpp from a synthesized f32 model whose matrices are all multiples of 256 wide).
//
// Two comparisons (tolerances in specs/training.md, "Parity"):
//  - plain: the training forward itself (f32 activations over dequantized weights). llama.cpp
//    rounds activations to its weight types' dot-product types and K/V to f16, so the
//    difference is that rounding: a bound on max |Δlogit| and top-1 agreement.
//  - llamaParity: our forward rounds at the same points; most positions then agree to
//    ~1e-6. A rounding-boundary flip (a value within float noise of a rounding boundary
//    lands on the other side, since our sums run in another order) perturbs that position
//    and the later ones attending to it by about one rounding step (one flip in the first
//    position's keys shifts every later position). So: a max bound well below the plain
//    one, and some positions (at least 10 %; typically 50-100 %) within 1e-4.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { existsSync } from "node:fs";
import { loadModel, quantize, type Model } from "../../native/index.ts";
import { loadTrainModel, type TrainModel, type TrainSession } from "../../native/train.ts";
import { CPU_ENGINE, LLAMA_ON_CPU, maxAbsDiff, tiny, tiny256 } from "./helpers.ts";

const TEXTS = [
  "Instruction: Say hello.\nResponse: Hello!\nEND",
  "Instruction: Name three colors.\nResponse: Red, green and blue.\nEND",
  "The quick brown fox jumps over the lazy dog.",
  "Instruction: Add 17 and 25.\nResponse: 42\nEND",
  "Instruction: Translate 'cat' to French.\nResponse: chat\nEND",
];

// top1: share of positions where the plain forward's argmax equals llama.cpp's. Random-weight
// models have near-tied logits, so the activation rounding of quantized types flips some.
type Case = { arch: "qwen2" | "llama"; type: string; plainMax: number; parityMax: number; top1: number };
const CASES: Case[] = [];
for (const arch of ["qwen2", "llama"] as const) {
  CASES.push({ arch, type: "f32", plainMax: 0.03, parityMax: 5e-3, top1: 0.97 });
  CASES.push({ arch, type: "f16", plainMax: 0.05, parityMax: 1e-2, top1: 0.97 });
  CASES.push({ arch, type: "bf16", plainMax: 0.2, parityMax: 0.05, top1: 0.95 });
  CASES.push({ arch, type: "q8_0", plainMax: 0.6, parityMax: 0.3, top1: 0.8 });
  CASES.push({ arch, type: "q4_k", plainMax: 0.6, parityMax: 0.3, top1: 0.8 });
  CASES.push({ arch, type: "q6_k", plainMax: 0.6, parityMax: 0.3, top1: 0.8 });
}

async function modelFile(c: Case): Promise<string> {
  if (c.type === "f32" || c.type === "f16" || c.type === "bf16") return tiny(c.arch, c.type);
  const base = await tiny256(c.arch);
  const out = base.replace(/\.gguf$/, `-${c.type}.gguf`);
  if (!existsSync(out)) await quantize(base, `${out}.tmp-${process.pid}`, c.type as "q8_0" | "q4_k" | "q6_k").then(() => require("node:fs").renameSync(`${out}.tmp-${process.pid}`, out));
  return out;
}

for (const c of CASES) {
  describe(`${c.arch} ${c.type}`, () => {
    let llama: Model, tm: TrainModel, s: TrainSession;
    beforeAll(async () => {
      const path = await modelFile(c);
      llama = await loadModel(path, { threads: 2, flashAttention: "off", contextSize: 256, parallel: 1, ...LLAMA_ON_CPU });
      tm = await loadTrainModel(path, CPU_ENGINE);
      s = tm.createSession({ rank: 4, threads: 2 });
    });
    afterAll(() => {
      s?.dispose();
      tm?.dispose();
      llama?.dispose();
    });

    test("the engine reads the file as stored", () => {
      expect(tm.info.architecture).toBe(c.arch);
      expect(tm.info.weightType.toLowerCase()).toBe(c.type);
      expect(tm.info.rope).toBe(c.arch === "llama" ? "norm" : "neox");
      expect(tm.info.qkvBias).toBe(c.arch === "qwen2");
    });

    test("logits match llama.cpp's", async () => {
      const V = tm.info.vocabSize;
      let positions = 0, tight = 0, agreeTop1 = 0, agreeParity = 0, worstPlain = 0, worstParity = 0;
      for (const text of TEXTS) {
        const toks = llama.tokenize(text);
        const ref = await llama.evalLogits(toks);
        const plain = await s.logits(toks, { useLora: false });
        const parity = await s.logits(toks, { useLora: false, llamaParity: true });
        for (let p = 0; p < toks.length; p++) {
          const r = ref.subarray(p * V, (p + 1) * V);
          const a = plain.subarray(p * V, (p + 1) * V);
          const b = parity.subarray(p * V, (p + 1) * V);
          const dPlain = maxAbsDiff(a, r), dParity = maxAbsDiff(b, r);
          worstPlain = Math.max(worstPlain, dPlain);
          worstParity = Math.max(worstParity, dParity);
          if (dParity < 1e-4) tight++;
          let ia = 0, ib = 0, ir = 0;
          for (let v = 1; v < V; v++) {
            if (a[v]! > a[ia]!) ia = v;
            if (b[v]! > b[ib]!) ib = v;
            if (r[v]! > r[ir]!) ir = v;
          }
          if (ia === ir) agreeTop1++;
          if (ib === ir) agreeParity++;
          positions++;
        }
      }
      expect(worstPlain).toBeLessThan(c.plainMax);
      expect(worstParity).toBeLessThan(c.parityMax);
      expect(tight / positions).toBeGreaterThanOrEqual(0.1);
      expect(agreeTop1 / positions).toBeGreaterThanOrEqual(c.top1);
      expect(agreeParity / positions).toBeGreaterThanOrEqual(0.9);
      console.log(`${c.arch} ${c.type}: max|Δ| plain ${worstPlain.toExponential(2)}, parity ${worstParity.toExponential(2)}; ${tight}/${positions} positions within 1e-4 in parity mode; top-1 agreement plain ${agreeTop1}/${positions}, parity ${agreeParity}/${positions}`);
    });
  });
}
