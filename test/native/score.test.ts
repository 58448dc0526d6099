// Scoring (SPEC §4): log-probs proven against log-softmax of logits from the plain
// reference path, batched == alone, shared-prefix reuse, chunking, cancellation.
//
// Exactness is checked with an f32 KV cache and flash attention off: with the defaults
// (f16 K/V, flash attention converting Q to f16) the same item computed in differently
// shaped batches differs by f16 rounding, ~5e-3 in log-prob on the random tiny model;
// one test below bounds that too.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { loadModel, type Model, type ScoreItem, type ScoredItem } from "../../native/index.ts";
import { logSoftmaxRow, tiny } from "./helpers.ts";
import { expectSameNumbers, logprobTol } from "./numerics.ts";

/** The log-prob tolerance of these tests: 2e-4 on the CPU build, the GPU's on a GPU (numerics.ts). */
const TOL = logprobTol(2e-4);

let model: Model;
let V: number;
const EXACT = { kvType: "f32", flashAttention: "off" } as const;

const RUBRIC =
  "You are a careful judge of instructions. Read the instruction below and decide whether it is clear, " +
  "self-contained and answerable without further context. Answer A if it is, B if it is not.\n\n";
const INSTRUCTIONS = [
  "Write a haiku about autumn leaves.",
  "Explain why the sky is blue.",
  "asdf qwer",
  "List three prime numbers greater than 50.",
  "Do the thing from before.",
  "Summarise the plot of Hamlet in two sentences.",
  "Translate 'good morning' into French.",
  "What is 17 times 23?",
];

function rubricItems(m: Model): ScoreItem[] {
  const A = m.tokenize(" A"), B = m.tokenize(" B");
  return INSTRUCTIONS.map((ins, i) => ({
    prompt: RUBRIC + `Instruction: ${ins}\nAnswer:`,
    continuation: i % 2 ? " A, because it is clear." : " B",
    candidates: [A[0]!, B[0]!],
  }));
}

/** Log-probs the plain way: evalLogits on prompt+continuation, log-softmax in JS (double). */
async function reference(m: Model, prompt: number[], continuation: number[], candidates: number[] = []) {
  const logits = await m.evalLogits([...prompt, ...continuation]);
  const row = (pos: number) => logSoftmaxRow(logits.subarray(pos * V, (pos + 1) * V));
  const logprobs = continuation.map((t, k) => row(prompt.length - 1 + k)[t]!);
  const last = row(prompt.length - 1);
  return { logprobs, candidates: candidates.map((c) => last[c]!) };
}

function expectClose(a: number[], b: number[], tol: number) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(tol);
}

function expectSameScores(a: ScoredItem[], b: ScoredItem[], tol: number) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    expectClose(a[i]!.logprobs, b[i]!.logprobs, tol);
    expect(Math.abs(a[i]!.sum - b[i]!.sum)).toBeLessThan(tol * Math.max(1, a[i]!.logprobs.length));
    expectClose(a[i]!.candidates ?? [], b[i]!.candidates ?? [], tol);
  }
}

beforeAll(async () => {
  model = await loadModel(await tiny(), { ...EXACT, contextSize: 2048, parallel: 4 });
  V = model.info.vocabSize;
});
afterAll(() => model?.dispose());

describe("log-probs against the reference path", () => {
  test("each continuation token and the candidates", async () => {
    const items = rubricItems(model);
    const out = await model.score(items);
    expect(out.items).toHaveLength(items.length);
    for (let i = 0; i < items.length; i++) {
      const prompt = model.tokenize(items[i]!.prompt as string);
      const cont = model.tokenize(items[i]!.continuation as string);
      const got = out.items[i]!;
      expect(got.continuationTokens).toEqual(cont);
      expect(got.promptTokenCount).toBe(prompt.length);
      const ref = await reference(model, prompt, cont, Array.from(items[i]!.candidates!));
      expectClose(got.logprobs, ref.logprobs, TOL);
      expectClose(got.candidates!, ref.candidates, TOL);
      expect(Math.abs(got.sum - ref.logprobs.reduce((s, x) => s + x, 0))).toBeLessThan(logprobTol(1e-3) * Math.max(1, ref.logprobs.length));
      // The first continuation token is predicted at the last prompt position, like the candidates.
      if (cont[0] === items[i]!.candidates![0]) expect(got.logprobs[0]).toBeCloseTo(got.candidates![0]!, 9);
      for (const lp of got.logprobs) expect(lp).toBeLessThanOrEqual(0);
    }
  });

  test("the in-graph log-softmax matches the host's, for any number of candidates per item", async () => {
    // Items ask for 0, 2 and 9 candidates, so the graph gathers 10 logits per row and
    // pads the rest; split and unified caches, with and without a shared prefix.
    const ids = model.tokenize(" a b c d e f g h i");
    const items: ScoreItem[] = rubricItems(model).map((it, i) => ({ ...it, candidates: i % 3 === 0 ? [] : i % 3 === 1 ? it.candidates : ids.slice(0, 9) }));
    for (const kvUnified of [true, false]) {
      const ctx = await model.createContext({ ...EXACT, contextSize: 2048, parallel: 3, kvUnified } as Parameters<Model["createContext"]>[0]);
      try {
        const graph = await ctx.score(items, { logSoftmax: "graph" });
        const host = await ctx.score(items, { logSoftmax: "host" });
        expectSameScores(graph.items, host.items, 2e-5);
        for (let i = 0; i < items.length; i++) expect(graph.items[i]!.candidates ?? []).toHaveLength(items[i]!.candidates!.length);
      } finally {
        ctx.dispose();
      }
    }
    await expect(model.score(items, { logSoftmax: "gpu" as "graph" })).rejects.toThrow(/logSoftmax must be "auto", "graph" or "host"/);
  });

  test("token ids and text give the same result", async () => {
    const prompt = model.tokenize("The capital of France is");
    const cont = model.tokenize(" Paris.");
    const [a, b] = (await model.score([{ prompt, continuation: cont }, { prompt: "The capital of France is", continuation: " Paris." }])).items;
    expectSameNumbers(a!.logprobs, b!.logprobs);
    expect(a!.continuationTokens).toEqual(cont);
    expect(b!.continuationTokens).toEqual(cont);
  });

  test("Int32Array inputs", async () => {
    const prompt = new Int32Array(model.tokenize("One two three"));
    const cont = new Int32Array(model.tokenize(" four"));
    const r = await model.score([{ prompt, continuation: cont }]);
    const ref = await reference(model, Array.from(prompt), Array.from(cont));
    expectClose(r.items[0]!.logprobs, ref.logprobs, TOL);
  });

  test("candidates only, and nothing to score", async () => {
    const prompt = model.tokenize("Is water wet? Answer:");
    const cands = [...model.tokenize(" A"), ...model.tokenize(" B"), 0, V - 1];
    const r = await model.score([
      { prompt, continuation: [], candidates: cands },
      { prompt, continuation: [] },
    ]);
    const ref = await reference(model, prompt, [], cands);
    expectClose(r.items[0]!.candidates!, ref.candidates, TOL);
    expect(r.items[0]!.logprobs).toEqual([]);
    expect(r.items[1]).toMatchObject({ logprobs: [], sum: 0 });
    expect(r.items[1]!.candidates).toBeUndefined();
  });

  test("single-token prompt", async () => {
    const r = await model.score([{ prompt: [9707], continuation: [11, 1879] }]);
    const ref = await reference(model, [9707], [11, 1879]);
    expectClose(r.items[0]!.logprobs, ref.logprobs, TOL);
  });
});

describe("batching", () => {
  test("batched == alone, with and without prefix sharing", async () => {
    const items = rubricItems(model);
    const together = (await model.score(items)).items;
    const alone: ScoredItem[] = [];
    for (const it of items) alone.push((await model.score([it], { reusePrefix: false })).items[0]!);
    expectSameScores(together, alone, TOL);
    const unshared = (await model.score(items, { reusePrefix: false })).items;
    expectSameScores(together, unshared, TOL);
  });

  test("shared prefix is computed once and cached for the next call", async () => {
    const ctx = await model.createContext({ ...EXACT, contextSize: 2048, parallel: 4 });
    try {
      const items = rubricItems(model);
      const rubricLen = model.tokenize(RUBRIC + "Instruction:").length;
      const first = await ctx.score(items);
      expect(first.stats.prefixTokens).toBeGreaterThanOrEqual(rubricLen - 1);
      expect(first.stats.tokensReused).toBeGreaterThanOrEqual((items.length - 1) * (rubricLen - 1));
      expect(first.stats.tokensDecoded).toBeLessThan(first.stats.tokens);
      // Same rubric again: nothing new to cache, every item reuses it.
      const second = await ctx.score(items);
      expect(second.stats.prefixTokens).toBe(0);
      expect(second.stats.tokensReused).toBeGreaterThanOrEqual(items.length * (rubricLen - 1));
      expectSameScores(first.items, second.items, 1e-6);
      // Without sharing every position is decoded.
      const plain = await ctx.score(items, { reusePrefix: false });
      expect(plain.stats.tokensDecoded).toBe(plain.stats.tokens);
      expect(plain.stats.tokensReused).toBe(0);
      expectSameScores(first.items, plain.items, TOL);
    } finally {
      ctx.dispose();
    }
  });

  test("small batches, few outputs per batch, one sequence: same results", async () => {
    const items = rubricItems(model);
    const base = (await model.score(items)).items;
    for (const opts of [
      { contextSize: 1024, parallel: 1, batchSize: 16, outputsMax: 3 },
      { contextSize: 1024, parallel: 3, batchSize: 7, outputsMax: 1 },
      { contextSize: 1024, parallel: 16, batchSize: 64, outputsMax: 64, ubatchSize: 8 },
    ]) {
      const ctx = await model.createContext({ ...EXACT, ...opts });
      try {
        const r = await ctx.score(items);
        expectSameScores(base, r.items, TOL);
      } finally {
        ctx.dispose();
      }
    }
  });

  test("split (non-unified) KV caches: same results, no sharing", async () => {
    const items = rubricItems(model);
    const ctx = await model.createContext({ ...EXACT, contextSize: 2048, parallel: 3, kvUnified: false });
    try {
      expect(ctx.info.sequenceContextSize).toBe(512);
      const r = await ctx.score(items);
      expect(r.stats.tokensReused).toBe(0);
      expectSameScores((await model.score(items)).items, r.items, TOL);
      const tooLong = Array.from({ length: 600 }, (_, i) => 100 + i);
      await expect(ctx.score([{ prompt: tooLong, continuation: [1] }])).rejects.toThrow(/do not fit the context/);
    } finally {
      ctx.dispose();
    }
  });

  test("split caches: an item's log-probs are bit-identical batched and alone, one-row items too", async () => {
    // specs/inference.md. An item of one scored row decodes alone as a one-row matmul, which
    // llamafile's sgemm declines and ggml's dot product computes; batched, it shares the
    // matmul with other rows. With llamafile in the build the two disagree in the last bits
    // on any x86 CPU (one accumulator of 8 or 16 lanes against four).
    const items: ScoreItem[] = [
      ...rubricItems(model).slice(0, 4),
      { prompt: [9707], continuation: [], candidates: [11, 1879, 3] },
      { prompt: [9707, 11], continuation: [1879] },
      { prompt: model.tokenize("Answer:"), continuation: [], candidates: [32, 33] },
    ];
    const batched = await model.createContext({ ...EXACT, contextSize: 4096, parallel: 7, kvUnified: false });
    const alone = await model.createContext({ ...EXACT, contextSize: 1024, parallel: 1, kvUnified: false });
    try {
      const together = (await batched.score(items)).items;
      for (let i = 0; i < items.length; i++) {
        const one = (await alone.score([items[i]!])).items[0]!;
        expectSameNumbers(together[i]!.logprobs, one.logprobs);
        expectSameNumbers(together[i]!.candidates ?? [], one.candidates ?? []);
      }
    } finally {
      batched.dispose();
      alone.dispose();
    }
  });

  test("a context too small for all items at once still scores them all", async () => {
    const items = rubricItems(model);
    const longest = Math.max(...items.map((it) => model.tokenize(it.prompt as string).length + model.tokenize(it.continuation as string).length));
    const ctx = await model.createContext({ ...EXACT, contextSize: longest + 8, parallel: 8 });
    try {
      const r = await ctx.score(items);
      expectSameScores((await model.score(items)).items, r.items, TOL);
    } finally {
      ctx.dispose();
    }
  });

  test("many items, mixed prefixes, in order", async () => {
    const items: ScoreItem[] = [];
    for (let i = 0; i < 40; i++) {
      const head = i % 3 === 0 ? RUBRIC : i % 3 === 1 ? "Completely different header text that goes on for a while. " : "";
      items.push({ prompt: `${head}Item number ${i}:`, continuation: ` value ${i * 7}` });
    }
    const r = await model.score(items, { minSharedPrefix: 4 });
    for (let i = 0; i < items.length; i += 7) {
      const ref = await reference(model, model.tokenize(items[i]!.prompt as string), model.tokenize(items[i]!.continuation as string));
      expectClose(r.items[i]!.logprobs, ref.logprobs, TOL);
    }
    expect(r.stats.tokensReused).toBeGreaterThan(0);
  });

  test("default precision (f16 K/V, flash attention auto): batched within f16 noise of alone", async () => {
    const m = await loadModel(await tiny(), { contextSize: 2048, parallel: 4 });
    try {
      const items = rubricItems(m);
      const together = (await m.score(items)).items;
      const unshared = (await m.score(items, { reusePrefix: false })).items;
      const alone: ScoredItem[] = [];
      for (const it of items) alone.push((await m.score([it], { reusePrefix: false })).items[0]!);
      expectSameScores(together, alone, 2e-2);
      expectSameScores(unshared, alone, 2e-2);
    } finally {
      m.dispose();
    }
  });

  test("concurrent calls on one context queue and both succeed", async () => {
    const items = rubricItems(model);
    const [a, b] = await Promise.all([model.score(items), model.score(items.slice().reverse())]);
    expectSameScores(a.items, b.items.slice().reverse(), TOL);
  });
});

describe("progress and cancellation", () => {
  test("progress reaches the total", async () => {
    const events: { done: number; total: number }[] = [];
    const items = rubricItems(model);
    await model.score(items, { onProgress: (p) => events.push(p) });
    expect(events.length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ stage: "score", done: items.length, total: items.length });
  });

  test("an aborted signal rejects with AbortError and the context stays usable", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(model.score(rubricItems(model), { signal: ac.signal })).rejects.toMatchObject({ name: "AbortError" });

    const ctx = await model.createContext({ ...EXACT, contextSize: 2048, parallel: 1, batchSize: 8 });
    try {
      const many: ScoreItem[] = Array.from({ length: 200 }, (_, i) => ({ prompt: `${RUBRIC} ${i}`, continuation: " and so on and so forth" }));
      const ac2 = new AbortController();
      let seen = 0;
      const p = ctx.score(many, { reusePrefix: false, signal: ac2.signal, onProgress: () => ++seen === 3 && ac2.abort() });
      const err = await p.then(() => null, (e: Error) => e);
      expect(err?.name).toBe("AbortError");
      expect((err as Error & { code: string }).code).toBe("ABORT_ERR");
      const after = await ctx.score(rubricItems(model));
      expectSameScores(after.items, (await model.score(rubricItems(model))).items, TOL);
    } finally {
      ctx.dispose();
    }
  });

  test("a progress callback that throws does not break the job", async () => {
    const r = await model.score(rubricItems(model).slice(0, 2), {
      onProgress: () => {
        throw new Error("boom");
      },
    });
    expect(r.items).toHaveLength(2);
  });

  test("dispose while scoring: the job finishes, then the context is freed", async () => {
    const ctx = await model.createContext({ ...EXACT, contextSize: 1024, parallel: 2 });
    const p = ctx.score(rubricItems(model));
    ctx.dispose();
    const r = await p;
    expect(r.items).toHaveLength(INSTRUCTIONS.length);
    expect(ctx.disposed).toBe(true);
  });
});
