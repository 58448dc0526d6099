// Success per test type: base checks, type defaults, and validation of what an
// instruction must carry (specs/evaluation.md §2).
import { describe, expect, test } from "bun:test";
import { CheckSpec, runChecks } from "../../plugins/evaluator/checks/index.ts";
import { checksFor, validateChecks } from "../../plugins/evaluator/checks/tasks.ts";

const parse = (x: unknown) => CheckSpec.parse(x);

describe("checks per test type", () => {
  test("every type gets the base checks; explanation and creative get defaults", () => {
    expect(checksFor("factual", [parse({ type: "answer", accepted: ["Paris"] })]).map((c) => c.type)).toEqual(["non_empty", "no_leakage", "fluent", "answer"]);
    expect(checksFor("explanation", []).map((c) => c.type)).toEqual(["non_empty", "no_leakage", "fluent", "word_count", "sentence_count", "not_refusal", "no_repetition"]);
    expect(checksFor("creative", []).map((c) => c.type)).toEqual(["non_empty", "no_leakage", "fluent", "word_count", "not_refusal", "no_repetition"]);
  });

  test("an instruction's own check replaces the default of the same type", () => {
    const own = parse({ type: "word_count", relation: "at_least", n: 50 });
    const all = checksFor("explanation", [own]);
    expect(all.filter((c) => c.type === "word_count") as unknown[]).toEqual([own]);
  });

  test("validation: factual needs an answer check, list a list check, instruction_following any check", () => {
    expect(validateChecks("factual", [])).toMatch(/answer/);
    expect(validateChecks("factual", [parse({ type: "math_result", value: 4 })])).toBeNull();
    expect(validateChecks("factual", [parse({ type: "any_of", checks: [{ type: "answer", accepted: ["4"] }] })])).toBeNull();
    expect(validateChecks("list", [parse({ type: "word_count", relation: "at_most", n: 3 })])).toMatch(/list_items/);
    expect(validateChecks("list", [parse({ type: "list_items", n: 5 })])).toBeNull();
    expect(validateChecks("instruction_following", [])).toMatch(/at least one/);
    expect(validateChecks("explanation", [])).toBeNull();
    expect(validateChecks("creative", [])).toBeNull();
  });

  test("an explanation: on-topic, long enough, not a refusal, not a loop", () => {
    const checks = checksFor("explanation", [parse({ type: "keywords_any", keywords: ["evaporation", "condensation", "precipitation"] })]);
    const good = "Water evaporates from the sea, rises, and cools. Condensation forms clouds, and precipitation brings the water back down as rain or snow.";
    expect(runChecks(good, checks, "strict").passed).toBe(true);
    expect(runChecks("Rain falls.", checks, "strict").passed).toBe(false);
    expect(runChecks("I'm sorry, but I cannot explain condensation and evaporation, it is beyond me and I will not try at all today.", checks, "strict").passed).toBe(false);
    expect(runChecks("Condensation " + "is water is water is water ".repeat(10), checks, "strict").passed).toBe(false);
    expect(runChecks(good + "\nInstruction: next", checks, "strict").passed).toBe(false);
  });
});
