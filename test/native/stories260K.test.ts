// Generation and scoring on a real trained model (stories260K: llama, 512-token SentencePiece
// vocabulary) match llama.cpp's plain reference path — one sequence decoded on its own,
// full logits, log-softmax in double precision (evalLogits) — and the model's own end of
// text ends a generation without its text. The A/B critic reads " a" / " b" here (" A" is
// two tokens), and multi-token labels summed over their tokens equal the reference too.
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { gv, readGguf, readTensorBytes, writeGguf } from "../../native/gguf/index.ts";
import { generate, loadModel, type Model } from "../../native/index.ts";
import { Critic, chooseCriticLabels } from "../../plugins/critic/critic.ts";
import { ContaminationGuard } from "../../plugins/loader/guard.ts";
import { chatMarkupProbe } from "../../plugins/loader/sentinels.ts";
import { instructionCriticPrompt, pairCriticPrompt } from "../../plugins/prompts/prompts.ts";
import { tempDir } from "../helpers.ts";
import { STORIES260K, describeStories } from "../stories260k.ts";
import { logSoftmaxRow } from "./helpers.ts";
import { buildLlamaReference, referenceUnavailable } from "./llama-reference.ts";

setDefaultTimeout(120_000);

// f32 K/V and no flash attention: batched and alone agree to ~1e-6 (specs/inference.md).
const EXACT = { kvType: "f32", flashAttention: "off", threads: 1 } as const;
const PROMPTS = ["Once upon a time", "Tom had a red ball. One day,", "Lily and her mom went to the park. They saw", "The cat"];

describeStories("stories260K", () => {
  let model: Model;
  let V: number;
  beforeAll(async () => {
    model = await loadModel(STORIES260K, { contextSize: 2048, parallel: 4, ...EXACT });
    V = model.info.vocabSize;
  });
  afterAll(() => model?.dispose());

  /** Greedy decoding the plain way: the whole sequence through evalLogits each step, argmax of the last row. */
  async function referenceGreedy(prompt: number[], steps: number): Promise<number[]> {
    const seq = [...prompt];
    const out: number[] = [];
    for (let k = 0; k < steps; k++) {
      const logits = await model.evalLogits(seq);
      const row = logits.subarray((seq.length - 1) * V, seq.length * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
      out.push(best);
      seq.push(best);
    }
    return out;
  }

  test("it is the model the README describes", () => {
    expect(model.info).toMatchObject({ architecture: "llama", vocabSize: 512, layerCount: 5, embeddingSize: 64, bos: 1, eos: 2, eogTokenIds: [2], controlTokenIds: [1, 2] });
  });

  test("greedy generation, batched with a shared prefix, equals greedy decoding on the reference path", async () => {
    const n = 40;
    const out = await generate(model, PROMPTS.map((prompt) => ({ prompt, sampling: { maxTokens: n } })));
    for (const [i, prompt] of PROMPTS.entries()) {
      const r = out.results[i]!;
      const ref = await referenceGreedy(model.tokenize(prompt), r.nTokens + (r.stop === "length" ? 0 : 1));
      expect(r.tokens).toEqual(ref.slice(0, r.nTokens));
      // A generation that ended early ended on the token the reference picks next.
      if (r.stop !== "length") expect(r.stopToken!.id).toBe(ref.at(-1)!);
      expect(r.text).toBe(new TextDecoder().decode(Buffer.concat(r.tokens.map((t) => model.tokenBytes(t)))));
    }
  });

  test("a story ends with the model's own <s>: stop 'control', the token reported, its text nowhere", async () => {
    const r = (await generate(model, [{ prompt: "Once upon a time", sampling: { maxTokens: 400 } }])).results[0]!;
    expect(r.stop).toBe("control");
    expect(r.stopToken).toEqual({ id: 1, text: "<s>" });
    expect(r.text).toMatch(/\.$/); // "...And they all lived happily ever after."
    expect(r.text).not.toContain("<s>");
    expect(r.tokens).not.toContain(1);
    // The reference path agrees that <s> is the most likely token there.
    const logits = await model.evalLogits([...model.tokenize("Once upon a time"), ...r.tokens]);
    const row = logits.subarray((logits.length / V - 1) * V);
    expect(row.indexOf(Math.max(...row))).toBe(1);
  });

  test("score() log-probs of continuations and candidates equal log-softmax of the reference logits", async () => {
    const header = "Once upon a time, there was a little girl named Lily. She loved to play.";
    // slice(1): SentencePiece puts a dummy-prefix "▁" before text tokenized on its own.
    const items = [" She went to the park.", " Her mom said no.", " The dog ran away!", "\nThe end."].map((c) => ({ prompt: model.tokenize(header), continuation: model.tokenize(c).slice(1), candidates: [261, 268, 2] }));
    const res = await model.score(items);
    expect(res.stats.tokensReused).toBeGreaterThan(0); // the shared header was decoded once
    for (const [i, it] of items.entries()) {
      const logits = await model.evalLogits([...it.prompt, ...it.continuation]);
      const row = (pos: number) => logSoftmaxRow(logits.subarray(pos * V, (pos + 1) * V));
      const got = res.items[i]!;
      expect(got.continuationTokens).toEqual(it.continuation);
      it.continuation.forEach((t, k) => expect(Math.abs(got.logprobs[k]! - row(it.prompt.length - 1 + k)[t]!)).toBeLessThan(2e-4));
      const last = row(it.prompt.length - 1);
      it.candidates.forEach((c, k) => expect(Math.abs(got.candidates![k]! - last[c]!)).toBeLessThan(2e-4));
    }
  });

  test('the critic reads " a" / " b" (single tokens) and its margins are the reference log-prob differences', async () => {
    const guard = ContaminationGuard.forModel(model);
    const choice = chooseCriticLabels(model, guard);
    expect(choice).toMatchObject({ labels: { accept: " a", reject: " b" }, method: "single-token", tokens: { accept: [261], reject: [268] } });
    const items = [{ id: "i0", text: "Name three colors." }, { id: "i1", text: "Tell a story about a dog." }];
    const scores = await new Critic(model, guard, model).scoreInstructions(items, { threshold: 0 });
    for (const [i, it] of items.entries()) {
      const prompt = guard.tokenizePrompt(instructionCriticPrompt(it.text, choice.labels), "x");
      const logits = await model.evalLogits(prompt);
      const last = logSoftmaxRow(logits.subarray((prompt.length - 1) * V, prompt.length * V));
      expect(Math.abs(scores[i]!.logpA - last[261]!)).toBeLessThan(2e-4);
      expect(Math.abs(scores[i]!.logpB - last[268]!)).toBeLessThan(2e-4);
    }
  });

  test('summed log-probs: " A" is two tokens here, and its log-prob is the sum over both, as on the reference path', async () => {
    const guard = ContaminationGuard.forModel(model);
    const critic = new Critic(model, guard, model, { method: "summed-log-probs" });
    expect(critic.choice).toMatchObject({ labels: { accept: " A", reject: " B" }, method: "summed-log-probs" });
    const { accept, reject } = critic.choice.tokens;
    expect(accept.length).toBe(2); // "▁" "A"
    expect(reject.length).toBe(1); // "▁B"
    const items = [{ id: "p0", instruction: "Name a color.", response: "Red." }, { id: "p1", instruction: "Say hi.", response: "Once upon a time there was a cat." }];
    const scores = await critic.scorePairs(items, { threshold: 0 });
    for (const [i, it] of items.entries()) {
      const prompt = guard.tokenizePrompt(pairCriticPrompt(it.instruction, it.response), "x");
      const sum = async (label: number[]) => {
        const logits = await model.evalLogits([...prompt, ...label]);
        return label.reduce((s, t, k) => s + logSoftmaxRow(logits.subarray((prompt.length - 1 + k) * V, (prompt.length + k) * V))[t]!, 0);
      };
      expect(Math.abs(scores[i]!.logpA - (await sum(accept)))).toBeLessThan(4e-4);
      expect(Math.abs(scores[i]!.logpB - (await sum(reject)))).toBeLessThan(2e-4);
      expect(scores[i]!.verdict.margin).toBeCloseTo(scores[i]!.logpA - scores[i]!.logpB, 9);
    }
  });

  /**
   * stories260K with its end marker as a control token the file does not flag as
   * end-of-generation (the other trained model of issue 12 wrote "...a very happy
   * family.<|end_story|>"): token 3 (byte <0x00>, never written) becomes the control token
   * "<|end_story|>" and takes <s>'s output row, and <s> takes its; nothing else changes.
   */
  async function endStoryModel(): Promise<string> {
    const src = readGguf(STORIES260K);
    const meta = new Map(src.metadata);
    const tokens = [...(src.metadata.get("tokenizer.ggml.tokens")!.value as string[])];
    const types = Int32Array.from(src.metadata.get("tokenizer.ggml.token_type")!.value as ArrayLike<number>);
    tokens[3] = "<|end_story|>";
    types[3] = 3; // control
    meta.set("tokenizer.ggml.tokens", gv.strings(tokens));
    meta.set("tokenizer.ggml.token_type", gv.numbers("i32", types));
    const tensors = src.tensors.map((t) => {
      const data = readTensorBytes(src, t).slice();
      if (t.name === "output.weight") {
        const w = new Float32Array(data.buffer), H = t.dims[0]!;
        const bos = w.slice(1 * H, 2 * H);
        w.copyWithin(1 * H, 3 * H, 4 * H);
        w.set(bos, 3 * H);
      }
      return { name: t.name, type: t.type, dims: t.dims, data };
    });
    const out = join(tempDir(), "stories260K-end-story.gguf");
    await writeGguf(out, { metadata: meta, tensors });
    return out;
  }

  test("an end marker that is a control token but not end-of-generation ends the story: stop 'control', its text nowhere, the sentinel calls it the model's own end", async () => {
    const m2 = await loadModel(await endStoryModel(), { contextSize: 1024, parallel: 1, ...EXACT });
    try {
      expect(m2.info.controlTokenIds).toContain(3);
      expect(m2.info.eogTokenIds).not.toContain(3);
      const prompt = "Once upon a time";
      const r = (await generate(m2, [{ prompt, sampling: { maxTokens: 400 } }])).results[0]!;
      const original = (await generate(model, [{ prompt, sampling: { maxTokens: 400 } }])).results[0]!;
      expect(r.stop).toBe("control");
      expect(r.stopToken).toEqual({ id: 3, text: "<|end_story|>" });
      expect(r.tokens).toEqual(original.tokens); // the same story, ended by the renamed token
      expect(r.text).not.toContain("<|end_story|>");
      const guard = ContaminationGuard.forModel(m2);
      const probe = chatMarkupProbe([{ name: "story", result: r }], guard, m2.info);
      expect(probe.passed).toBe(true);
      expect(probe.detail).toContain('own end of text (story: "<|end_story|>")');
      // <unk> (a character the vocabulary lacks) ends a completion too, and is not chat markup.
      const unk = chatMarkupProbe([{ name: "odd", result: { ...r, stopToken: { id: 0, text: "<unk>" } } }], guard, m2.info);
      expect(unk).toMatchObject({ passed: true, detail: expect.stringContaining('unknown token (odd: "<unk>")') });
    } finally {
      m2.dispose();
    }
  });

  // llama.cpp's own C API, compiled here against the same static libraries (llama-reference.cpp):
  // its greedy sampler decoding one token at a time, and log-softmax of its logits.
  const noHarness = referenceUnavailable();
  if (noHarness) console.warn(`skipping the llama.cpp harness comparisons: ${noHarness}`);
  test.skipIf(noHarness !== null)(`greedy tokens and log-probs equal llama.cpp's own (C API harness)${noHarness ? ` — skipped: ${noHarness}` : ""}`, async () => {
    const ref = buildLlamaReference(STORIES260K);
    const n = 48;
    const out = await generate(model, PROMPTS.map((prompt) => ({ prompt, sampling: { maxTokens: n } })));
    for (const [i, prompt] of PROMPTS.entries()) {
      const theirs = ref.greedy(prompt, n);
      const r = out.results[i]!;
      expect(r.tokens).toEqual(theirs.slice(0, r.nTokens));
      if (r.stop !== "length") expect(theirs[r.nTokens]).toBe(r.stopToken!.id); // llama.cpp's greedy picks the token that ended ours
    }
    const header = "Once upon a time, there was a little girl named Lily.";
    const conts = [" She loved to play outside.", " One day, she saw a big dog.", "\nThe end."];
    const theirs = conts.map((c) => ref.logprobs(header, c));
    // The harness tokenizes the continuation on its own: its first id is SentencePiece's dummy-prefix "▁", scored too.
    const ours = await model.score(theirs.map((t) => ({ prompt: t.prompt, continuation: t.continuation })));
    for (const [i, t] of theirs.entries()) {
      expect(t.prompt).toEqual(model.tokenize(header));
      expect(ours.items[i]!.logprobs.length).toBe(t.logprobs.length);
      t.logprobs.forEach((lp, k) => expect(Math.abs(ours.items[i]!.logprobs[k]! - lp)).toBeLessThan(2e-4));
    }
  });
});
