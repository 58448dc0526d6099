// Forward parity with llama.cpp on a real trained model (parity.test.ts does it on
// synthesized ones): stories260K, llama, f32, 5 layers, head size 8, 4 of 8 heads for K/V,
// logits spanning about ±22 where random weights give ±10. The CPU engine against
// llama.cpp's reference path (evalLogits, flash attention off, on the CPU), every position,
// full vocabulary.
//
// With llama.cpp's K/V cache in f32 both sides do the same f32 arithmetic and the plain
// forward matches at every position. With its default f16 cache the difference is that
// rounding, held to the f32 bound of specs/training.md §9; the parity mode does not tighten
// it on this model (under 5 % of positions within 1e-4, against 10-100 % on random weights), so
// it gets the same bound.
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { loadModel } from "../../native/index.ts";
import { loadTrainModel, type TrainModel, type TrainSession } from "../../native/train.ts";
import { STORIES260K, describeStories } from "../stories260k.ts";
import { maxAbsDiff } from "./helpers.ts";

setDefaultTimeout(300_000);

const TEXTS = [
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
  'Tom and his dog went to the big red barn.\nThey saw a cow! "Moo," said the cow.',
  "Instruction: Name three colors.\nResponse: Red, green and blue.\nEND",
];

describeStories("stories260K: the CPU training engine's logits against llama.cpp's", () => {
  let tm: TrainModel, s: TrainSession;
  beforeAll(async () => {
    tm = await loadTrainModel(STORIES260K, { backend: "cpu" });
    s = tm.createSession({ rank: 4, threads: 1 });
  });
  afterAll(() => {
    s?.dispose();
    tm?.dispose();
  });

  /** Max |Δlogit| and top-1 agreement over every position of the texts. */
  async function compare(kvType: "f32" | "f16", llamaParity: boolean) {
    const llama = await loadModel(STORIES260K, { threads: 1, flashAttention: "off", kvType, gpuLayers: 0, contextSize: 256, parallel: 1 });
    try {
      const V = tm.info.vocabSize;
      let worst = 0, top1 = 0, positions = 0;
      for (const text of TEXTS) {
        const toks = llama.tokenize(text);
        const ref = await llama.evalLogits(toks);
        const ours = await s.logits(toks, { useLora: false, llamaParity });
        for (let p = 0; p < toks.length; p++) {
          const r = ref.subarray(p * V, (p + 1) * V), a = ours.subarray(p * V, (p + 1) * V);
          worst = Math.max(worst, maxAbsDiff(a, r));
          if (a.indexOf(Math.max(...a)) === r.indexOf(Math.max(...r))) top1++;
          positions++;
        }
      }
      console.log(`stories260K, llama.cpp K/V ${kvType}, ${llamaParity ? "parity" : "plain"}: max|Δ| ${worst.toExponential(2)}, top-1 ${top1}/${positions}`);
      return { worst, top1: top1 / positions };
    } finally {
      llama.dispose();
    }
  }

  test("the engine reads it as stored", () => {
    expect(tm.info).toMatchObject({ architecture: "llama", vocabSize: 512, headDim: 8, rope: "norm", qkvBias: false, tiedOutput: false });
    expect(tm.info.weightType.toLowerCase()).toBe("f32");
  });

  test("logits equal llama.cpp's with an f32 K/V cache, at every position", async () => {
    const r = await compare("f32", false);
    expect(r.worst).toBeLessThan(1e-4);
    expect(r.top1).toBe(1);
  });

  test("logits match llama.cpp's default f16 K/V cache within its rounding", async () => {
    for (const parity of [false, true]) {
      const r = await compare("f16", parity);
      expect(r.worst).toBeLessThan(0.03);
      expect(r.top1).toBeGreaterThanOrEqual(0.97);
    }
  });
});
