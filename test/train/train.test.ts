// The training loop: learning, determinism (thread count, micro-batch split), checkpoints
// and resume (bit-identical to an uninterrupted run), cancellation, the schedule, progress,
// evaluation, the data plan (every example once per epoch, length bucketing).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTrainModel, planTraining, type TrainData, type TrainModel, type TrainOptions, type TrainProgress } from "../../native/train.ts";
import { bitEqual, CPU_ENGINE, sftData, tiny, tokenizer } from "./helpers.ts";

let dir: string;
let model: TrainModel;
let data: TrainData;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-train-loop-"));
  const path = await tiny("qwen2");
  model = await loadTrainModel(path, CPU_ENGINE);
  data = await sftData(path);
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

// Small, fast and deterministic: 12 examples, effective batch 4, 3 steps an epoch.
const BASE: TrainOptions = { epochs: 2, microBatch: 2, gradAccum: 2, lr: 2e-3, warmupSteps: 1, seed: 5, dataSeed: 3, bucketWindow: 2 };

async function trainFresh(opts: TrainOptions, session: { threads?: number; dropout?: number } = {}) {
  const s = model.createSession({ rank: 4, alpha: 8, dropout: session.dropout ?? 0.1, threads: session.threads ?? 2, seed: 11 });
  const res = await s.train(data, { ...BASE, ...opts });
  const params = s.getParams();
  return { s, res, params };
}

describe("learning", () => {
  test("training lowers the response loss on its data", async () => {
    const s = model.createSession({ rank: 8, alpha: 16, dropout: 0, threads: 2, seed: 1 });
    const before = await s.evaluate(data);
    const res = await s.train(data, { epochs: 6, microBatch: 4, gradAccum: 1, lr: 1e-2, warmupSteps: 2 });
    const after = await s.evaluate(data);
    expect(res.completed).toBe(true);
    expect(res.records.length).toBe(18);
    expect(after.lossSum / after.lossTokens).toBeLessThan(0.6 * (before.lossSum / before.lossTokens));
    s.dispose();
  });

  test("a fresh adapter is the identity: B = 0", async () => {
    const s = model.createSession({ rank: 4, threads: 2 });
    const a = await s.evaluate(data, { useLora: true });
    const b = await s.evaluate(data, { useLora: false });
    expect(a.lossSum).toBe(b.lossSum);
    s.dispose();
  });
});

describe("determinism", () => {
  test("1 thread and 2 threads give bit-identical parameters", async () => {
    const a = await trainFresh({}, { threads: 1 });
    const b = await trainFresh({}, { threads: 2 });
    expect(bitEqual(a.params, b.params)).toBe(true);
    expect(a.res.records.map((r) => r.loss)).toEqual(b.res.records.map((r) => r.loss));
    a.s.dispose();
    b.s.dispose();
  });

  test("the same step split into different micro-batches gives the same update", async () => {
    // Loss is the mean over the step's loss tokens, so the split must not matter; per-row
    // computation is batch-independent, so even the bits agree.
    const a = await trainFresh({ microBatch: 4, gradAccum: 1 }, { dropout: 0 });
    const b = await trainFresh({ microBatch: 2, gradAccum: 2 }, { dropout: 0 });
    const c = await trainFresh({ microBatch: 1, gradAccum: 4 }, { dropout: 0 });
    let d = 0;
    for (let i = 0; i < a.params.length; i++) d = Math.max(d, Math.abs(a.params[i]! - b.params[i]!), Math.abs(a.params[i]! - c.params[i]!));
    expect(d).toBeLessThan(1e-6);
    for (const x of [a, b, c]) x.s.dispose();
  });
});

describe("checkpoints and resume", () => {
  test("stop after 2 steps, resume in a new session: bit-identical to an uninterrupted run", async () => {
    const full = await trainFresh({});
    const ck = join(dir, "a.ckpt");
    const first = await trainFresh({ checkpointPath: ck, stopAfterSteps: 2 });
    expect(first.res.completed).toBe(false);
    expect(first.res.endStep).toBe(2);
    expect(first.res.checkpoint).toBe(ck);
    first.s.dispose();

    const s2 = model.createSession({ rank: 4, alpha: 8, dropout: 0.1, threads: 1, seed: 999 }); // init is overwritten
    const rest = await s2.train(data, { ...BASE, resumeFrom: ck });
    expect(rest.startStep).toBe(2);
    expect(rest.completed).toBe(true);
    expect(rest.tokensSeen).toBe(full.res.tokensSeen);
    expect(bitEqual(s2.getParams(), full.params)).toBe(true);
    expect(rest.records.map((r) => r.loss)).toEqual(full.res.records.slice(2).map((r) => r.loss));
    s2.dispose();
    full.s.dispose();
  });

  test("periodic checkpoints are flagged in progress", async () => {
    const ck = join(dir, "b.ckpt");
    const flags: boolean[] = [];
    const s = model.createSession({ rank: 4, alpha: 8, threads: 2, seed: 11 });
    await s.train(data, { ...BASE, checkpointPath: ck, checkpointEvery: 2, onProgress: (p) => flags.push(p.checkpointed) });
    expect(flags).toEqual([false, true, false, true, false, false]); // none after the last step: the run is complete
    s.dispose();
  });

  test("a checkpoint of another configuration is refused", async () => {
    const ck = join(dir, "c.ckpt");
    const first = await trainFresh({ checkpointPath: ck, stopAfterSteps: 1 });
    first.s.dispose();
    const s = model.createSession({ rank: 4, alpha: 8, dropout: 0.1, threads: 2, seed: 11 });
    await expect(s.train(data, { ...BASE, lr: 1e-3, resumeFrom: ck })).rejects.toThrow(/different run/);
    s.dispose();
  });

  test("cancel mid-run: AbortError, a checkpoint at the last finished step, and resume ends where an uninterrupted run does", async () => {
    const full = await trainFresh({});
    const ck = join(dir, "d.ckpt");
    const s = model.createSession({ rank: 4, alpha: 8, dropout: 0.1, threads: 2, seed: 11 });
    const ctl = new AbortController();
    const seen: TrainProgress[] = [];
    const run = s.train(data, { ...BASE, checkpointPath: ck, signal: ctl.signal, onProgress: (p) => {
      seen.push(p);
      if (p.step === 2) ctl.abort();
    } });
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(existsSync(ck)).toBe(true);
    const s2 = model.createSession({ rank: 4, alpha: 8, dropout: 0.1, threads: 2 });
    const rest = await s2.train(data, { ...BASE, resumeFrom: ck });
    // Cancellation lands between micro-batches: the step in flight is dropped, not half-applied.
    expect(rest.startStep).toBeGreaterThanOrEqual(3);
    expect(rest.startStep).toBeLessThanOrEqual(seen.length);
    expect(bitEqual(s2.getParams(), full.params)).toBe(true);
    for (const x of [s, s2, full.s]) x.dispose();
  });
});

describe("schedule, progress, options", () => {
  test("warm-up then cosine decay; linear; constant", async () => {
    const lr = 1e-3;
    const run = async (schedule: "cosine" | "linear" | "constant") => (await trainFresh({ lr, schedule, warmupSteps: 2, minLrRatio: 0.1 })).res.records.map((r) => r.lr);
    const total = 6, warm = 2, lo = lr * 0.1;
    const p = (s: number) => (s - warm) / (total - warm);
    const cos = await run("cosine");
    const lin = await run("linear");
    const con = await run("constant");
    const expected = {
      cosine: [0, 1, 2, 3, 4, 5].map((s) => (s < warm ? (lr * (s + 1)) / warm : lo + (lr - lo) * 0.5 * (1 + Math.cos(Math.PI * p(s))))),
      linear: [0, 1, 2, 3, 4, 5].map((s) => (s < warm ? (lr * (s + 1)) / warm : lo + (lr - lo) * (1 - p(s)))),
      constant: [0, 1, 2, 3, 4, 5].map((s) => (s < warm ? (lr * (s + 1)) / warm : lr)),
    };
    for (let i = 0; i < total; i++) {
      expect(cos[i]!).toBeCloseTo(expected.cosine[i]!, 9);
      expect(lin[i]!).toBeCloseTo(expected.linear[i]!, 9);
      expect(con[i]!).toBeCloseTo(expected.constant[i]!, 9);
    }
  });

  test("warm-up by ratio: ceil(ratio x total)", async () => {
    const { res, s } = await trainFresh({ warmupSteps: undefined, warmupRatio: 0.3 });
    expect(res.warmupSteps).toBe(2);
    s.dispose();
  });

  test("progress: one event per step with loss, tokens/s and ETA", async () => {
    const events: TrainProgress[] = [];
    const { res, s } = await trainFresh({ onProgress: (p) => events.push(p) });
    expect(events.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const e of events) {
      expect(e.totalSteps).toBe(6);
      expect(Number.isFinite(e.loss)).toBe(true);
      expect(e.tokensPerSecond).toBeGreaterThan(0);
      expect(e.eta).toBeGreaterThanOrEqual(0);
      expect(e.lossTokens).toBeGreaterThan(0);
      expect(e.gradNorm).toBeGreaterThan(0);
    }
    expect(events.at(-1)!.eta).toBe(0);
    expect(res.lossTokensSeen).toBe(events.reduce((n, e) => n + e.lossTokens, 0) );
    s.dispose();
  });

  test("maxSteps caps the plan and the schedule spans the cap", async () => {
    const { res, s } = await trainFresh({ maxSteps: 4, schedule: "linear", warmupSteps: 0, minLrRatio: 0 });
    expect(res.totalSteps).toBe(4);
    expect(res.completed).toBe(true);
    expect(res.records.map((r) => r.lr)).toEqual([0, 1, 2, 3].map((k) => Math.fround(2e-3 * (1 - k / 4))));
    s.dispose();
  });

  test("clipping and weight decay change the update; gradNorm is measured before clipping", async () => {
    const plain = await trainFresh({ maxGradNorm: 0 }, { dropout: 0 });
    const clipped = await trainFresh({ maxGradNorm: 1e-4 }, { dropout: 0 });
    const decayed = await trainFresh({ maxGradNorm: 0, weightDecay: 0.5 }, { dropout: 0 });
    expect(clipped.res.records[0]!.gradNorm).toBe(plain.res.records[0]!.gradNorm);
    expect(bitEqual(plain.params, clipped.params)).toBe(false);
    const norm = (p: Float32Array) => Math.sqrt(p.reduce((s, x) => s + x * x, 0));
    expect(norm(decayed.params)).toBeLessThan(norm(plain.params));
    for (const x of [plain, clipped, decayed]) x.s.dispose();
  });

  test("bad options are errors, not crashes", async () => {
    const s = model.createSession({ rank: 2, threads: 1 });
    await expect(s.train(data, { schedule: "exp" as "linear" })).rejects.toThrow(/schedule/);
    expect(() => s.train(data, { microBatch: 0 })).toThrow(/microBatch/);
    expect(() => s.train({ ...data, offsets: new Float64Array([0, 5]) }, {})).toThrow(/offsets/);
    expect(() => model.createSession({ targets: ["q", "x" as "q"] })).toThrow(/target/);
    expect(() => model.createSession({ dropout: 1 })).toThrow(/dropout/);
    s.dispose();
  });
});

describe("evaluation and decoding", () => {
  test("per-example loss sums add up; log-probs per loss token", async () => {
    const s = model.createSession({ rank: 4, threads: 2 });
    const ev = await s.evaluate(data, { logprobs: true, microBatch: 5 });
    const n = data.offsets.length - 1;
    expect(ev.exampleLossSum.length).toBe(n);
    expect(ev.exampleLossSum.reduce((a, b) => a + b, 0)).toBeCloseTo(ev.lossSum, 6);
    let lossTokens = 0;
    for (let i = 0; i < data.loss.length; i++) lossTokens += data.loss[i]!;
    expect(ev.lossTokens).toBe(lossTokens);
    expect(ev.logprobs!.length).toBe(lossTokens);
    expect(ev.logprobOffsets!.length).toBe(n + 1);
    expect(-ev.logprobs!.reduce((a, b) => a + b, 0)).toBeCloseTo(ev.lossSum, 6);
    s.dispose();
  });

  test("greedy decoding stops at a stop token", async () => {
    const tok = await tokenizer(await tiny("qwen2"));
    const s = model.createSession({ rank: 4, threads: 2 });
    const prompt = tok.tokenize("Instruction: Say hi.\nResponse:");
    const free = await s.greedy(prompt, { maxTokens: 6 });
    expect(free.length).toBe(6);
    const stopped = await s.greedy(prompt, { maxTokens: 6, stop: [free[2]!] });
    expect(stopped).toEqual(free.slice(0, free.indexOf(free[2]!) + 1));
    s.dispose();
  });
});

describe("data plan", () => {
  test("every example once per epoch; micro-batches sorted by length; deterministic per seed", () => {
    const opts = { epochs: 3, microBatch: 2, gradAccum: 2, bucketWindow: 2, dataSeed: 9 };
    const plan = planTraining(data, opts);
    const n = data.offsets.length - 1;
    expect(plan.stepsPerEpoch).toBe(3);
    expect(plan.totalSteps).toBe(9);
    const len = (e: number) => data.offsets[e + 1]! - data.offsets[e]!;
    for (let ep = 0; ep < 3; ep++) {
      const seen = plan.steps.slice(ep * 3, ep * 3 + 3).flat(2).sort((a, b) => a - b);
      expect(seen).toEqual([...Array(n).keys()]);
    }
    for (const step of plan.steps) {
      const flat = step.flat();
      for (let i = 1; i < flat.length; i++) expect(len(flat[i]!)).toBeGreaterThanOrEqual(len(flat[i - 1]!));
      for (const mb of step) expect(mb.length).toBeLessThanOrEqual(2);
    }
    expect(planTraining(data, opts).steps).toEqual(plan.steps);
    expect(planTraining(data, { ...opts, dataSeed: 10 }).steps).not.toEqual(plan.steps);
    expect(plan.steps.slice(0, 3)).not.toEqual(plan.steps.slice(3, 6)); // reshuffled each epoch
  });

  test("length bucketing reduces padding", () => {
    // 64 examples of very different lengths: padding = sum over micro-batches of (n x longest - sum).
    const ex = Array.from({ length: 64 }, (_, i) => 3 + ((i * 37) % 60));
    const offsets = new Float64Array(ex.length + 1);
    ex.forEach((l, i) => (offsets[i + 1] = offsets[i]! + l));
    const total = offsets[ex.length]!;
    const d: TrainData = { tokens: new Int32Array(total), loss: new Uint8Array(total), offsets };
    const padding = (bucketWindow: number) => {
      const plan = planTraining(d, { epochs: 1, microBatch: 4, gradAccum: 1, bucketWindow, dataSeed: 1 });
      let pad = 0;
      for (const mb of plan.steps.flat()) {
        const lens = mb.map((e) => ex[e]!);
        pad += mb.length * Math.max(...lens) - lens.reduce((a, b) => a + b, 0);
      }
      return pad;
    };
    expect(padding(8)).toBeLessThan(0.3 * padding(1));
  });

  test("examples longer than maxLength are cut and counted", async () => {
    const s = model.createSession({ rank: 2, threads: 2 });
    const res = await s.train(data, { epochs: 1, microBatch: 4, gradAccum: 1, maxLength: 8, lr: 1e-4 });
    expect(res.truncatedExamples).toBeGreaterThan(0);
    s.dispose();
  });
});
