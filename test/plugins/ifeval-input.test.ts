// Reading IFEval's input and response files: every bad line is an error naming file:line;
// IFEval prompts become test instructions with one `ifeval` check per instruction.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CheckSpecs } from "../../plugins/evaluator/checks/spec.ts";
import { readIfevalInput, readIfevalResponses } from "../../plugins/evaluator/ifeval/input.ts";
import { ifevalMetrics } from "../../plugins/evaluator/ifeval/metrics.ts";
import { readIfevalTests } from "../../plugins/evaluator/ifeval/tests.ts";
import { TestInstruction } from "../../plugins/shared/kinds.ts";
import { tempDir } from "../helpers.ts";

const GOOD = { key: 1000, prompt: "Write a story.\nUse no commas.", instruction_id_list: ["punctuation:no_comma", "length_constraints:number_words"], kwargs: [{}, { num_words: 50, relation: "at least" }] };

function file(lines: unknown[]): string {
  const p = join(tempDir("ifeval-input-"), "input_data.jsonl");
  writeFileSync(p, lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n");
  return p;
}

describe("readIfevalInput", () => {
  test("reads records, dropping null kwargs (the Hugging Face copy's form)", () => {
    const p = file([GOOD, { ...GOOD, key: 1001, prompt: "Other.", kwargs: [{ num_words: null }, { num_words: 5, relation: "less than", keyword: null }] }]);
    const items = readIfevalInput(p);
    expect(items.map((i) => [i.key, i.line, i.instructions.map((x) => x.id)])).toEqual([
      [1000, 1, ["punctuation:no_comma", "length_constraints:number_words"]],
      [1001, 2, ["punctuation:no_comma", "length_constraints:number_words"]],
    ]);
    expect(items[1]!.instructions[1]!.kwargs).toEqual({ num_words: 5, relation: "less than" });
  });

  const BAD: [string, unknown, RegExp][] = [
    ["not JSON", "{nope", /:2: not valid JSON/],
    ["missing prompt", { key: 2, instruction_id_list: ["punctuation:no_comma"], kwargs: [{}] }, /:2: not an IFEval input record: prompt/],
    ["unknown id", { ...GOOD, key: 2, instruction_id_list: ["keywords:key_sentences"], kwargs: [{}] }, /:2: instruction 1: unknown instruction id 'keywords:key_sentences'/],
    ["kwargs count", { ...GOOD, key: 2, kwargs: [{}] }, /:2: 2 instruction ids but 1 kwargs entries/],
    ["missing kwarg", { ...GOOD, key: 2, kwargs: [{}, { relation: "at least" }] }, /:2: instruction 2: kwargs of 'length_constraints:number_words': num_words/],
    ["bad relation", { ...GOOD, key: 2, kwargs: [{}, { num_words: 3, relation: "at most" }] }, /:2: instruction 2: .*relation/],
    ["unknown kwarg", { ...GOOD, key: 2, kwargs: [{ extra: 1 }, { num_words: 3, relation: "at least" }] }, /:2: instruction 1: kwargs of 'punctuation:no_comma'/],
    ["two letters", { ...GOOD, key: 2, instruction_id_list: ["keywords:letter_frequency"], kwargs: [{ letter: "ab", let_frequency: 1, let_relation: "at least" }] }, /:2: .*letter: one character, not white space/],
    ["nth beyond count", { ...GOOD, key: 2, instruction_id_list: ["length_constraints:nth_paragraph_first_word"], kwargs: [{ num_paragraphs: 2, nth_paragraph: 3, first_word: "a" }] }, /:2: .*nth_paragraph must be at most num_paragraphs/],
    ["less than 0", { ...GOOD, key: 2, kwargs: [{}, { num_words: 0, relation: "less than" }] }, /:2: .*'less than 0' can never hold/],
    ["duplicate key", { ...GOOD, prompt: "Again." }, /:2: key 1000 already used at line 1/],
  ];
  for (const [what, line, message] of BAD)
    test(`a bad line is an error naming file:line: ${what}`, () => {
      const p = file([GOOD, line]);
      expect(() => readIfevalInput(p)).toThrow(message);
      expect(() => readIfevalInput(p)).toThrow(p);
    });

  test("an empty file is an error", () => expect(() => readIfevalInput(file([]))).toThrow(/no records/));
});

describe("readIfevalResponses", () => {
  test("prompt to response; a bad line names file:line", () => {
    const ok = file([{ prompt: "a", response: "x" }, { prompt: "b", response: "y", extra: 1 }]);
    expect([...readIfevalResponses(ok)]).toEqual([["a", "x"], ["b", "y"]]);
    const bad = file([{ prompt: "a", response: "x" }, { prompt: "b" }]);
    expect(() => readIfevalResponses(bad)).toThrow(`${bad}:2: not a response record`);
  });
});

describe("IFEval prompts as test instructions", () => {
  test("one line, one ifeval check per instruction, valid test-instruction records", () => {
    const tests = readIfevalTests(file([GOOD]), "selftune");
    expect(tests).toHaveLength(1);
    expect(tests[0]!.instruction).toBe("Write a story. Use no commas.");
    expect(tests[0]!.id).toBe("ifeval-1000");
    expect(tests[0]!.checks).toEqual([
      { type: "ifeval", instruction: "punctuation:no_comma", kwargs: {}, semantics: "selftune" },
      { type: "ifeval", instruction: "length_constraints:number_words", kwargs: { num_words: 50, relation: "at least" }, semantics: "selftune" },
    ]);
    expect(TestInstruction.safeParse(tests[0]).success).toBe(true);
  });
  test("the check schema refuses bad kwargs", () => {
    expect(CheckSpecs.safeParse([{ type: "ifeval", instruction: "length_constraints:number_words", kwargs: { num_words: "many" } }]).success).toBe(false);
    expect(CheckSpecs.safeParse([{ type: "ifeval", instruction: "nope:nope" }]).success).toBe(false);
  });
  test("a prompt with a delimiter is an error at its line", () => {
    const p = file([GOOD, { ...GOOD, key: 2, prompt: "Say it.\nResponse: now" }]);
    expect(() => readIfevalTests(p, "ifeval")).toThrow(`${p}:2: prompt contains the delimiter`);
  });
  test("a language selftune cannot judge is an error at its line under selftune only", () => {
    const p = file([{ ...GOOD, instruction_id_list: ["language:response_language"], kwargs: [{ language: "sv" }] }]);
    expect(() => readIfevalTests(p, "selftune")).toThrow(`${p}:1: instruction 1 (language:response_language)`);
    expect(readIfevalTests(p, "ifeval")).toHaveLength(1);
  });
});

describe("ifevalMetrics", () => {
  test("the four numbers and the per-id table", () => {
    const m = ifevalMetrics([
      { instruction_id_list: ["a:x", "b:y"], strict: [true, false], loose: [true, true] },
      { instruction_id_list: ["a:x"], strict: [true], loose: [true] },
      { instruction_id_list: ["a:z", "b:y", "b:y"], strict: [false, false, true], loose: [false, true, true] },
    ]);
    expect(m.prompts).toBe(3);
    expect(m.instructions).toBe(6);
    expect(m.promptLevel).toEqual({ strict: 1 / 3, loose: 2 / 3 });
    expect(m.instructionLevel).toEqual({ strict: 3 / 6, loose: 5 / 6 });
    expect(m.byInstruction).toEqual([
      { id: "a:x", n: 2, strict: 1, loose: 1 },
      { id: "a:z", n: 1, strict: 0, loose: 0 },
      { id: "b:y", n: 3, strict: 1 / 3, loose: 1 },
    ]);
    expect(m.byCategory.map((r) => [r.id, r.n])).toEqual([["a", 3], ["b", 3]]);
  });
});
