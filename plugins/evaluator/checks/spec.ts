// The check specification: data a test instruction carries to say what a
// successful response looks like (specs/evaluation.md §3). Only zod (and the list of
// language codes) here, so the test-set plugin and plugins/shared/kinds.ts can
// import it without pulling in the evaluator.
import { z } from "zod";
import { LANGUAGES } from "./language.ts";
import { INSTRUCTION_IDS, parseInstruction } from "../ifeval/instructions.ts";

/** The five held-out test types of SPEC §8. */
export const TEST_TYPES = ["factual", "explanation", "list", "instruction_following", "creative"] as const;
export const TestType = z.enum(TEST_TYPES);
export type TestType = z.infer<typeof TestType>;

export const Relation = z.enum(["at_least", "at_most", "exactly"]);
export type Relation = z.infer<typeof Relation>;

const count = z.number().int().min(0);
const phrase = z.string().min(1);
const keywords = z.array(z.string().min(1)).min(1);

/** Checks that are not combinators (multi_step steps and any_of members may be these or any_of). */
const leafChecks = [
  z.strictObject({ type: z.literal("non_empty") }),
  z.strictObject({ type: z.literal("no_leakage") }),
  z.strictObject({ type: z.literal("not_refusal") }),
  z.strictObject({ type: z.literal("fluent"), language: z.enum(LANGUAGES).default("en") }),
  z.strictObject({ type: z.literal("no_repetition"), maxRepeatRatio: z.number().min(0).max(1).default(0.5) }),
  z.strictObject({ type: z.literal("answer"), accepted: keywords }),
  z.strictObject({ type: z.literal("exact_answer"), answer: phrase, caseSensitive: z.boolean().default(false) }),
  z.strictObject({ type: z.literal("math_result"), value: z.number(), tolerance: z.number().min(0).default(1e-9) }),
  z.strictObject({ type: z.literal("yes_no"), expected: z.enum(["yes", "no"]).optional() }),
  z.strictObject({ type: z.literal("word_count"), relation: Relation, n: count }),
  z.strictObject({ type: z.literal("sentence_count"), relation: Relation, n: count }),
  z.strictObject({ type: z.literal("paragraph_count"), relation: Relation, n: count, separator: z.enum(["blank", "***"]).default("blank") }),
  z.strictObject({ type: z.literal("line_count"), relation: Relation, n: count }),
  z.strictObject({ type: z.literal("nth_paragraph_first_word"), paragraphs: z.number().int().min(1), nth: z.number().int().min(1), word: phrase }),
  z.strictObject({ type: z.literal("numbered_list"), relation: Relation.default("exactly"), n: count }),
  z.strictObject({ type: z.literal("bullet_list"), relation: Relation.default("exactly"), n: count }),
  z.strictObject({ type: z.literal("list_items"), relation: Relation.default("at_least"), n: count, distinct: z.boolean().default(true) }),
  z.strictObject({ type: z.literal("keywords_include"), keywords }),
  z.strictObject({ type: z.literal("keywords_any"), keywords, min: z.number().int().min(1).default(1) }),
  z.strictObject({ type: z.literal("keywords_exclude"), keywords }),
  z.strictObject({ type: z.literal("keyword_frequency"), keyword: phrase, relation: Relation, n: count }),
  z.strictObject({ type: z.literal("letter_frequency"), letter: z.string().refine((s) => [...s].length === 1, "one character"), relation: Relation, n: count }),
  z.strictObject({ type: z.literal("lowercase") }),
  z.strictObject({ type: z.literal("uppercase") }),
  z.strictObject({ type: z.literal("capital_word_frequency"), relation: Relation, n: count }),
  z.strictObject({ type: z.literal("json_format") }),
  z.strictObject({ type: z.literal("starts_with"), phrase, caseSensitive: z.boolean().default(false) }),
  z.strictObject({ type: z.literal("ends_with"), phrase, caseSensitive: z.boolean().default(false) }),
  z.strictObject({ type: z.literal("quotation") }),
  z.strictObject({ type: z.literal("no_commas") }),
  z.strictObject({ type: z.literal("placeholders"), n: count }),
  z.strictObject({ type: z.literal("title") }),
  z.strictObject({ type: z.literal("postscript"), marker: phrase.default("P.S.") }),
  z.strictObject({ type: z.literal("highlighted_sections"), n: count }),
  z.strictObject({ type: z.literal("sections"), splitter: phrase.default("Section"), n: count }),
  z.strictObject({ type: z.literal("constrained_response"), options: keywords }),
  z.strictObject({ type: z.literal("repeat_prompt"), prompt: phrase }),
  z.strictObject({ type: z.literal("two_responses") }),
  z.strictObject({ type: z.literal("refusal") }),
  z.strictObject({ type: z.literal("response_language"), language: z.enum(LANGUAGES) }),
  // One IFEval instruction (id and kwargs as in IFEval's input format), judged by the
  // reference implementation's rules or by the checks above (plugins/evaluator/ifeval).
  z
    .strictObject({
      type: z.literal("ifeval"),
      instruction: z.enum(INSTRUCTION_IDS),
      kwargs: z.record(z.string(), z.unknown()).default({}),
      semantics: z.enum(["ifeval", "selftune"]).default("ifeval"),
    })
    .superRefine((c, ctx) => {
      const r = parseInstruction(c.instruction, c.kwargs);
      if (!r.ok) ctx.addIssue({ code: "custom", path: ["kwargs"], message: r.message });
    }),
] as const;

const LeafCheck = z.discriminatedUnion("type", leafChecks);
type LeafCheck = z.output<typeof LeafCheck>;

export type AnyOfCheck = { type: "any_of"; checks: CheckSpec[] };
export type MultiStepCheck = { type: "multi_step"; steps: { label: string; check: CheckSpec }[] };
export type CheckSpec = LeafCheck | AnyOfCheck | MultiStepCheck;

// Recursive members are declared with getters (zod 4's way of writing recursive schemas).
const AnyOf = z.strictObject({
  type: z.literal("any_of"),
  get checks() {
    return z.array(CheckSpec).min(1);
  },
});
const MultiStep = z.strictObject({
  type: z.literal("multi_step"),
  get steps() {
    return z.array(z.strictObject({ label: z.string().min(1), check: CheckSpec })).min(1);
  },
});

export const CheckSpec: z.ZodType<CheckSpec, unknown> = z.discriminatedUnion("type", [...leafChecks, AnyOf, MultiStep]) as never;
export const CheckSpecs = z.array(CheckSpec);

export type CheckType = CheckSpec["type"];
export type CheckOf<T extends CheckType> = Extract<CheckSpec, { type: T }>;
export const CHECK_TYPES: readonly CheckType[] = [...leafChecks.map((s) => s.shape.type.value), "any_of", "multi_step"];

/** What a check says about one response. */
export interface CheckResult {
  passed: boolean;
  /** What was measured, for humans: "42 words, wanted at most 40". */
  detail: string;
}

/** Checks with one pure function each; `ifeval` dispatches to plugins/evaluator/ifeval instead. */
export type LeafCheckType = Exclude<CheckType, "any_of" | "multi_step" | "ifeval">;
/** One pure function per leaf check type; checks/index.ts requires them all. */
export type CheckImpls = { [T in LeafCheckType]: (response: string, spec: CheckOf<T>) => CheckResult };
