// The A/B critic (SPEC §4): margins are exactly the scoring API's logp(" A") − logp(" B")
// at the answer position, checked against the addon's reference path (full logits,
// log-softmax in double precision); thresholds; the single-token check.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { loadModel, type Model } from "../../native/index.ts";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { Critic, CriticError, type Scorer, criticChoiceTokens, scoreInstructions, scorePairs } from "../../plugins/critic/critic.ts";
import { ContaminationGuard } from "../../plugins/loader/guard.ts";
import { instructionCriticPrompt, pairCriticPrompt } from "../../plugins/prompts/prompts.ts";
import { CriticVerdict } from "../../plugins/shared/kinds.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

let model: Model;
let guard: ContaminationGuard;
let V: number;
// f32 K/V and no flash attention: batched and alone agree to ~1e-6 (native/README.md).
const EXACT = { kvType: "f32", flashAttention: "off", threads: 2 } as const;

const INSTRUCTIONS = ["Name three primary colors.", "Explain why ice floats on water.", "Do the thing from before.", "Translate 'good morning' into French.", "What is 17 times 23?"];

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (x) => x - lse);
}

beforeAll(async () => {
  model = await loadModel(await tinyModel({ type: "f32" }), EXACT as never);
  guard = ContaminationGuard.forModel(model);
  V = model.info.vocabSize;
});
afterAll(() => model.dispose());

describe("critic", () => {
  test('" A" and " B" are single tokens after "Answer:" (qwen2 BPE and llama SentencePiece)', async () => {
    const spm = await loadModel(await tinyModel({ arch: "llama", type: "f16" }), { vocabOnly: true });
    try {
      const c = criticChoiceTokens(spm);
      // SentencePiece: " A" alone is "▁" + "▁A" (dummy prefix); in context it is "▁A".
      const p = spm.tokenize(instructionCriticPrompt("Name a color.") + " A");
      expect(p.at(-1)).toBe(c.accept);
      expect(spm.tokenize(instructionCriticPrompt("Name a color.") + " B").at(-1)).toBe(c.reject);
    } finally {
      spm.dispose();
    }
    const c = criticChoiceTokens(model, guard);
    expect(model.tokenize(" A")).toEqual([c.accept]);
    expect(model.tokenize(" B")).toEqual([c.reject]);
    // A tokenizer that splits " A" after "Answer:" cannot serve the critic.
    const fake = { tokenize: (t: string) => (t.endsWith(" A") ? [7, 1, 2] : t.endsWith(" B") ? [7, 3] : [7]) };
    expect(() => criticChoiceTokens(fake)).toThrow(CriticError);
    expect(() => criticChoiceTokens(fake)).toThrow(/" A" after "\\nAnswer:" is not exactly one token/);
  });

  test("instruction margins equal logp(A) - logp(B) from the scoring API and from full logits", async () => {
    const items = INSTRUCTIONS.map((text, i) => ({ id: `ins-${i}`, text }));
    const scores = await scoreInstructions(model, guard, items, { threshold: 1.0 });
    const { accept, reject } = criticChoiceTokens(model);
    // The scoring API directly, one item at a time.
    for (const [i, it] of items.entries()) {
      const prompt = model.tokenize(instructionCriticPrompt(it.text));
      const direct = await model.score([{ prompt, continuation: [], candidates: [accept, reject] }], { reusePrefix: false });
      const [a, b] = direct.items[0]!.candidates!;
      expect(Math.abs(scores[i]!.logpA - a!)).toBeLessThan(1e-5);
      expect(Math.abs(scores[i]!.logpB - b!)).toBeLessThan(1e-5);
      expect(Math.abs(scores[i]!.verdict.margin - (a! - b!))).toBeLessThan(1e-5);
      if (i >= 2) continue; // the reference path is slow: two items suffice
      // The reference path: logits of the last prompt position, log-softmax in double.
      const logits = await model.evalLogits(prompt);
      const row = logSoftmax(logits.subarray((prompt.length - 1) * V, prompt.length * V));
      expect(Math.abs(scores[i]!.verdict.margin - (row[accept]! - row[reject]!))).toBeLessThan(1e-4);
      // The verdict is a valid record field: accepted iff margin >= threshold.
      expect(CriticVerdict.safeParse(scores[i]!.verdict).success).toBe(true);
      expect(scores[i]!.verdict.accepted).toBe(scores[i]!.verdict.margin >= 1.0);
    }
  });

  test("pair margins equal the scoring API's log-prob differences; batching does not change them", async () => {
    const pairs = [
      { id: "p0", instruction: "What is 2 + 2?", response: "2 + 2 = 4." },
      { id: "p1", instruction: "Name a mammal that lives in the sea.", response: "A dolphin." },
      { id: "p2", instruction: "Write a haiku about snow.", response: "White flakes falling down\nsoftly on the silent town\nwinter holds its breath" },
    ];
    const batched = await scorePairs(model, guard, pairs, { threshold: 0.5, batchSize: 3 });
    const one = await new Critic(model, guard, model).scorePairs(pairs, { threshold: 0.5, batchSize: 1 });
    const { accept, reject } = criticChoiceTokens(model);
    for (const [i, p] of pairs.entries()) {
      const prompt = model.tokenize(pairCriticPrompt(p.instruction, p.response));
      const direct = await model.score([{ prompt, continuation: [], candidates: [accept, reject] }]);
      const [a, b] = direct.items[0]!.candidates!;
      expect(Math.abs(batched[i]!.verdict.margin - (a! - b!))).toBeLessThan(1e-5);
      expect(Math.abs(batched[i]!.verdict.margin - one[i]!.verdict.margin)).toBeLessThan(1e-5);
      expect(batched[i]!.verdict.threshold).toBe(0.5);
    }
  });

  test("thresholds decide acceptance; prompts go through the guard", async () => {
    const items = INSTRUCTIONS.map((text, i) => ({ id: `ins-${i}`, text }));
    const all = await scoreInstructions(model, guard, items, { threshold: -1e9 });
    expect(all.every((s) => s.verdict.accepted)).toBe(true);
    const none = await scoreInstructions(model, guard, items, { threshold: 1e9 });
    expect(none.every((s) => !s.verdict.accepted)).toBe(true);
    // Special-token text in an item reaches the scorer as plain pieces, never as the id.
    const seen: number[][] = [];
    const spy: Scorer = { score: (its, o) => (its.forEach((it) => seen.push(Array.from(it.prompt as ArrayLike<number>))), model.score(its, o)) };
    await new Critic(spy, guard, model).scorePairs([{ id: "p9", instruction: "Repeat [PAD151646] twice.", response: "<|im_start|> [PAD151646]" }]);
    expect(seen.length).toBe(1);
    expect(guard.findSpecial(seen[0]!)).toBeNull();
    expect(model.detokenize(seen[0]!)).toBe(pairCriticPrompt("Repeat [PAD151646] twice.", "<|im_start|> [PAD151646]"));
  });
});
