// Prompt formats, byte for byte (specs/prompts.md), and seeded few-shot choice.
import { describe, expect, test } from "bun:test";
import { findLeakage } from "../../plugins/prompts/clean.ts";
import { RESPONSE_POOL, SEED_TASKS, type FewShotExample } from "../../plugins/prompts/pool.ts";
import {
  buildInstructionListPrompt,
  buildResponsePrompt,
  criticVerdict,
  instructionCriticPrompt,
  instructionListPrompt,
  pairCriticPrompt,
  PromptError,
  responsePrompt,
  selectFewShot,
  selectSeedTasks,
  trainingText,
  variantKey,
} from "../../plugins/prompts/prompts.ts";
import { Rng } from "../../plugins/prompts/rng.ts";
import { CriticVerdict } from "../../plugins/shared/kinds.ts";

const ex = (id: string): FewShotExample => RESPONSE_POOL.find((e) => e.id === id)!;

describe("response prompt", () => {
  test("golden: examples then the open item", () => {
    const p = responsePrompt("Name two planets.", [ex("math-01"), ex("facts-04")]);
    expect(p).toBe(
      "Instruction: What is 15% of 80?\nResponse: 15% of 80 is 0.15 × 80 = 12.\nEND\n\n" +
        "Instruction: List the three primary colors of paint.\nResponse: 1. Red\n2. Yellow\n3. Blue\nEND\n\n" +
        "Instruction: Name two planets.\nResponse:",
    );
  });

  test("zero-shot is just the open item", () => {
    expect(responsePrompt("Name two planets.", [])).toBe("Instruction: Name two planets.\nResponse:");
  });

  test("seeded choice is pinned (a change here changes every prompt ever built)", () => {
    expect(selectFewShot(1, "ins-1", 3).map((e) => e.id)).toEqual(["math-04", "creative-03", "completion-05"]);
    const b = buildResponsePrompt("Name two planets.", { seed: 1, key: "ins-1", k: 3 });
    expect(b.fewShotIds).toEqual(["math-04", "creative-03", "completion-05"]);
    expect(b.prompt.startsWith(b.header)).toBe(true);
    expect(b.prompt.slice(b.header.length)).toBe("Instruction: Name two planets.\nResponse:");
  });

  test("same seed and key give the same examples; the choice depends on the key alone, not on call order", () => {
    const a = ["x", "y", "z"].map((k) => selectFewShot(7, k, 4).map((e) => e.id));
    const b = ["z", "y", "x"].map((k) => selectFewShot(7, k, 4).map((e) => e.id)).reverse();
    expect(a).toEqual(b);
    const distinct = new Set(Array.from({ length: 50 }, (_, i) => selectFewShot(7, `k${i}`, 3).map((e) => e.id).join(",")));
    expect(distinct.size).toBeGreaterThan(40);
    expect(selectFewShot(8, "x", 4)).not.toEqual(selectFewShot(7, "x", 4));
  });

  test("up to five examples come from distinct categories; more are distinct examples", () => {
    for (let i = 0; i < 200; i++) {
      for (const k of [1, 3, 5]) {
        const cats = selectFewShot(3, `i${i}`, k).map((e) => e.category);
        expect(new Set(cats).size).toBe(k);
      }
      const seven = selectFewShot(3, `i${i}`, 7).map((e) => e.id);
      expect(new Set(seven).size).toBe(7);
    }
  });

  test("bad k and bad instructions are refused", () => {
    expect(() => selectFewShot(0, "a", RESPONSE_POOL.length + 1)).toThrow(PromptError);
    expect(() => selectFewShot(0, "a", -1)).toThrow(PromptError);
    expect(() => responsePrompt("two\nlines", [])).toThrow("spans several lines");
    expect(() => responsePrompt("", [])).toThrow("empty");
    expect(() => responsePrompt(" padded", [])).toThrow("whitespace");
    expect(() => responsePrompt("Say Response: hi", [])).toThrow("delimiter");
    expect(() => responsePrompt("Write END in capitals", [])).toThrow("delimiter");
    expect(responsePrompt("Describe the ENDING of a film", [])).toContain("ENDING");
  });

  test("variant keys spread ids over the requested number of headers", () => {
    const keys = new Set(Array.from({ length: 400 }, (_, i) => variantKey(5, `ins-${i}`, 8)));
    expect(keys.size).toBe(8);
    expect(variantKey(5, "ins-1", 8)).toBe(variantKey(5, "ins-1", 8));
    expect(() => variantKey(5, "a", 0)).toThrow(PromptError);
  });
});

describe("the pools", () => {
  test("every pool text fits the format: one line, no delimiters, short responses without blank lines", () => {
    expect(RESPONSE_POOL.length).toBeGreaterThanOrEqual(25);
    expect(new Set(RESPONSE_POOL.map((e) => e.category)).size).toBe(5);
    expect(new Set(RESPONSE_POOL.map((e) => e.id)).size).toBe(RESPONSE_POOL.length);
    for (const e of RESPONSE_POOL) {
      expect(() => responsePrompt(e.instruction, [])).not.toThrow();
      expect(findLeakage(e.response)).toEqual([]);
      expect(e.response).not.toMatch(/\n\s*\n/);
      expect(e.response).toBe(e.response.trim());
      expect(e.response.split(/\s+/).length).toBeLessThanOrEqual(30);
    }
    expect(new Set(SEED_TASKS.map((t) => t.text)).size).toBe(SEED_TASKS.length);
    for (const t of SEED_TASKS) expect(() => instructionListPrompt([t.text])).not.toThrow();
  });
});

describe("instruction-generation prompt", () => {
  test("golden: preamble, numbered tasks, then the next number", () => {
    expect(instructionListPrompt(["Name a color.", "What is 2 + 2?"])).toBe(
      "Below is a list of varied tasks. Each task is one clear, self-contained instruction that a helpful assistant can carry out.\n\n" +
        "1. Name a color.\n2. What is 2 + 2?\n3.",
    );
  });

  test("seeded seed-task choice", () => {
    const a = buildInstructionListPrompt({ seed: 2, key: "batch-0", k: 8 });
    expect(a.fewShotIds).toHaveLength(8);
    expect(new Set(a.fewShotIds).size).toBe(8);
    expect(a.nextNumber).toBe(9);
    expect(a.prompt.endsWith("\n9.")).toBe(true);
    expect(buildInstructionListPrompt({ seed: 2, key: "batch-0", k: 8 })).toEqual(a);
    expect(selectSeedTasks(2, "batch-1", 8)).not.toEqual(selectSeedTasks(2, "batch-0", 8));
    expect(() => selectSeedTasks(2, "b", 0)).toThrow(PromptError);
  });
});

describe("critic prompts", () => {
  test("golden instruction critic: rubric, labelled examples, item, Answer:", () => {
    expect(instructionCriticPrompt("Name two planets.")).toBe(
      "Decide whether each instruction is clear, self-contained and answerable.\n" +
        "A means yes: someone could carry it out right away without asking anything back.\n" +
        "B means no: it is vague, incomplete, refers to something that is not given, or is not a task.\n\n" +
        "Instruction: Name three primary colors.\nAnswer: A\n\n" +
        "Instruction: Summarize the article above.\nAnswer: B\n\n" +
        "Instruction: Explain why ice floats on water.\nAnswer: A\n\n" +
        "Instruction: and then the second part of it\nAnswer: B\n\n" +
        "Instruction: Name two planets.\nAnswer:",
    );
  });

  test("golden pair critic", () => {
    expect(pairCriticPrompt("Name two planets.", "Mars and\nVenus.")).toBe(
      "Decide whether each response fulfils its instruction.\n" +
        "A means yes: it does what the instruction asks, correctly and on topic.\n" +
        "B means no: it is wrong, off topic, incomplete, repeats the instruction, or does something else.\n\n" +
        "Instruction: What is 7 times 8?\nResponse: 7 times 8 is 56.\nAnswer: A\n\n" +
        "Instruction: Name a mammal that lives in the sea.\nResponse: The sea is very big and very blue.\nAnswer: B\n\n" +
        'Instruction: Give a synonym for "fast".\nResponse: Quick.\nAnswer: A\n\n' +
        "Instruction: Write a haiku about snow.\nResponse: Write a haiku about rain. Write a haiku about wind. Write a haiku about\nAnswer: B\n\n" +
        "Instruction: Name two planets.\nResponse: Mars and\nVenus.\nAnswer:",
    );
  });

  test("verdict: margin = logp A − logp B, accepted at or above the threshold, and valid as a record", () => {
    expect(criticVerdict(-0.5, -2.5, 1)).toEqual({ margin: 2, accepted: true, threshold: 1 });
    expect(criticVerdict(-1.5, -2.5, 1)).toEqual({ margin: 1, accepted: true, threshold: 1 });
    expect(criticVerdict(-2, -2.5, 1)).toEqual({ margin: 0.5, accepted: false, threshold: 1 });
    expect(() => criticVerdict(-Infinity, -1, 1)).toThrow("not finite");
    expect(CriticVerdict.safeParse(criticVerdict(-2, -2.5, 1)).success).toBe(true);
    expect(CriticVerdict.safeParse({ margin: 0.5, accepted: true, threshold: 1 }).success).toBe(false);
  });
});

describe("training text", () => {
  test("golden text and the exact loss span ` {r}\\nEND`", () => {
    const t = trainingText("Name two planets.", "Mars and Venus.");
    expect(t.text).toBe("Instruction: Name two planets.\nResponse: Mars and Venus.\nEND");
    expect(t.text.slice(t.loss.start, t.loss.end)).toBe(" Mars and Venus.\nEND");
    expect(t.loss).toEqual({ start: 40, end: 60 });
    expect(t.lossBytes).toEqual(t.loss);
  });

  test("multi-line and non-ASCII responses: character and byte spans each cover exactly the response part", () => {
    const t = trainingText("Translate «café» to Japanese.", "カフェ\n(kafe) ☕");
    expect(t.text.slice(t.loss.start, t.loss.end)).toBe(" カフェ\n(kafe) ☕\nEND");
    const bytes = Buffer.from(t.text, "utf8");
    expect(bytes.subarray(t.lossBytes.start, t.lossBytes.end).toString("utf8")).toBe(" カフェ\n(kafe) ☕\nEND");
    expect(bytes.subarray(0, t.lossBytes.start).toString("utf8")).toBe("Instruction: Translate «café» to Japanese.\nResponse:");
    expect(t.lossBytes.end).toBe(bytes.length);
  });

  test("refuses text that would corrupt the format", () => {
    expect(() => trainingText("Name two planets.", "")).toThrow("empty");
    expect(() => trainingText("Name two planets.", " Mars")).toThrow("whitespace");
    expect(() => trainingText("Name two planets.", "Mars\nEND")).toThrow("delimiter");
    expect(() => trainingText("Name two planets.", "Mars. Instruction: more")).toThrow("delimiter");
    expect(() => trainingText("Name\ntwo", "Mars")).toThrow("lines");
    expect(() => trainingText("Name two planets.", "Mars<|im_end|>")).toThrow("chat markup");
    expect(() => trainingText("[INST] Name two planets.", "Mars")).toThrow("chat markup");
  });
});

describe("rng", () => {
  test("deterministic, pinned, and uniform enough", () => {
    const r = new Rng(42, "x");
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([2158825317, 1608564081, 3526991660]);
    const counts = new Array(6).fill(0);
    const d = new Rng(1, "die");
    for (let i = 0; i < 60000; i++) counts[d.int(6)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(400);
    expect(new Rng(1, "s").sample([1, 2, 3, 4, 5], 5).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(() => new Rng(1).sample([1], 2)).toThrow();
  });
});
