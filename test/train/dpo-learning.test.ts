// The DPO learning test (issue 11, item 6), through the dpo stage on the tiny synthesized model
// (random weights, the real qwen2 vocabulary): pairs whose chosen response opens with "Sure."
// and whose rejected one is the bare answer. After DPO (the DPO-only baseline: a fresh LoRA
// against the bare base), on held-out instructions with other words and numbers,
//   - the chosen-minus-rejected summed log-prob margin rises on every pair, and
//   - greedy generation (the engine's own forward, session.greedy) opens with "Sure." far
//     more often than the base does.
// Margins chance cannot meet: the base opens with " Sure" (one token of 151,936) on 0 of 12;
// we require at most 1 before and at least 10 of 12 after. Even granting the base a 10 %
// rate, P(>= 10 of 12) = 5e-9. A margin rising on all 12 pairs by chance (a fair coin per
// pair) has P = 2.4e-4.
// Why not "chosen ends with END, rejected runs on": tried first (same data, lr up to 1e-2,
// beta 0.1 and 0.01): DPO separates such pairs mostly by pushing the rejected run-on tail
// down, the held-out margin rises, but greedy never makes "\nEND" the argmax after the
// answer on a random model (0 of 12). With the difference at one shared position (right
// after "Response:"), DPO's gradient moves exactly the two competing logits.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";

setDefaultTimeout(300_000);
import { join } from "node:path";
import { loadModel, type Model } from "../../native/index.ts";
import { loadTrainModel, lossMask, packPairs, type TrainModel, type TrainSession } from "../../native/train.ts";
import { DpoManifest } from "../../plugins/dpo/kinds.ts";
import { trainingText } from "../../plugins/prompts/prompts.ts";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";
import { patternPairs, tiny } from "./helpers.ts";
import { readFileSync } from "node:fs";

const HELD = patternPairs(12, true);
let dir: string, tok: Model, tm: TrainModel, s: TrainSession, meta: DpoManifest;

beforeAll(async () => {
  dir = tempDir("selftune-dpo-learning-");
  const model = await tiny("qwen2");
  const cfg = writeConfig(dir, "run.yaml", `name: dpo-learning
seed: 11
stages:
  - id: pairs
    plugin: ${FIXTURE_PLUGINS}/canned-pairs.ts
    config: { pairs: ${JSON.stringify(patternPairs(48))} }
  - plugin: qc
    gate: report
  # dpo's adapter input must be wired; the baseline does not read it.
  - plugin: sft
    config: { model: ${model}, lora: { rank: 4, alpha: 8 }, maxSteps: 1, microBatch: 1, gradAccum: 1, threads: 2, force: true }
  - plugin: dpo
    config: { model: ${model}, from: base, lora: { rank: 8, alpha: 16 }, epochs: 3, microBatch: 4, gradAccum: 1, lr: 0.01, heldOut: 8, threads: 2 }
`);
  const t0 = performance.now();
  const r = await cli(["run", cfg, "--run-dir", join(dir, "run")]);
  if (r.exitCode !== 0) console.log(r.stderr);
  expect(r.exitCode).toBe(0);
  console.log(`pipeline (pairs, qc, sft 1 step, dpo) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const adapter = join(dir, "run", "dpo", "adapter.gguf");
  meta = DpoManifest.parse(JSON.parse(readFileSync(`${adapter}.meta.json`, "utf8")));
  tok = await loadModel(model, { vocabOnly: true });
  tm = await loadTrainModel(model, { backend: "cpu" });
  s = tm.createSession({ adapter, threads: 2 });
});
afterAll(() => {
  s?.dispose();
  tm?.dispose();
  tok?.dispose();
});

const encode = (instruction: string, response: string) => {
  const t = trainingText(instruction, response);
  const m = lossMask(tok, t.text, t.lossBytes);
  return { tokens: m.tokens, loss: m.loss };
};

async function margins(useLora: boolean): Promise<number[]> {
  const data = packPairs(HELD.map((p) => ({ chosen: encode(p.instruction, p.chosen), rejected: encode(p.instruction, p.rejected) })));
  const sums = await s.referenceLogprobs(data, { useLora });
  return HELD.map((_, k) => sums[2 * k]! - sums[2 * k + 1]!);
}

async function opensWithSure(useLora: boolean): Promise<{ count: number; samples: string[] }> {
  const outs: string[] = [];
  for (const p of HELD) {
    // Tokenized as training tokenizes its texts (no BOS): the prompt is the training text's head.
    const ids = await s.greedy(tok.tokenize(`Instruction: ${p.instruction}\nResponse:`), { maxTokens: 2, useLora });
    outs.push(ids.map((id) => new TextDecoder().decode(tok.tokenBytes(id))).join(""));
  }
  return { count: outs.filter((o) => o.startsWith(" Sure.")).length, samples: outs.slice(0, 3) };
}

test("after DPO the held-out margin rises on every pair and greedy follows the chosen pattern", async () => {
  const before = await margins(false), after = await margins(true);
  const gBefore = await opensWithSure(false), gAfter = await opensWithSure(true);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`held-out margin (chosen - rejected, nats): ${mean(before).toFixed(2)} -> ${mean(after).toFixed(2)}; ` +
    `greedy opens with "Sure.": ${gBefore.count}/12 ${JSON.stringify(gBefore.samples)} -> ${gAfter.count}/12 ${JSON.stringify(gAfter.samples)}; ` +
    `stage: loss ${meta.training.firstLoss?.toFixed(4)} -> ${meta.training.finalLoss?.toFixed(4)}, its held-out margin ${meta.validation!.before.meanMargin.toFixed(2)} -> ${meta.validation!.after.meanMargin.toFixed(2)}`);
  expect(after.every((m, k) => m > before[k]!)).toBe(true);
  expect(mean(after) - mean(before)).toBeGreaterThan(10);
  expect(gBefore.count).toBeLessThanOrEqual(1);
  expect(gAfter.count).toBeGreaterThanOrEqual(10);
  // The stage's own held-out pairs (drawn from the training distribution) agree.
  expect(meta.validation!.after.favoured).toBe(meta.validation!.after.pairs);
  expect(meta.validation!.after.meanMargin).toBeGreaterThan(meta.validation!.before.meanMargin);
  expect(meta.training.finalLoss!).toBeLessThan(0.5 * Math.LN2);
});
