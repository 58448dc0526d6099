// Batched generation (native/generate.ts): batched == alone for greedy and seeded
// sampling, prefix reuse == no reuse, stop strings, max tokens, eos, adapters, streaming,
// cancellation.
//
// The tiny llama model is used (its separate output matrix gives varied greedy text; the
// tied qwen2 tiny repeats one token). Exactness (specs/inference.md): f32 KV cache, flash
// attention off and split caches make a sequence's logits bit-identical however it was
// batched, so seeded sampling is compared there; the unified cache agrees only to rounding
// (where a sequence's cells lie changes the attention sums), enough for greedy text. One
// thread per context: the CI box has 2 shared cores, and ggml's barrier-synchronised
// threads slow down by orders of magnitude when a core is taken away.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

setDefaultTimeout(120_000);
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate, generateStream, loadAdapter, loadModel, textWithStop, type Context, type GenerateRequest, type GenerateResult, type Model } from "../../native/index.ts";
import { logSoftmaxRow, tiny, writeFavouringLora, writeTinyLora } from "./helpers.ts";
import { expectGreedyAgrees, expectSampledAgrees, logprobTol } from "./numerics.ts";

const EXACT = { kvType: "f32", flashAttention: "off", threads: 1 } as const;
const HEADER =
  "Instruction: Name a colour.\nResponse: Blue.\nEND\n\nInstruction: Add two and two.\nResponse: Four.\nEND\n\n" +
  "Instruction: Name a planet.\nResponse: Mars.\nEND\n\n";

let dir: string;
let modelPath: string;
let model: Model;
let alone: Context;

/** 17 requests: 9 share a few-shot header, 8 do not; prompt lengths 1..~70 tokens; maxTokens 4..36. */
function mixedRequests(): GenerateRequest[] {
  const tails = ["Write a poem.", "What is 2+2?", "Name a fruit.", "Say hello.", "Count to five.", "Describe the sea.", "Why is the sky blue?", "List three animals.", "Spell cat."];
  const shared = tails.map((t, i) => ({ prompt: `${HEADER}Instruction: ${t}\nResponse:`, sampling: { maxTokens: 4 + ((i * 7) % 33) } }));
  const own = ["Hi", "The quick brown fox jumps over the lazy dog and then", "Once upon a time", "1, 2, 3,", "Paris is the capital of", "A", "In 1492, Columbus", "def main():"];
  return [...shared, ...own.map((p, i) => ({ prompt: p, sampling: { maxTokens: 36 - ((i * 5) % 30) } }))];
}

async function aloneEach(reqs: GenerateRequest[], opts: Parameters<typeof generate>[2] = {}, ctx: Context = alone): Promise<GenerateResult[]> {
  const out: GenerateResult[] = [];
  for (const r of reqs) out.push((await generate(ctx, [r], opts)).results[0]!);
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-generate-"));
  modelPath = await tiny({ arch: "llama" });
  model = await loadModel(modelPath, { contextSize: 4096, parallel: 8, ...EXACT });
  alone = await model.createContext({ contextSize: 1024, parallel: 1, ...EXACT });
});
afterAll(() => {
  alone?.dispose();
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("batched == alone", () => {
  test("greedy: 17 requests in 8 sequences, shared header or not, different lengths", async () => {
    const reqs = mixedRequests();
    const batched = await generate(model, reqs);
    const single = await aloneEach(reqs, { reusePrefix: false });
    expect(batched.results.length).toBe(reqs.length);
    for (let i = 0; i < reqs.length; i++) {
      const b = batched.results[i]!;
      expect(b.index).toBe(i);
      // Identical on the CPU build; on a GPU identical up to a near-tie (test/native/numerics.ts).
      if ((await expectGreedyAgrees(alone, model.tokenize(reqs[i]!.prompt as string), b.tokens, single[i]!.tokens, { vocab: model.info.vocabSize })) === "same") {
        expect(b.text).toBe(single[i]!.text);
      }
      expect(b.stop).toBe("length");
      expect(b.nTokens).toBe(reqs[i]!.sampling!.maxTokens!);
      // The concatenated pieces: a continuation keeps its leading space (detokenize drops it).
      expect(b.text).toBe(new TextDecoder().decode(Buffer.concat(b.tokens.map((t) => model.tokenBytes(t)))));
    }
    // Continuous batching: far fewer decodes than generated tokens; the header was shared.
    expect(batched.stats.decodeCalls).toBeLessThan(batched.stats.tokensGenerated / 3);
    expect(batched.stats.tokensReused).toBeGreaterThan(0);
    expect(batched.stats.tokensGenerated).toBe(reqs.reduce((s, r) => s + r.sampling!.maxTokens!, 0));
  });

  test("greedy picked in the graph == picked on the host from the copied rows", async () => {
    const reqs = mixedRequests();
    const device = await generate(model, reqs, { greedy: "graph" });
    const host = await generate(model, reqs, { greedy: "host" });
    for (let i = 0; i < reqs.length; i++) expect(device.results[i]!.tokens).toEqual(host.results[i]!.tokens);
    // A repetition penalty needs the row on the host: such a call takes the host path whatever the option says.
    const pen = reqs.slice(0, 4).map((r) => ({ ...r, sampling: { ...r.sampling, repetitionPenalty: 1.3 } }));
    const a = await generate(model, pen, { greedy: "graph" });
    const b = await generate(model, pen, { greedy: "host" });
    for (let i = 0; i < pen.length; i++) expect(a.results[i]!.tokens).toEqual(b.results[i]!.tokens);
  });

  test("seeded sampling (top-k, top-p, min-p, temperature, repetition penalty), split caches", async () => {
    // A draw flips wherever u lands within rounding of a cumulative-mass boundary, so only
    // bit-identical logits make this hold for every seed: 8 sequences decoding side by side
    // against each alone, one row per decode (ggml's dot product for a one-row matmul,
    // llamafile's tiles for more, until the build dropped llamafile: CMakeLists.txt).
    const batchedCtx = await model.createContext({ contextSize: 4096, parallel: 8, kvUnified: false, ...EXACT });
    const aloneCtx = await model.createContext({ contextSize: 1024, parallel: 1, kvUnified: false, ...EXACT });
    try {
      const sampling = { temperature: 0.9, topK: 50, topP: 0.95, minP: 0.02, repetitionPenalty: 1.2, repetitionWindow: 16 };
      const reqs = mixedRequests().map((r, i) => ({ ...r, sampling: { ...r.sampling, ...sampling, seed: 1000 + i } }));
      const batched = await generate(batchedCtx, reqs);
      const single = await aloneEach(reqs, {}, aloneCtx);
      expectSampledAgrees(reqs.map((_, i) => [batched.results[i]!.tokens, single[i]!.tokens]));
      // The pilot's instruction sampling: top-p without top-k (the fused path, sampler.cpp).
      const pilot = reqs.map((r) => ({ ...r, sampling: { maxTokens: r.sampling.maxTokens, seed: r.sampling.seed, temperature: 0.7, topP: 0.9, repetitionPenalty: 1.1 } }));
      const pb = await generate(batchedCtx, pilot);
      const ps = await aloneEach(pilot, {}, aloneCtx);
      expectSampledAgrees(reqs.map((_, i) => [pb.results[i]!.tokens, ps[i]!.tokens]));
      // ... and the seeds matter.
      const reseeded = await generate(batchedCtx, reqs.map((r) => ({ ...r, sampling: { ...r.sampling, seed: r.sampling.seed + 1 } })));
      const same = reseeded.results.filter((r, i) => r.text === batched.results[i]!.text).length;
      expect(same).toBeLessThan(3);
    } finally {
      batchedCtx.dispose();
      aloneCtx.dispose();
    }
  });

  test("sampling spread over threads gives the same tokens as one thread", async () => {
    const ctx = await model.createContext({ contextSize: 2048, parallel: 8, ...EXACT, threads: 2 });
    try {
      const reqs = mixedRequests().map((r, i) => ({ ...r, sampling: { ...r.sampling, temperature: 1, seed: i } }));
      const one = await generate(model, reqs);
      const two = await generate(ctx, reqs);
      for (let i = 0; i < reqs.length; i++) expect(two.results[i]!.tokens).toEqual(one.results[i]!.tokens);
    } finally {
      ctx.dispose();
    }
  });

  test("a small batch (prompt chunks, fewer slots than sequences) changes nothing", async () => {
    const reqs = mixedRequests();
    const small = await model.createContext({ contextSize: 2048, parallel: 8, batchSize: 6, ubatchSize: 6, ...EXACT });
    try {
      const a = await generate(small, reqs);
      const b = await generate(model, reqs);
      for (let i = 0; i < reqs.length; i++) expect(a.results[i]!.tokens).toEqual(b.results[i]!.tokens);
    } finally {
      small.dispose();
    }
  });

  test("without a seed, equal prompts give different samples, reproducibly", async () => {
    const reqs = Array.from({ length: 6 }, () => ({ prompt: "Once upon a time", sampling: { temperature: 1, maxTokens: 12 } }));
    const a = await generate(model, reqs);
    const b = await generate(model, reqs);
    expect(new Set(a.results.map((r) => r.text)).size).toBeGreaterThan(3);
    expect(b.results.map((r) => r.text)).toEqual(a.results.map((r) => r.text));
    const other = await generate(model, reqs, { sampling: { seed: 7 } });
    expect(other.results.map((r) => r.text)).not.toEqual(a.results.map((r) => r.text));
  });
});

describe("top-p against the reference path", () => {
  test("every token sampled with top-p alone lies in the smallest set of top tokens holding p", async () => {
    // The sampler cuts the vocabulary to the top-p set without sorting it (sampler.cpp,
    // top_p_cut); the set must be llama.cpp's: tokens by descending probability until the
    // running sum reaches p. Here the sets hold ~200, ~1300 and ~7600 tokens, so the cut
    // falls among many near-equal logits.
    const prompt = model.tokenize("Once upon a time");
    const V = model.info.vocabSize;
    const logits = await alone.evalLogits(prompt);
    const lp = logSoftmaxRow(logits.subarray((prompt.length - 1) * V, prompt.length * V));
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => lp[b]! - lp[a]!);
    const setFor = (p: number) => {
      let sum = 0, k = 0;
      while (k < V && sum < p) sum += Math.exp(lp[order[k++]!]!);
      return new Set(order.slice(0, k));
    };
    for (const topP of [0.3, 0.6, 0.9]) {
      const allowed = setFor(topP + 1e-5); // the exp the sampler sums is 1e-5 accurate
      const reqs = Array.from({ length: 200 }, (_, i) => ({ prompt, sampling: { temperature: 1, topP, maxTokens: 1, seed: i + 1 } }));
      const out = await generate(model, reqs);
      const seen = new Set(out.results.map((r) => r.tokens[0]!));
      for (const t of seen) expect(allowed.has(t)).toBe(true);
      expect(seen.size).toBeGreaterThan(50);
      expect(allowed.size).toBeGreaterThan(100);
    }
  });
});

describe("min-p against the reference path", () => {
  test("every token sampled with min-p has at least min-p times the top token's probability", async () => {
    const prompt = model.tokenize("The quick brown fox");
    const V = model.info.vocabSize;
    const logits = await alone.evalLogits(prompt);
    const lp = logSoftmaxRow(logits.subarray((prompt.length - 1) * V, prompt.length * V));
    const top = Math.max(...lp);
    const minP = 0.05;
    const reqs = Array.from({ length: 200 }, (_, i) => ({ prompt, sampling: { temperature: 1.5, minP, topP: 0.99, maxTokens: 1, seed: i + 1 } }));
    const out = await generate(model, reqs);
    const seen = new Set(out.results.map((r) => r.tokens[0]!));
    for (const t of seen) expect(lp[t]! - top).toBeGreaterThanOrEqual(Math.log(minP) - logprobTol(1e-4));
    expect(seen.size).toBeGreaterThan(5);
  });
});

describe("greedy against the reference path", () => {
  /** Greedy continuation computed the plain way: evalLogits on prompt + generated, argmax in JS, penalty in JS. */
  async function reference(prompt: number[], n: number, penalty = 1, window = 64): Promise<number[]> {
    const V = model.info.vocabSize;
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      const logits = await alone.evalLogits([...prompt, ...out]);
      const row = Array.from(logits.subarray((prompt.length + k - 1) * V, (prompt.length + k) * V));
      for (const t of new Set(out.slice(-window))) row[t] = row[t]! <= 0 ? row[t]! * penalty : row[t]! / penalty;
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i]! > row[best]!) best = i;
      out.push(best);
    }
    return out;
  }

  test("greedy tokens are the argmax of the reference logits, with and without a repetition penalty", async () => {
    const prompts = ["The quick brown fox jumps over the lazy dog and then", "1, 2, 3,"].map((p) => model.tokenize(p));
    let penaltyMattered = false;
    for (const prompt of prompts) {
      const plain = await generate(model, [{ prompt, sampling: { maxTokens: 12 } }]);
      expect(plain.results[0]!.tokens).toEqual(await reference(prompt, 12));
      const pen = await generate(model, [{ prompt, sampling: { maxTokens: 12, repetitionPenalty: 3, repetitionWindow: 5 } }]);
      expect(pen.results[0]!.tokens).toEqual(await reference(prompt, 12, 3, 5));
      penaltyMattered ||= pen.results[0]!.text !== plain.results[0]!.text;
    }
    expect(penaltyMattered).toBe(true);
  });
});

describe("shared prefixes", () => {
  test("prefix reuse gives the same greedy output as no reuse; explicit prefix too", async () => {
    const reqs = mixedRequests();
    model.context; // the default context keeps its prefix cache between calls
    const reuse = await generate(model, reqs);
    const none = await generate(model, reqs, { reusePrefix: false });
    expect(none.stats.tokensReused).toBe(0);
    expect(none.stats.prefixTokens).toBe(0);
    expect(reuse.stats.tokensReused).toBeGreaterThan(8 * 30);
    for (let i = 0; i < reqs.length; i++) expect(reuse.results[i]!.tokens).toEqual(none.results[i]!.tokens);
    const headerIds = model.tokenize(HEADER);
    const explicit = await generate(model, [
      { prefix: headerIds, prompt: "Instruction: Say hello.\nResponse:", sampling: { maxTokens: 10 } },
      { prefix: HEADER, prompt: "Instruction: Spell cat.\nResponse:", sampling: { maxTokens: 10 } },
    ]);
    const joined = await generate(alone, [
      { prompt: [...headerIds, ...model.tokenize("Instruction: Say hello.\nResponse:")], sampling: { maxTokens: 10 } },
      { prompt: [...headerIds, ...model.tokenize("Instruction: Spell cat.\nResponse:")], sampling: { maxTokens: 10 } },
    ]);
    expect(explicit.results.map((r) => r.tokens)).toEqual(joined.results.map((r) => r.tokens));
    expect(explicit.results.every((r) => r.promptTokensReused >= headerIds.length)).toBe(true);
  });

  test("several headers in one call", async () => {
    const headers = [HEADER, "Q: What is one plus one?\nA: Two.\n\nQ: What colour is grass?\nA: Green.\n\n", "### Task list\n1. Write a letter to a friend.\n2. Plan a trip.\n"];
    const reqs = headers.flatMap((h, k) => ["alpha", "beta", "gamma", "delta", "epsilon"].map((w) => ({ prompt: `${h}${w} ${k}:`, sampling: { maxTokens: 8 } })));
    const out = await generate(model, reqs);
    const single = await aloneEach(reqs, { reusePrefix: false });
    for (let i = 0; i < reqs.length; i++) expect(out.results[i]!.tokens).toEqual(single[i]!.tokens);
    expect(out.stats.prefixTokens).toBeGreaterThan(0);
    expect(out.stats.tokensReused).toBeGreaterThan(out.stats.prefixTokens);
  });
});

describe("stopping", () => {
  const prompt = "The quick brown fox jumps over the lazy dog and then";

  async function full(maxTokens = 40) {
    return (await generate(model, [{ prompt, sampling: { maxTokens } }])).results[0]!;
  }

  test("maxTokens is respected", async () => {
    for (const n of [1, 2, 7]) {
      const r = (await generate(model, [{ prompt, sampling: { maxTokens: n } }])).results[0]!;
      expect(r.nTokens).toBe(n);
      expect(r.tokens.length).toBe(n);
      expect(r.stop).toBe("length");
      expect(r.stopString).toBeNull();
    }
  });

  test("a stop string spanning two tokens stops generation and is reported", async () => {
    const ref = await full();
    const enc = new TextEncoder();
    const pieces = ref.tokens.map((t) => model.tokenBytes(t));
    // A boundary with ASCII text on both sides, a few tokens in.
    let k = 2;
    const ascii = (b: Uint8Array) => b.length > 0 && b.every((c) => c > 0x20 && c < 0x7f);
    while (k + 1 < pieces.length && !(ascii(pieces[k]!) && ascii(pieces[k + 1]!))) k++;
    expect(k + 1).toBeLessThan(pieces.length);
    const dec = new TextDecoder();
    const stop = dec.decode(pieces[k]!.slice(-1)) + dec.decode(pieces[k + 1]!.slice(0, 1));
    const bytes = enc.encode(ref.text);
    const at = Buffer.from(bytes).indexOf(Buffer.from(stop));
    let cum = 0, need = 0;
    while (cum < at + stop.length) cum += pieces[need++]!.length;

    const r = (await generate(model, [{ prompt, sampling: { maxTokens: 40, stop: ["never appears §§", stop] } }])).results[0]!;
    expect(r.stop).toBe("stop");
    expect(r.stopString).toBe(stop);
    expect(r.text).toBe(dec.decode(bytes.slice(0, at)));
    expect(r.tokens).toEqual(ref.tokens.slice(0, need));
    expect(textWithStop(r)).toBe(r.text + stop);
    expect(ref.text.startsWith(textWithStop(r))).toBe(true);
  });

  test("the earliest match wins; a stop inside one token cuts the text there", async () => {
    const ref = await full();
    const a = ref.text.slice(3, 6), b = ref.text.slice(10, 14);
    const r = (await generate(model, [{ prompt, sampling: { maxTokens: 40, stop: [b, a] } }])).results[0]!;
    const first = ref.text.indexOf(a) <= ref.text.indexOf(b) ? a : b;
    expect(r.stopString).toBe(first);
    expect(r.text).toBe(ref.text.slice(0, ref.text.indexOf(first)));
  });

  test("a stop string that never appears: length", async () => {
    const r = (await generate(model, [{ prompt, sampling: { maxTokens: 12, stop: ["\u0000never"] } }])).results[0]!;
    expect(r.stop).toBe("length");
    expect(r.nTokens).toBe(12);
  });

  /**
   * An adapter on the output matrix that gives `token` the logit of the prompt's greedy
   * first token times 4 (plus its own): `token` wins at once for that prompt, and at some
   * point for others.
   */
  async function favouring(token: number, name: string) {
    const ref = await full(1);
    const path = await writeFavouringLora(join(dir, `${name}.gguf`), modelPath, { arch: "llama", hidden: model.info.embeddingSize, vocab: model.info.vocabSize, token, like: ref.tokens[0]! });
    return loadAdapter(model, path);
  }

  test("end of generation: stop 'eos', the eos token is not in the output", async () => {
    const eos = model.info.eos!;
    const adapter = await favouring(eos, "eos");
    try {
      const reqs = [{ prompt }, ...mixedRequests()].map((r) => ({ ...r, sampling: { maxTokens: 60 } }));
      const out = await generate(model, reqs, { adapters: [{ adapter }] });
      expect(out.results[0]!.stop).toBe("eos");
      expect(out.results[0]!.nTokens).toBe(0);
      expect(out.results[0]!.text).toBe("");
      const eosed = out.results.filter((r) => r.stop === "eos");
      expect(eosed.some((r) => r.nTokens > 0)).toBe(true);
      for (const r of eosed) {
        expect(r.tokens).not.toContain(eos);
        expect(r.stopToken).toEqual({ id: eos, text: "</s>" });
        expect(r.text).not.toContain("</s>");
      }
      for (const r of out.results.filter((r) => r.stop !== "eos")) expect(r.stopToken).toBeNull();
      // Batched == alone holds for eos too.
      const single = await aloneEach(reqs.slice(0, 6), { adapters: [{ adapter }] });
      for (let i = 0; i < 6; i++) {
        const p = reqs[i]!.prompt;
        await expectGreedyAgrees(alone, typeof p === "string" ? model.tokenize(p) : Array.from(p), out.results[i]!.tokens, single[i]!.tokens, { vocab: model.info.vocabSize, eos, adapters: [{ adapter }] });
      }
    } finally {
      adapter.dispose();
    }
  });

  test("a control token that is not end-of-generation (BOS) ends the text too: stop 'control', its text nowhere", async () => {
    // What real base models do: stories260K writes "...happily ever after." and then <s>,
    // the start of its next story; llama.cpp does not count BOS as end-of-generation.
    const bos = model.info.bos!;
    expect(model.info.eogTokenIds).not.toContain(bos);
    expect(model.info.controlTokenIds).toContain(bos);
    const adapter = await favouring(bos, "bos");
    try {
      const reqs = [{ prompt }, ...mixedRequests()].map((r) => ({ ...r, sampling: { maxTokens: 60 } }));
      const out = await generate(model, reqs, { adapters: [{ adapter }] });
      expect(out.results[0]).toMatchObject({ stop: "control", nTokens: 0, text: "", stopToken: { id: bos, text: "<s>" } });
      const ended = out.results.filter((r) => r.stop === "control");
      expect(ended.some((r) => r.nTokens > 0)).toBe(true);
      for (const r of ended) {
        expect(r.stopToken).toEqual({ id: bos, text: "<s>" });
        expect(r.tokens).not.toContain(bos);
        expect(r.text).not.toContain("<s>");
        expect(r.text).toBe(new TextDecoder().decode(Buffer.concat(r.tokens.map((t) => model.tokenBytes(t)))));
      }
      // Sampled too, and batched == alone.
      const sampled = reqs.slice(0, 6).map((r, i) => ({ ...r, sampling: { ...r.sampling, temperature: 0.8, seed: 11 + i } }));
      const batched = await generate(model, sampled, { adapters: [{ adapter }] });
      const single = await aloneEach(sampled, { adapters: [{ adapter }] });
      for (let i = 0; i < 6; i++) {
        expect(batched.results[i]!.tokens).toEqual(single[i]!.tokens);
        expect(batched.results[i]!.stop).toBe(single[i]!.stop);
        for (const t of batched.results[i]!.tokens) expect(model.info.controlTokenIds).not.toContain(t);
      }
    } finally {
      adapter.dispose();
    }
  });

  test("maxTokens is capped by the room left in the context", async () => {
    const ctx = await model.createContext({ contextSize: 256, parallel: 2, ...EXACT });
    try {
      const ids = model.tokenize("one two three four five six seven eight nine ten ".repeat(40)).slice(0, ctx.info.contextSize - 4);
      const r = (await generate(ctx, [{ prompt: ids, sampling: { maxTokens: 100 } }])).results[0]!;
      expect(r.stop).toBe("length");
      expect(r.nTokens).toBe(4);
    } finally {
      ctx.dispose();
    }
  });
});

describe("adapters", () => {
  test("an adapter changes the output; scale 0 does not", async () => {
    const lora = await loadAdapter(model, await writeTinyLora(join(dir, "lora.gguf"), { arch: "llama", rank: 4, alpha: 8 }));
    try {
      const reqs = mixedRequests();
      const base = await generate(model, reqs);
      const adapted = await generate(model, reqs, { adapters: [{ adapter: lora, scale: 2 }] });
      const zero = await generate(model, reqs, { adapters: [{ adapter: lora, scale: 0 }] });
      const changed = adapted.results.filter((r, i) => r.text !== base.results[i]!.text).length;
      expect(changed).toBeGreaterThan(reqs.length / 2);
      for (let i = 0; i < reqs.length; i++) expect(zero.results[i]!.tokens).toEqual(base.results[i]!.tokens);
    } finally {
      lora.dispose();
    }
  });
});

describe("streaming, progress, cancellation", () => {
  test("onResult sees every result before the promise settles; progress ends at total", async () => {
    const reqs = mixedRequests();
    const seen: number[] = [];
    const progress: { done: number; total: number; tokensGenerated: number; tokensPerSecond: number }[] = [];
    const out = await generate(model, reqs, { onResult: (r) => seen.push(r.index), onProgress: (p) => progress.push(p) });
    expect([...seen].sort((a, b) => a - b)).toEqual(reqs.map((_, i) => i));
    const last = progress.at(-1)!;
    expect(last.done).toBe(reqs.length);
    expect(last.total).toBe(reqs.length);
    expect(last.tokensGenerated).toBe(out.stats.tokensGenerated);
    expect(last.tokensPerSecond).toBeGreaterThan(0);
    expect(out.stats.tokensPerSecond).toBeGreaterThan(0);
  });

  test("generateStream yields every result; breaking early stops the run", async () => {
    const reqs = mixedRequests();
    const ref = await generate(model, reqs);
    const got: GenerateResult[] = [];
    for await (const r of generateStream(model, reqs)) got.push(r);
    expect(got.length).toBe(reqs.length);
    for (const r of got) expect(r.tokens).toEqual(ref.results[r.index]!.tokens);

    const many = Array.from({ length: 40 }, (_, i) => ({ prompt: `Story number ${i}:`, sampling: { maxTokens: 200 } }));
    let n = 0;
    const t0 = performance.now();
    for await (const _ of generateStream(model, many)) if (++n === 2) break;
    expect(performance.now() - t0).toBeLessThan(60_000);
    const again = await generate(model, reqs.slice(0, 3));
    for (let i = 0; i < 3; i++) expect(again.results[i]!.tokens).toEqual(ref.results[i]!.tokens);
  });

  test("abort mid-run rejects with AbortError and leaves the context usable", async () => {
    const reqs = mixedRequests();
    const ref = await generate(model, reqs);
    const ac = new AbortController();
    const many = Array.from({ length: 64 }, (_, i) => ({ prompt: `${HEADER}Instruction: task ${i}\nResponse:`, sampling: { maxTokens: 300 } }));
    const run = generate(model, many, { signal: ac.signal, onResult: () => ac.abort() });
    setTimeout(() => ac.abort(), 1500);
    const err = await run.then(() => null, (e) => e as Error);
    expect(err?.name).toBe("AbortError");
    const after = await generate(model, reqs);
    for (let i = 0; i < reqs.length; i++) expect(after.results[i]!.tokens).toEqual(ref.results[i]!.tokens);
    // Already aborted: rejected before any work.
    await expect(generate(model, reqs, { signal: AbortSignal.abort() })).rejects.toHaveProperty("name", "AbortError");
  });

  test("a throwing onResult stops the run and rejects with its error", async () => {
    const boom = new Error("boom");
    await expect(generate(model, mixedRequests(), { onResult: () => { throw boom; } })).rejects.toBe(boom);
    const ok = await generate(model, [{ prompt: "Hi", sampling: { maxTokens: 3 } }]);
    expect(ok.results[0]!.nTokens).toBe(3);
  });
});

describe("kvUnified off", () => {
  test("one cache per sequence: same greedy output, nothing shared, per-sequence room", async () => {
    const ctx = await model.createContext({ contextSize: 2048, parallel: 4, kvUnified: false, ...EXACT } as Parameters<Model["createContext"]>[0]);
    try {
      const reqs = mixedRequests();
      const a = await generate(ctx, reqs);
      const b = await generate(model, reqs);
      expect(a.stats.tokensReused).toBe(0);
      for (let i = 0; i < reqs.length; i++) await expectGreedyAgrees(alone, model.tokenize(reqs[i]!.prompt as string), a.results[i]!.tokens, b.results[i]!.tokens, { vocab: model.info.vocabSize });
      const perSeq = Math.floor(ctx.info.contextSize / 5);
      await expect(generate(ctx, [{ prompt: model.tokenize("word ".repeat(perSeq + 10)) }])).rejects.toThrow(/cells per sequence/);
    } finally {
      ctx.dispose();
    }
  });

  test("a request that ends early hands its sequence id on: the others' KV moves down, output unchanged", async () => {
    // The first and third requests end first and nothing waits to take their sequences:
    // the generator moves the last running sequence's cache into the lowest free id so
    // the rest of the run stays one micro-batch per step. The moved requests must go on
    // exactly as they would have.
    const ctx = await model.createContext({ contextSize: 1024, parallel: 4, kvUnified: false, ...EXACT } as Parameters<Model["createContext"]>[0]);
    try {
      const prompts = ["Hi", "Once upon a time", "1, 2, 3,", "Paris is the capital of"];
      const reqs = prompts.map((p, i) => ({ prompt: p, sampling: { maxTokens: i % 2 === 0 ? 3 : 40 } }));
      const split = await generate(ctx, reqs);
      const ref = await aloneEach(reqs);
      for (let i = 0; i < reqs.length; i++) expect(split.results[i]!.tokens).toEqual(ref[i]!.tokens);
      expect(split.results[3]!.tokens.length).toBeGreaterThan(10);
    } finally {
      ctx.dispose();
    }
  });
});
