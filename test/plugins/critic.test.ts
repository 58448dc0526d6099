// The A/B critic (SPEC §4): margins are exactly the scoring API's logp(" A") − logp(" B")
// at the answer position, checked against the addon's reference path (full logits,
// log-softmax in double precision); thresholds; the label choice for tokenizers without
// " A" as one token (another single-token pair, or multi-token labels by summed log-probs).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { loadModel, type Model } from "../../native/index.ts";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { Critic, CriticError, type Scorer, chooseCriticLabels, criticProvenance, scoreInstructions, scorePairs } from "../../plugins/critic/critic.ts";
import { ContaminationGuard } from "../../plugins/loader/guard.ts";
import { CRITIC_CHOICES, CRITIC_LABEL_PAIRS, instructionCriticPrompt, pairCriticPrompt } from "../../plugins/prompts/prompts.ts";
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
      const c = chooseCriticLabels(spm);
      expect(c).toMatchObject({ labels: CRITIC_CHOICES, method: "single-token" });
      // SentencePiece: " A" alone is "▁" + "▁A" (dummy prefix); in context it is "▁A".
      const p = spm.tokenize(instructionCriticPrompt("Name a color.") + " A");
      expect(p.at(-1)).toBe(c.tokens.accept[0]);
      expect(spm.tokenize(instructionCriticPrompt("Name a color.") + " B").at(-1)).toBe(c.tokens.reject[0]);
    } finally {
      spm.dispose();
    }
    const c = chooseCriticLabels(model, guard);
    expect(c.labels).toBe(CRITIC_CHOICES);
    expect(model.tokenize(" A")).toEqual(c.tokens.accept);
    expect(model.tokenize(" B")).toEqual(c.tokens.reject);
    expect(criticProvenance(c)).toMatchObject({ labels: { accept: " A", reject: " B" }, method: "single-token", default: true });
  });

  /** A tokenizer where `single` labels (after "\nAnswer:") are one token each and every other label is two. */
  function fakeTokenizer(single: readonly string[]) {
    const ids = new Map<string, number>();
    return {
      tokenize(t: string) {
        if (!t.startsWith("\nAnswer:")) throw new Error(`unexpected text ${t}`);
        const label = t.slice("\nAnswer:".length);
        if (!label) return [7];
        if (!ids.has(label)) ids.set(label, 100 + 2 * ids.size);
        const id = ids.get(label)!;
        return single.includes(label) ? [7, id] : [7, 9, id];
      },
    };
  }

  test("the first pair of the fixed list whose labels are single tokens; else the default pair by summed log-probs", () => {
    expect(CRITIC_LABEL_PAIRS[0]).toBe(CRITIC_CHOICES);
    // stories260K: " B" is one token, " A" two; " a" and " b" one each.
    const ab = chooseCriticLabels(fakeTokenizer([" B", " a", " b"]));
    expect(ab).toMatchObject({ labels: { accept: " a", reject: " b" }, method: "single-token" });
    expect(ab.reason).toContain('" A" is 2 tokens');
    expect(chooseCriticLabels(fakeTokenizer([" Y", " N", " 1", " 2"])).labels).toEqual({ accept: " Y", reject: " N" });
    // None: the default labels, each a continuation of two tokens.
    const summed = chooseCriticLabels(fakeTokenizer([]));
    expect(summed).toMatchObject({ labels: CRITIC_CHOICES, method: "summed-log-probs" });
    expect(summed.tokens.accept).toHaveLength(2);
    expect(summed.reason).toContain("no single-token pair");
    // Forced either way.
    expect(chooseCriticLabels(fakeTokenizer([" A", " B"]), undefined, { method: "summed-log-probs" }).method).toBe("summed-log-probs");
    expect(() => chooseCriticLabels(fakeTokenizer([]), undefined, { method: "single-token" })).toThrow(CriticError);
    // A tokenizer that merges the label into "Answer:" cannot serve the critic at all.
    const merging = { tokenize: (t: string) => (t === "\nAnswer:" ? [7] : [8]) };
    expect(() => chooseCriticLabels(merging)).toThrow(/no label pair can be read after "\\nAnswer:"/);
  });

  test("the prompts name the chosen labels: rubric and labelled examples", () => {
    const labels = { accept: " a", reject: " b" };
    const p = instructionCriticPrompt("Name two planets.", labels);
    expect(p).toContain("\na means yes: ");
    expect(p).toContain("\nb means no: ");
    expect(p).toContain("Instruction: Name three primary colors.\nAnswer: a\n\n");
    expect(p).toContain("Instruction: Summarize the article above.\nAnswer: b\n\n");
    expect(p).not.toMatch(/Answer: [AB]\b|\n[AB] means/);
    expect(p.endsWith("Instruction: Name two planets.\nAnswer:")).toBe(true);
    expect(pairCriticPrompt("Name two planets.", "Mars.", labels)).toContain("Response: Quick.\nAnswer: a\n\n");
    // The default labels give the default prompt byte for byte.
    expect(instructionCriticPrompt("Name two planets.", { accept: " A", reject: " B" })).toBe(instructionCriticPrompt("Name two planets."));
    expect(() => instructionCriticPrompt("x y", { accept: "a", reject: " b" })).toThrow(/space and one word/);
  });

  test("summed log-probs: margins equal the sums of each label's token log-probs, from the reference path too", async () => {
    const critic = new Critic(model, guard, model, { method: "summed-log-probs" });
    expect(critic.choice.method).toBe("summed-log-probs");
    const { accept, reject } = critic.choice.tokens;
    const items = INSTRUCTIONS.slice(0, 3).map((text, i) => ({ id: `ins-${i}`, text }));
    const scores = await critic.scoreInstructions(items, { threshold: 0 });
    const single = await new Critic(model, guard, model).scoreInstructions(items, { threshold: 0 });
    for (const [i, it] of items.entries()) {
      const prompt = model.tokenize(instructionCriticPrompt(it.text));
      // Full logits over prompt + label, log-softmax in double, summed over the label's tokens.
      const sum = async (label: number[]) => {
        const seq = [...prompt, ...label];
        const logits = await model.evalLogits(seq);
        let s = 0;
        for (let k = 0; k < label.length; k++) {
          const pos = prompt.length - 1 + k;
          s += logSoftmax(logits.subarray(pos * V, (pos + 1) * V))[label[k]!]!;
        }
        return s;
      };
      expect(Math.abs(scores[i]!.logpA - (await sum(accept)))).toBeLessThan(1e-4);
      expect(Math.abs(scores[i]!.logpB - (await sum(reject)))).toBeLessThan(1e-4);
      // One-token labels: the sum is the candidate log-prob.
      expect(Math.abs(scores[i]!.verdict.margin - single[i]!.verdict.margin)).toBeLessThan(1e-4);
    }
  });

  test("instruction margins equal logp(A) - logp(B) from the scoring API and from full logits", async () => {
    const items = INSTRUCTIONS.map((text, i) => ({ id: `ins-${i}`, text }));
    const scores = await scoreInstructions(model, guard, items, { threshold: 1.0 });
    const [accept, reject] = [chooseCriticLabels(model).tokens.accept[0]!, chooseCriticLabels(model).tokens.reject[0]!];
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
    const [accept, reject] = [chooseCriticLabels(model).tokens.accept[0]!, chooseCriticLabels(model).tokens.reject[0]!];
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
