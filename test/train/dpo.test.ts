// DPO in the training engine (specs/training.md §15), on the tiny synthesized qwen2 model:
// the pair-aware data plan, the step-0 identities (loss exactly log 2, rewards 0; IPO's
// 1/(4 beta^2)), the reference computed by the engine's own forward, a short run that
// separates chosen from rejected, resume, and the MessagePack reference cache. The DPO
// gradient against finite differences is in ops.test.ts (model.<arch>.dpo_grad).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";

setDefaultTimeout(120_000);
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  loadTrainModel, packPairs, planTraining, readReferenceCache, writeReferenceCache,
  type TrainData, type TrainModel, type TrainOptions, type TrainSession,
} from "../../native/train.ts";
import { bitEqual, examples, PAIRS, tiny, tokenizer } from "./helpers.ts";

// Chosen: the pair's own answer. Rejected: the next pair's answer (fluent but wrong), so
// the two differ systematically and a policy can learn to tell them apart.
async function pairData(path: string): Promise<TrainData> {
  const tok = await tokenizer(path);
  const chosen = examples(tok, PAIRS);
  const rejected = examples(tok, PAIRS.map(([i], k) => [i, PAIRS[(k + 1) % PAIRS.length]![1]] as [string, string]));
  return packPairs(chosen.map((c, k) => ({ chosen: c, rejected: rejected[k]! })));
}

/** A non-trivial adapter (B != 0), standing in for the SFT adapter DPO starts from. */
function perturb(s: TrainSession, seed: number, scale: number): void {
  const p = s.getParams();
  let x = seed >>> 0;
  for (let i = 0; i < p.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    p[i] = p[i]! + scale * (x / 2 ** 32 - 0.5);
  }
  s.setParams(p);
}

let dir: string, path: string, data: TrainData, tm: TrainModel;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-dpo-"));
  path = await tiny("qwen2");
  data = await pairData(path);
  tm = await loadTrainModel(path, { backend: "cpu" });
});
afterAll(() => {
  tm?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const session = (dropout = 0) => tm.createSession({ rank: 8, alpha: 16, dropout, threads: 2, seed: 3 });

describe("pair-aware data plan", () => {
  test("chosen and rejected of every pair share a micro-batch, every pair once per epoch", () => {
    for (const [microBatch, gradAccum, bucketWindow, dataSeed] of [[1, 1, 8, 0], [2, 2, 8, 1], [3, 2, 1, 7], [4, 1, 2, 5]]) {
      const plan = planTraining(data, { objective: "dpo", epochs: 2, microBatch, gradAccum, bucketWindow, dataSeed });
      expect(plan.stepsPerEpoch).toBe(Math.ceil(PAIRS.length / (microBatch! * gradAccum!)));
      const seen = new Map<number, number>();
      for (const step of plan.steps) {
        expect(step.length).toBeLessThanOrEqual(gradAccum!);
        for (const micro of step) {
          expect(micro.length % 2).toBe(0);
          expect(micro.length).toBeLessThanOrEqual(2 * microBatch!);
          for (let k = 0; k < micro.length; k += 2) {
            expect(micro[k]! % 2).toBe(0);
            expect(micro[k + 1]).toBe(micro[k]! + 1);
            seen.set(micro[k]! / 2, (seen.get(micro[k]! / 2) ?? 0) + 1);
          }
        }
      }
      expect([...seen.keys()].sort((a, b) => a - b)).toEqual(PAIRS.map((_, i) => i));
      expect([...seen.values()].every((n) => n === 2)).toBe(true);
    }
  });

  test("deterministic, seeded; pairs: false is today's plan", () => {
    const a = planTraining(data, { pairs: true, dataSeed: 3 }), b = planTraining(data, { pairs: true, dataSeed: 3 });
    expect(a).toEqual(b);
    expect(planTraining(data, { pairs: true, dataSeed: 4 }).steps).not.toEqual(a.steps);
    expect(planTraining(data, { pairs: false, dataSeed: 3 })).toEqual(planTraining(data, { dataSeed: 3 }));
  });

  test("an odd example count is not pair data", () => {
    const one = { tokens: new Int32Array([1, 2, 3]), loss: new Uint8Array([0, 1, 1]), offsets: new Float64Array([0, 3]) };
    expect(() => planTraining(one, { pairs: true })).toThrow(/odd example count/);
    expect(() => planTraining(one, { objective: "dpo" })).toThrow(/odd example count/);
  });
});

describe("step 0: the policy is the reference", () => {
  const opts: TrainOptions = { objective: "dpo", microBatch: 2, gradAccum: 3, maxSteps: 1, lr: 1e-3, dataSeed: 2 };

  test("sigmoid loss is log 2 and the rewards are 0, from an adapter, with the session's dropout on", async () => {
    using s = session(0.1);   // DPO turns dropout off: the reference has none
    perturb(s, 11, 0.2);
    const reference = await s.referenceLogprobs(data);
    expect(reference.length).toBe(2 * PAIRS.length);
    expect(reference.every((r) => Number.isFinite(r) && r < 0)).toBe(true);
    const res = await s.train(data, { ...opts, reference });
    const r0 = res.history[0]!;
    console.log(`step 0: loss ${r0.loss} (log 2 = ${Math.LN2}), metrics ${JSON.stringify(r0.metrics)}`);
    expect(Math.abs(r0.loss - Math.LN2)).toBeLessThanOrEqual(1e-12);
    expect(r0.metrics).toEqual({ "rewards/chosen": 0, "rewards/rejected": 0, "rewards/margins": 0, "rewards/accuracies": 0 });
    expect(r0.gradNorm).toBeGreaterThan(0);
  });

  test("the DPO-only baseline: a fresh adapter against the bare base (useLora false)", async () => {
    using s = session();
    const reference = await s.referenceLogprobs(data, { useLora: false });
    const res = await s.train(data, { ...opts, reference });
    expect(Math.abs(res.history[0]!.loss - Math.LN2)).toBeLessThanOrEqual(1e-12);
    expect(res.history[0]!.metrics!["rewards/margins"]).toBe(0);
  });

  test("IPO's loss is 1/(4 beta^2)", async () => {
    using s = session();
    perturb(s, 12, 0.2);
    const start = s.getParams();
    const reference = await s.referenceLogprobs(data);
    for (const beta of [0.1, 0.5]) {
      s.setParams(start);
      const res = await s.train(data, { ...opts, loss: "ipo", beta, reference });
      const expected = 1 / (4 * beta * beta);
      expect(Math.abs(res.history[0]!.loss - expected)).toBeLessThanOrEqual(1e-12 * expected);
      expect(res.history[0]!.metrics!["rewards/margins"]).toBe(0);
    }
  });

  test("the reference does not depend on its micro-batch size", async () => {
    using s = session();
    perturb(s, 13, 0.2);
    const a = await s.referenceLogprobs(data, { microBatch: 1 }), b = await s.referenceLogprobs(data, { microBatch: 7 });
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});

test("a short DPO run separates chosen from rejected on its training pairs", async () => {
  using s = session();
  perturb(s, 21, 0.2);
  const reference = await s.referenceLogprobs(data);
  const beta = 0.1;
  const res = await s.train(data, { objective: "dpo", beta, reference, epochs: 6, microBatch: 2, gradAccum: 2, lr: 5e-3, warmupRatio: 0.1, dataSeed: 1 });
  expect(res.completed).toBe(true);
  // The policy's own sums after training, against the reference, per pair.
  const after = await s.referenceLogprobs(data);
  const margins = PAIRS.map((_, k) => beta * ((after[2 * k]! - reference[2 * k]!) - (after[2 * k + 1]! - reference[2 * k + 1]!)));
  const accuracy = margins.filter((m) => m > 0).length / margins.length;
  const meanMargin = margins.reduce((a, b) => a + b, 0) / margins.length;
  const h = res.history, last = h.slice(-3);
  const lastMargin = last.reduce((a, r) => a + r.metrics!["rewards/margins"]!, 0) / last.length;
  console.log(`DPO: loss ${h[0]!.loss.toFixed(4)} -> ${h.at(-1)!.loss.toFixed(4)}; logged margin (last 3 steps) ${lastMargin.toFixed(3)}; ` +
    `training pairs after: mean margin ${meanMargin.toFixed(3)}, accuracy ${accuracy}`);
  expect(meanMargin).toBeGreaterThan(0.5);
  expect(accuracy).toBeGreaterThanOrEqual(11 / 12);
  expect(lastMargin).toBeGreaterThan(0.2);
  expect(h.at(-1)!.loss).toBeLessThan(0.5 * Math.LN2);
});

test("resume: stop after 2 steps and continue ends where an uninterrupted run ends; the reference is in the run's identity", async () => {
  const ck = join(dir, "dpo.ckpt");
  const opts: TrainOptions = { objective: "dpo", epochs: 1, microBatch: 2, gradAccum: 1, lr: 5e-3, dataSeed: 4 };
  let reference: Float64Array, whole: Float32Array, wholeHistory;
  {
    using s = session();
    perturb(s, 31, 0.2);
    reference = await s.referenceLogprobs(data);
    const res = await s.train(data, { ...opts, reference });
    whole = s.getParams();
    wholeHistory = res.history;
  }
  {
    using s = session();   // fresh AdamW moments, as a new process would have
    perturb(s, 31, 0.2);
    const first = await s.train(data, { ...opts, reference, checkpointPath: ck, stopAfterSteps: 2 });
    expect(first.endStep).toBe(2);
  }
  {
    using s2 = session();
    const other = reference.map((r, i) => (i === 0 ? r - 1 : r));
    await expect(s2.train(data, { ...opts, reference: other, resumeFrom: ck })).rejects.toThrow(/different run/);
    const rest = await s2.train(data, { ...opts, reference, resumeFrom: ck });
    expect(rest.completed).toBe(true);
    expect(bitEqual(s2.getParams(), whole)).toBe(true);
    const strip = (h: typeof rest.history) => h.map(({ seconds: _s, ...r }) => r);
    expect(strip(rest.history)).toEqual(strip(wholeHistory));
    expect(rest.history[0]!.metrics!["rewards/accuracies"]).toBe(0);
  }
});

test("reference cache: MessagePack round trip keeps every bit; another key reads as absent", () => {
  const p = join(dir, "reference.msgpack");
  const sums = new Float64Array([-12.345678901234567, -0.1, -1e-300, -Number.MIN_VALUE, -3.3e7]);
  expect(readReferenceCache(p, "k1")).toBeNull();
  writeReferenceCache(p, { fingerprint: "k1", sums });
  const back = readReferenceCache(p, "k1")!;
  expect(new BigUint64Array(back.buffer)).toEqual(new BigUint64Array(sums.buffer));
  expect(readReferenceCache(p, "k2")).toBeNull();
  writeFileSync(p, "not msgpack");
  expect(() => readReferenceCache(p, "k1")).toThrow();
});

test("misuse is refused", async () => {
  using s = session();
  const reference = await s.referenceLogprobs(data);
  await expect(s.train(data, { objective: "dpo" })).rejects.toThrow(/reference/);
  await expect(s.train(data, { objective: "dpo", reference: reference.subarray(2) })).rejects.toThrow(/values for 24 examples/);
  await expect(s.train(data, { objective: "dpo", reference, pairs: false })).rejects.toThrow(/needs pairs/);
  await expect(s.train(data, { objective: "dpo", reference, beta: 0 })).rejects.toThrow(/beta/);
  await expect(s.train(data, { objective: "dpo", reference, loss: "hinge" as never })).rejects.toThrow(/sigmoid or ipo/);
  await expect(s.train(data, { beta: 0.1 })).rejects.toThrow(/only to objective dpo/);
});
