// The pairs stage's pure parts on fixed inputs: every kind of synthetic negative made by
// its deterministic edit has the property of its kind (and the checks refuse texts that
// lack it), the mix is dealt exactly, best-of-N keeps best vs worst only above the gap,
// the summary counts, and the negative prompts are completion prompts in the response format.
import { describe, expect, test } from "bun:test";
import { findLeakage } from "../../plugins/prompts/clean.ts";
import { INCORRECT_EXAMPLES, isRefusal, negativePrompt, REFUSAL_EXAMPLES, REFUSAL_TEMPLATES } from "../../plugins/prompts/negatives.ts";
import { trainingText } from "../../plugins/prompts/prompts.ts";
import { Rng } from "../../plugins/prompts/rng.ts";
import { untrainableReasons } from "../../plugins/qc/trainable.ts";
import { rankBestOfN, type Candidate } from "../../plugins/pairs/best-of-n.ts";
import { PairsConfig } from "../../plugins/pairs/config.ts";
import { apportion, assignKinds } from "../../plugins/pairs/mix.ts";
import { checkNegative, formatViolationEdit, incorrectEdit, leastRelated, refusalEdit, verboseEdit, type Chosen } from "../../plugins/pairs/negatives.ts";
import { summarizePairs } from "../../plugins/pairs/summary.ts";
import { contentWords, coverage, overlap, words } from "../../plugins/pairs/text.ts";

const tokens = (t: string) => words(t).length + (t.match(/[^\p{L}\p{N}\s]/gu)?.length ?? 0);
const opts = { tokens, verboseRatio: 2, offTopicMaxOverlap: 0.2 };

const CHOSEN: Chosen[] = [
  { id: "a", instruction: "What is the capital of France?", response: "The capital of France is Paris." },
  { id: "b", instruction: "Add 12 and 30.", response: "12 plus 30 is 42." },
  { id: "c", instruction: "Is the sun a star?", response: "Yes, the sun is a star." },
  { id: "d", instruction: "Name three kinds of fruit.", response: "Apples, pears and plums." },
  { id: "e", instruction: "Write a haiku about snow.", response: "Soft snow on the roof\nquiet flakes drift through the night\nwhite hills wake at dawn" },
  { id: "f", instruction: "Explain why ice floats on water.", response: "Ice is less dense than liquid water, so it floats." },
];
const POOL = CHOSEN.map((c) => ({ ...c, instructionId: `ins-${c.id}` }));

describe("synthetic negatives: each kind is worse in its kind", () => {
  test("refusal: refusal language, none of the chosen's content; an answer is refused as a refusal", () => {
    for (const [i, c] of CHOSEN.entries()) {
      const r = refusalEdit(new Rng(i, "t"));
      expect(isRefusal(r)).toBe(true);
      expect(coverage(contentWords(c.response), contentWords(r))).toBeLessThanOrEqual(0.2);
      expect(checkNegative("refusal", c, r, opts)).toBeNull();
    }
    for (const t of REFUSAL_TEMPLATES) expect(isRefusal(t)).toBe(true);
    expect(checkNegative("refusal", CHOSEN[0]!, "Paris is the capital.", opts)).toBe("no refusal language");
    expect(checkNegative("refusal", CHOSEN[0]!, "Sorry, but the capital of France is Paris.", opts)).toBe("repeats the chosen's content");
  });

  test("format-violation: the chosen kept, then a new turn: QC's leakage check flags it, DPO can still train on it", () => {
    for (const c of CHOSEN) {
      const other = POOL.find((p) => p.id !== c.id)!;
      const r = formatViolationEdit(c, other, "Name a planet.");
      expect(r.startsWith(c.response)).toBe(true);
      expect(findLeakage(r).length).toBeGreaterThan(0);
      expect(untrainableReasons({ instruction: c.instruction, response: r, stopReason: "eos", critic: null })).toContain("leakage");
      expect(untrainableReasons({ instruction: c.instruction, response: c.response, stopReason: "eos", critic: null })).toEqual([]);
      expect(checkNegative("format-violation", c, r, opts)).toBeNull();
      expect(() => trainingText(c.instruction, r)).toThrow(/delimiter/);
      expect(trainingText(c.instruction, r, { allowDelimiters: true }).text).toBe(`Instruction: ${c.instruction}\nResponse: ${r}\nEND`);
    }
    expect(checkNegative("format-violation", CHOSEN[0]!, "The capital is Paris, I think.", opts)).toMatch(/format is intact/);
  });

  test("incorrect: differs from the chosen in content (numbers, polarity, words)", () => {
    for (const [i, c] of CHOSEN.entries()) {
      const r = incorrectEdit(c, new Rng(i, "t"), POOL[(i + 1) % POOL.length]!.response);
      expect(r).not.toBeNull();
      expect(r).not.toBe(c.response);
      expect(checkNegative("incorrect", c, r!, opts)).toBeNull();
    }
    expect(incorrectEdit(CHOSEN[1]!, new Rng(1), null)).not.toContain("42");
    expect(incorrectEdit(CHOSEN[2]!, new Rng(1), null)).toMatch(/^No/);
    expect(checkNegative("incorrect", CHOSEN[0]!, "the capital of  france is PARIS.", opts)).toBe("same content as the chosen");
    expect(checkNegative("incorrect", CHOSEN[0]!, "Sorry, I cannot do that.", opts)).toBe("a refusal, not an answer");
    expect(checkNegative("incorrect", CHOSEN[0]!, "zebra quantum marmalade", opts)).toBe("off topic, not an answer");
  });

  test("off-topic: another instruction's response that shares little with this instruction", () => {
    for (const c of CHOSEN) {
      const o = leastRelated(c.instruction, POOL.filter((p) => p.id !== c.id))!;
      expect(o.id).not.toBe(c.id);
      expect(overlap(contentWords(o.response), contentWords(c.instruction))).toBeLessThanOrEqual(0.2);
      expect(checkNegative("off-topic", c, o.response, opts)).toBeNull();
    }
    expect(checkNegative("off-topic", CHOSEN[0]!, "France has a capital, Paris.", opts)).toMatch(/shares too much/);
  });

  test("verbose: at least 2x the chosen's tokens, no word the chosen or the fillers lack", () => {
    for (const [i, c] of CHOSEN.entries()) {
      const r = verboseEdit(c, new Rng(i, "t"), 2);
      expect(tokens(r)).toBeGreaterThanOrEqual(2 * tokens(c.response));
      expect(checkNegative("verbose", c, r, opts)).toBeNull();
    }
    expect(checkNegative("verbose", CHOSEN[0]!, "The capital of France is Paris. Lyon is a big city in France too.", opts)).toBe("adds content");
    expect(checkNegative("verbose", CHOSEN[0]!, "The capital of France is Paris, Paris.", opts)).toMatch(/length/);
  });

  test("no kind but format-violation may hold a delimiter", () => {
    expect(checkNegative("refusal", CHOSEN[0]!, "Sorry, I can't.\nInstruction: more", opts)).toMatch(/delimiter/);
    expect(checkNegative("off-topic", CHOSEN[0]!, "Apples END", opts)).toMatch(/delimiter/);
  });
});

describe("mix", () => {
  test("SPEC §7's default mix is dealt exactly, seeded", () => {
    const mix = PairsConfig.parse({}).synthetic.mix;
    expect(apportion(100, mix)).toEqual({ refusal: 30, "format-violation": 25, incorrect: 20, "off-topic": 15, verbose: 10 });
    expect(Object.values(apportion(7, mix)).reduce((a, b) => a + b, 0)).toBe(7);
    const k = assignKinds(40, mix, 3);
    expect(k.filter((x) => x === "refusal").length).toBe(12);
    expect(assignKinds(40, mix, 3)).toEqual(k);
    expect(assignKinds(40, mix, 4)).not.toEqual(k);
    expect(apportion(10, { ...mix, refusal: 0, incorrect: 0, "off-topic": 0, verbose: 0 })["format-violation"]).toBe(10);
  });

  test("config is strict and refuses an all-zero mix", () => {
    expect(PairsConfig.safeParse({ bestOfN: { n: 4, gap: 1 } }).success).toBe(false);
    expect(PairsConfig.safeParse({ synthetic: { mix: { refusal: 0, "format-violation": 0, incorrect: 0, "off-topic": 0, verbose: 0 } } }).success).toBe(false);
  });
});

describe("best-of-N ranking", () => {
  const c = (id: string, response: string, margin: number, stopReason: Candidate["stopReason"] = "END"): Candidate => ({ id, response, margin, stopReason, seed: 1 });
  test("best vs worst, kept only when the gap exceeds the threshold", () => {
    const cands = [c("x0", "Paris.", 2), c("x1", "Lyon.", -1), c("x2", "It is Paris.", 1)];
    const r = rankBestOfN(cands, 1);
    expect("chosen" in r && [r.chosen.id, r.rejected.id, r.gap]).toEqual(["x0", "x1", 3]);
    expect(rankBestOfN(cands, 3)).toEqual({ skip: "small-gap", gap: 3 });
  });
  test("a runaway or leaking response is never chosen but may be rejected; identical texts give no pair", () => {
    const r = rankBestOfN([c("x0", "Paris and on and on", 5, "runaway"), c("x1", "Paris.", 0), c("x2", "No idea", -2)], 0);
    expect("chosen" in r && [r.chosen.id, r.rejected.id]).toEqual(["x1", "x2"]);
    const r2 = rankBestOfN([c("x0", "Paris.", 1), c("x1", "Paris and on", -3, "runaway")], 0);
    expect("chosen" in r2 && r2.rejected.id).toBe("x1");
    expect(rankBestOfN([c("x0", "Paris.", 1), c("x1", " paris. ", -3)], 0)).toEqual({ skip: "identical", gap: null });
  });
});

test("summary: counts by source and kind, margin gaps, rejected − chosen tokens", () => {
  const s = summarizePairs(
    [
      { source: "best-of-n", negativeKind: null, marginGap: 2, chosenTokens: 5, rejectedTokens: 9 },
      { source: "synthetic", negativeKind: "verbose", marginGap: 1, chosenTokens: 4, rejectedTokens: 12 },
      { source: "synthetic", negativeKind: "refusal", marginGap: null, chosenTokens: 6, rejectedTokens: 3 },
    ],
    { "off-topic:no edit applies": 1 },
  );
  expect(s.bySource).toEqual({ "best-of-n": 1, synthetic: 2 });
  expect(s.byKind).toEqual({ refusal: 1, "format-violation": 0, incorrect: 0, "off-topic": 0, verbose: 1 });
  expect(s.marginGap.all?.count).toBe(2);
  expect(s.length.all.difference?.mean).toBeCloseTo((4 + 8 - 3) / 3, 10);
  expect(s.length.all.chosenLonger).toBe(1);
  expect(s.skipped).toEqual({ "off-topic:no edit applies": 1 });
});

test("negative prompts: few-shot response blocks in kind, ending at `Response:` (no chat template)", () => {
  const p = negativePrompt("refusal", "Name a planet.");
  expect(p).toBe(REFUSAL_EXAMPLES.map((e) => `Instruction: ${e.instruction}\nResponse: ${e.response}\nEND\n\n`).join("") + "Instruction: Name a planet.\nResponse:");
  expect(negativePrompt("incorrect", "Name a planet.").startsWith(`Instruction: ${INCORRECT_EXAMPLES[0]!.instruction}\nResponse: ${INCORRECT_EXAMPLES[0]!.response}\nEND\n\n`)).toBe(true);
  expect(() => negativePrompt("refusal", "two\nlines")).toThrow();
});
