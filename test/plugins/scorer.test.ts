// The scorer abstraction (plugins/shared/scorer.ts, model service scorer()): the training
// engine's forward scores continuations and candidates like llama.cpp's scorer, on the same
// tokens; the selection rule; which scorer ran goes into provenance.
//
// Parity runs the engine's CPU backend: the scorer code is the same whatever backend loaded
// the base (GPU parity: native/bench/score_parity.ts on the GPU machine). Tolerance
// (specs/training.md §14): log p = logit - logsumexp(logits), and parity.test.ts holds our
// plain forward's logits to llama.cpp's within 0.03 (f32) / 0.05 (f16), so one log-prob
// may differ by twice that: 0.06 / 0.1.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { loadModel, type Model, type ScoreItem, type ScoreOutput } from "../../native/index.ts";
import { loadTrainModel, type TrainModel } from "../../native/train.ts";
import { ModelService } from "../../plugins/shared/model-service.ts";
import { chooseScorer, EngineScorer } from "../../plugins/shared/scorer.ts";
import type { Services } from "../../core/plugin.ts";
import { tempDir } from "../helpers.ts";

setDefaultTimeout(300_000);

const STORIES = join(import.meta.dir, "..", "..", "..", "shared", "models", "stories260K.gguf");

const PAIRS: [string, string][] = [
  ["Once upon a time, there was a little girl named", " Lily. She liked to play in the park with her dog."],
  ["Instruction: Say hello.\nResponse:", " Hello!\nEND"],
  ["Instruction: Name three colors.\nResponse:", " Red, green and blue.\nEND"],
  ["The quick brown fox", " jumps over the lazy dog."],
  ["One day, the cat saw a big red ball. It", " ran to the ball and played all day."],
  ["Instruction: Add 17 and 25.\nResponse:", " 42\nEND"],
];

function items(m: Model): ScoreItem[] {
  const cand = m.tokenize(" the").slice(-1).concat(m.tokenize(" a").slice(-1));
  return PAIRS.map(([p, c], i) => ({ prompt: p, continuation: c, ...(i % 2 === 0 ? { candidates: cand } : {}) }));
}

/** max |Δ| over every continuation log-prob and candidate; the token ids must be the same. */
function compare(a: ScoreOutput, b: ScoreOutput): { maxLogprob: number; maxCandidate: number; maxSum: number; tokens: number } {
  let maxLogprob = 0, maxCandidate = 0, maxSum = 0, tokens = 0;
  expect(a.items.length).toBe(b.items.length);
  a.items.forEach((x, i) => {
    const y = b.items[i]!;
    expect(y.continuationTokens).toEqual(x.continuationTokens);
    expect(y.promptTokenCount).toBe(x.promptTokenCount);
    expect(y.logprobs.length).toBe(x.logprobs.length);
    x.logprobs.forEach((v, j) => (maxLogprob = Math.max(maxLogprob, Math.abs(v - y.logprobs[j]!))));
    tokens += x.logprobs.length;
    maxSum = Math.max(maxSum, Math.abs(x.sum - y.sum) / Math.max(1, x.logprobs.length));
    expect(y.candidates === undefined).toBe(x.candidates === undefined);
    x.candidates?.forEach((v, j) => (maxCandidate = Math.max(maxCandidate, Math.abs(v - y.candidates![j]!))));
  });
  return { maxLogprob, maxCandidate, maxSum, tokens };
}

type Case = { name: string; path: () => Promise<string | null>; tol: number };
const CASES: Case[] = [
  { name: "tiny qwen2 f32", path: () => tinyModel({ arch: "qwen2", type: "f32" }), tol: 0.06 },
  { name: "tiny llama f32", path: () => tinyModel({ arch: "llama", type: "f32" }), tol: 0.06 },
  { name: "tiny qwen2 f16", path: () => tinyModel({ arch: "qwen2", type: "f16" }), tol: 0.1 },
  { name: "stories260K (real weights, f32)", path: async () => (existsSync(STORIES) ? STORIES : null), tol: 0.06 },
];

for (const c of CASES) {
  describe(`engine scorer vs llama.cpp's: ${c.name}`, () => {
    let path: string | null = null;
    let llama: Model, tm: TrainModel, engine: EngineScorer;
    beforeAll(async () => {
      path = await c.path();
      if (!path) return;
      // As the model service loads it for a stage (default f16 KV cache, flash attention auto).
      llama = await loadModel(path, { threads: 2, contextSize: 1024, parallel: 4 });
      tm = await loadTrainModel(path, { backend: "cpu" });
      engine = new EngineScorer(tm, { tokenizer: llama, threads: 2, microBatch: 3 });
    });
    afterAll(() => {
      engine?.dispose();
      tm?.dispose();
      llama?.dispose();
    });

    test(`continuation and candidate log-probs within ${c.tol}`, async () => {
      if (!path) {
        console.log(`skipped: ${STORIES} is absent (a real trained model; CI has it)`);
        return;
      }
      const its = items(llama);
      const ref = await llama.score(its);
      const got = await engine.score(its);
      const d = compare(ref, got);
      console.log(`${c.name}: ${d.tokens} continuation tokens, max |Δ log p| ${d.maxLogprob.toExponential(2)}, candidates ${d.maxCandidate.toExponential(2)}, per-token sum ${d.maxSum.toExponential(2)}`);
      expect(d.tokens).toBeGreaterThan(20);
      expect(d.maxLogprob).toBeLessThan(c.tol);
      expect(d.maxCandidate).toBeLessThan(c.tol);
      expect(got.stats.items).toBe(its.length);
    });

    test("token ids in, the same as text in; the result does not depend on the batch", async () => {
      if (!path) return;
      const its = items(llama);
      const ids = its.map((it) => ({ ...it, prompt: llama.tokenize(it.prompt as string), continuation: llama.tokenize(it.continuation as string) }));
      const a = await engine.score(its);
      const b = await engine.score(ids);
      const one = await engine.score([its[3]!]);
      expect(b.items).toEqual(a.items);
      expect(one.items[0]!.logprobs.length).toBe(a.items[3]!.logprobs.length);
      one.items[0]!.logprobs.forEach((v, j) => expect(Math.abs(v - a.items[3]!.logprobs[j]!)).toBeLessThan(1e-9));
    });
  });
}

describe("engine scorer with an adapter per call", () => {
  let llama: Model, tm: TrainModel, engine: EngineScorer;
  const dir = tempDir();
  const adapterPath = join(dir, "a.gguf");
  beforeAll(async () => {
    const path = await tinyModel({ arch: "qwen2", type: "f32" });
    llama = await loadModel(path, { threads: 2, contextSize: 1024, parallel: 4 });
    tm = await loadTrainModel(path, { backend: "cpu" });
    // A non-trivial adapter: random A and B (a fresh one is the identity).
    const s = tm.createSession({ rank: 4, alpha: 8, threads: 2 });
    const p = s.getParams();
    let x = 1;
    for (let i = 0; i < p.length; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      p[i] = (x / 2 ** 31 - 0.5) * 0.4;
    }
    s.setParams(p);
    await s.saveAdapter(adapterPath);
    s.dispose();
    engine = new EngineScorer(tm, { tokenizer: llama, threads: 2 });
  });
  afterAll(() => {
    engine?.dispose();
    tm?.dispose();
    llama?.dispose();
  });

  test("the adapter moves the log-probs as it moves llama.cpp's", async () => {
    const adapter = await llama.loadAdapter(adapterPath);
    try {
      const its = items(llama);
      const base = await llama.score(its);
      const ref = await llama.score(its, { adapters: [{ adapter }] });
      const got = await engine.score(its, { adapters: [{ adapter }] });
      const moved = compare(base, ref).maxLogprob;
      const d = compare(ref, got);
      console.log(`adapter: moves log p by up to ${moved.toFixed(3)}; engine vs llama.cpp max |Δ| ${d.maxLogprob.toExponential(2)}`);
      expect(moved).toBeGreaterThan(0.1);
      expect(d.maxLogprob).toBeLessThan(0.06);
      expect(d.maxCandidate).toBeLessThan(0.06);
      await expect(engine.score(its, { adapters: [{ adapter, scale: 0.5 }] })).rejects.toThrow(/scale/);
    } finally {
      adapter.dispose();
    }
  });
});

describe("selection", () => {
  const none = { cudaBuilt: false, cudaUsable: false, cudaReason: "no CUDA here" };
  const gpu = { cudaBuilt: true, cudaUsable: true };

  test("auto: the engine only where its CUDA backend is usable and memory allows", () => {
    expect(chooseScorer("auto", none)).toEqual({ kind: "llama", reason: expect.stringContaining("no CUDA here") });
    expect(chooseScorer("auto", gpu).kind).toBe("engine");
    expect(chooseScorer("auto", gpu, { ok: false, why: "too big" })).toEqual({ kind: "llama", reason: expect.stringContaining("too big") });
    expect(chooseScorer("llama", gpu).kind).toBe("llama");
    expect(chooseScorer("engine", none).kind).toBe("engine");
    expect(() => chooseScorer("engine", gpu, { ok: false, why: "too big" })).toThrow(/too big/);
  });

  function services(): Services & { disposeAll(): Promise<void> } {
    const m = new Map<string, { value: unknown; dispose?: (v: never) => unknown }>();
    return {
      get: <T>(k: string) => m.get(k)?.value as T | undefined,
      async getOrCreate<T>(k: string, create: () => Promise<T> | T, dispose?: (v: T) => unknown) {
        if (!m.has(k)) m.set(k, { value: await create(), dispose: dispose as never });
        return m.get(k)!.value as T;
      },
      async release(k: string) {
        const it = m.get(k);
        m.delete(k);
        await it?.dispose?.(it.value as never);
      },
      async disposeAll() {
        for (const k of [...m.keys()]) await this.release(k);
      },
    };
  }

  test("the model service: llama.cpp on this CPU machine by default, the engine when chosen, in provenance; it owns the engine's copy", async () => {
    const reg = services();
    try {
      const path = await tinyModel({ arch: "qwen2", type: "f32" });
      const s = await ModelService.of(reg);
      const lm = await s.acquire(path, { load: { threads: 2 } });
      const auto = await s.scorer(path);
      expect(auto.kind).toBe("llama");
      expect(auto.engine).toBeNull();
      expect(auto.provenance).toMatchObject({ scorer: "llama.cpp", requested: "auto", backend: "cpu" });
      expect(auto.provenance.reason).toContain("not usable");
      expect(s.residentEngines()).toEqual([]);

      const eng = await s.scorer(path, { scorer: "engine", engine: { threads: 2 } });
      expect(eng.kind).toBe("engine");
      expect(eng.provenance).toMatchObject({ scorer: "engine", requested: "engine", backend: "cpu", storage: "dense", weightType: "f32" });
      // Shared: asking again gives the same scorer, no second load.
      expect((await s.scorer(path, { scorer: "engine" })).engine).toBe(eng.engine);
      // Where CUDA is usable, auto takes the engine (forced onto the CPU backend here).
      const forced = await s.scorer(path, { backends: { cudaBuilt: true, cudaUsable: true }, engine: { backend: "cpu" } });
      expect(forced.kind).toBe("engine");
      expect(forced.provenance.requested).toBe("auto");
      const its = [{ prompt: "The quick brown fox", continuation: " jumps over the lazy dog." }];
      const d = compare(await lm.model.score(its), await eng.engine!.score(its));
      expect(d.maxLogprob).toBeLessThan(0.06);
      expect(s.residentEngines().length).toBe(1);
      // Unloading the model takes the engine's copy with it.
      await s.unload(path);
      expect(s.residentEngines()).toEqual([]);
    } finally {
      await reg.disposeAll();
    }
  });
});
