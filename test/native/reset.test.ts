// context.reset(): a kept context reset before a call computes exactly what a new context
// computes — with the default unified cache, f16 K/V and flash attention auto, where a
// context that is NOT reset carries its held prefix and cell layout into the next call and
// differs in rounding (specs/inference.md, "Work contexts across batches"). This is what
// lets a stage keep one work context for all its batches and still resume byte for byte.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { generate, loadModel, type Context, type Model } from "../../native/index.ts";
import { tiny } from "./helpers.ts";
import { ON_GPU } from "./numerics.ts";

setDefaultTimeout(120_000);

const HEADER =
  "Instruction: Name a colour.\nResponse: Blue.\nEND\n\nInstruction: Add two and two.\nResponse: Four.\nEND\n\n" +
  "Instruction: Name a planet.\nResponse: Mars.\nEND\n\n";
const WORK = { contextSize: 2048, parallel: 4, threads: 1 } as const;

let model: Model;
beforeAll(async () => {
  model = await loadModel(await tiny({ arch: "llama", type: "f16" }), { contextSize: 512, parallel: 1, threads: 1 });
});
afterAll(() => model?.dispose());

/** Batch k of a stage: 6 items under the shared header, and seeded sampling under it. */
function batch(k: number) {
  const tails = Array.from({ length: 6 }, (_, i) => `Instruction: Task ${k}.${i}, say something.\nResponse:`);
  return {
    items: tails.map((t) => ({ prompt: HEADER + t, continuation: ` Something ${k}.\nEND` })),
    requests: tails.map((t, i) => ({ prompt: HEADER + t, sampling: { temperature: 0.8, topP: 0.9, maxTokens: 12, seed: 100 * k + i } })),
  };
}

async function runBatch(ctx: Context, k: number) {
  const b = batch(k);
  const scores = (await ctx.score(b.items)).items.map((r) => r.logprobs);
  const tokens = (await generate(ctx, b.requests)).results.map((r) => r.tokens);
  return { scores, tokens };
}

describe.skipIf(ON_GPU)("context.reset()", () => {
  test("a kept context reset before each batch gives a new context's bits; not reset, it does not", async () => {
    const kept = await model.createContext(WORK);
    const unreset = await model.createContext(WORK);
    try {
      let differs = 0;
      for (let k = 0; k < 4; k++) {
        const fresh = await model.createContext(WORK);
        const want = await runBatch(fresh, k);
        fresh.dispose();
        await kept.reset();
        expect(await runBatch(kept, k)).toEqual(want);
        const other = await runBatch(unreset, k);
        if (JSON.stringify(other) !== JSON.stringify(want)) differs++;
      }
      // Without reset the held header and the cell layout of earlier batches leak into later
      // ones (the reason reset exists): at least one of the later batches differs.
      expect(differs).toBeGreaterThan(0);
    } finally {
      kept.dispose();
      unreset.dispose();
    }
  });

  test("reset waits for a call still running on the context, which is not disturbed", async () => {
    const fresh = await model.createContext(WORK);
    const want = (await fresh.score(batch(7).items)).items.map((r) => r.logprobs);
    fresh.dispose();
    const ctx = await model.createContext(WORK);
    try {
      const [scored] = await Promise.all([ctx.score(batch(7).items), ctx.reset()]);
      expect(scored.items.map((r) => r.logprobs)).toEqual(want);
      await ctx.reset();
      expect((await ctx.score(batch(7).items)).items.map((r) => r.logprobs)).toEqual(want);
    } finally {
      ctx.dispose();
    }
  });
});
