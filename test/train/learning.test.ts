// The learning test (issue 5, item 6): on a tiny synthesized model (random weights, the
// real qwen2 vocabulary), SFT on a small instruction set
//   - lowers the response loss of held-out instructions (our engine, and llama.cpp scoring
//     the same texts with the saved adapter), and
//   - makes greedy generation end at an END line (plugins/prompts cleanResponse's rule)
//     far more often than the base model does.
// Greedy decoding uses the engine's own forward (session.greedy): the inference addon has no
// generation API yet. Margins: the base model is random, so END (one token of 151,936) at the
// right place essentially never appears (0 of 12); we require at least 8 of 12 after
// training. Even granting the base a 10 % END rate, P(>= 8 of 12) = 2e-6.
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type Model } from "../../native/index.ts";
import { loadTrainModel, lossMask, packExamples, type TrainModel, type TrainSession } from "../../native/train.ts";
import { cleanResponse } from "../../plugins/prompts/clean.ts";
import { trainingText } from "../../plugins/prompts/prompts.ts";
import { tiny } from "./helpers.ts";

const TRAIN_WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle", "forest", "rocket", "garden", "mirror"];
const HELD_WORDS = ["bridge", "silver", "window", "ocean", "pencil", "castle", "meadow", "thunder", "violet", "saddle", "harbor", "copper"];

function pairs(words: string[], n: number, offset: number, numberBase: number): [string, string][] {
  const out: [string, string][] = [];
  for (let k = 0; k < n; k++) {
    const i = offset + k, w = words[i % words.length]!, a = numberBase + ((i * 7) % 10), b = (i * 3 + 1) % 10;
    switch (i % 4) {
      case 0: out.push([`What is ${a} plus ${b}?`, `${a + b}`]); break;
      case 1: out.push([`Repeat the word ${w}.`, w]); break;
      case 2: out.push([`Write the word ${w} in capitals.`, w.toUpperCase()]); break;
      default: out.push([`Say hello to ${w}.`, `Hello, ${w}!`]);
    }
  }
  return out;
}

const TRAIN = pairs(TRAIN_WORDS, 48, 0, 0);
const HELD = pairs(HELD_WORDS, 12, 101, 10);

let dir: string, path: string, tok: Model, tm: TrainModel, s: TrainSession;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-learning-"));
  path = await tiny("qwen2");
  tok = await loadModel(path, { vocabOnly: true });
  tm = await loadTrainModel(path);
  s = tm.createSession({ rank: 16, alpha: 32, dropout: 0.05, threads: 2, seed: 1 });
});
afterAll(() => {
  s?.dispose();
  tm?.dispose();
  tok?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const pack = (ps: [string, string][]) =>
  packExamples(ps.map(([i, r]) => {
    const t = trainingText(i, r);
    const m = lossMask(tok, t.text, t.lossBytes);
    return { tokens: m.tokens, loss: m.loss };
  }));

async function endRate(useLora: boolean): Promise<number> {
  let ended = 0;
  for (const [instruction] of HELD) {
    const g = await s.greedy(tok.tokenize(`Instruction: ${instruction}\nResponse:`), { maxTokens: 16, useLora });
    if (cleanResponse(tok.detokenize(g), { hitMaxTokens: g.length >= 16 }).stopReason === "END") ended++;
  }
  return ended;
}

test("SFT lowers held-out response loss and teaches generation to end at END", async () => {
  // Held out means held out: no held-out instruction appears in training.
  const trainSet = new Set(TRAIN.map(([i]) => i));
  expect(HELD.filter(([i]) => trainSet.has(i))).toEqual([]);
  const held = pack(HELD);

  const base = await s.evaluate(held, { useLora: false });
  const baseEnd = await endRate(false);
  const res = await s.train(pack(TRAIN), { epochs: 6, microBatch: 4, gradAccum: 2, lr: 1e-2, warmupRatio: 0.1, seed: 1, dataSeed: 1 });
  expect(res.completed).toBe(true);
  const after = await s.evaluate(held, { useLora: true });
  const trainedEnd = await endRate(true);

  const baseLoss = base.lossSum / base.lossTokens, afterLoss = after.lossSum / after.lossTokens;
  console.log(`held-out response loss ${baseLoss.toFixed(3)} -> ${afterLoss.toFixed(3)} nats/token; END-terminated greedy generations: base ${baseEnd}/12, trained ${trainedEnd}/12`);
  expect(afterLoss).toBeLessThan(0.6 * baseLoss);
  expect(baseEnd).toBe(0);
  expect(trainedEnd).toBeGreaterThanOrEqual(8);

  // The adapter file does the same inside llama.cpp: scoring the held-out responses.
  const adapterPath = join(dir, "sft.gguf");
  await s.saveAdapter(adapterPath);
  const llama = await loadModel(path, { contextSize: 512, parallel: 4 });
  const adapter = await llama.loadAdapter(adapterPath);
  const items = HELD.map(([i, r]) => ({ prompt: `Instruction: ${i}\nResponse:`, continuation: ` ${r}\nEND` }));
  const mean = (out: { items: { logprobs: number[] }[] }) => {
    const all = out.items.flatMap((x) => x.logprobs);
    return all.reduce((a, b) => a + b, 0) / all.length;
  };
  const llamaBase = mean(await llama.score(items));
  const llamaSft = mean(await llama.score(items, { adapters: [{ adapter }] }));
  console.log(`llama.cpp, mean log-prob of held-out responses: base ${llamaBase.toFixed(3)}, with the adapter ${llamaSft.toFixed(3)}`);
  expect(llamaSft - llamaBase).toBeGreaterThan(5);
  adapter.dispose();
  llama.dispose();
});
