// What success means per test type (specs/evaluation.md §2): the checks an
// instruction carries, completed with the base checks every response needs and
// the type's defaults, and validated so a test set cannot silently test nothing.
import { LANGUAGES } from "./language.ts";
import type { CheckSpec, CheckType, TestType } from "./spec.ts";

const BASE: CheckSpec[] = [{ type: "non_empty" }, { type: "no_leakage" }];

/** The language the response should be in: a response_language check's (also an IFEval
 *  one's), else English, the language of the project's instructions. */
function responseLanguage(own: readonly CheckSpec[]): Extract<CheckSpec, { type: "response_language" }>["language"] {
  let found: string | undefined;
  const visit = (s: CheckSpec) => {
    if (found) return;
    if (s.type === "response_language") found = s.language;
    else if (s.type === "ifeval" && s.instruction === "language:response_language") found = String(s.kwargs.language);
    else if (s.type === "any_of") s.checks.forEach(visit);
    else if (s.type === "multi_step") s.steps.forEach((st) => visit(st.check));
  };
  own.forEach(visit);
  return ((LANGUAGES as readonly string[]).includes(found ?? "") ? found : "en") as never;
}

/** Added when the instruction carries no check of the same type. */
const DEFAULTS: Record<TestType, CheckSpec[]> = {
  factual: [],
  explanation: [
    { type: "word_count", relation: "at_least", n: 15 },
    { type: "sentence_count", relation: "at_least", n: 1 },
    { type: "not_refusal" },
    { type: "no_repetition", maxRepeatRatio: 0.5 },
  ],
  list: [{ type: "no_repetition", maxRepeatRatio: 0.5 }],
  instruction_following: [],
  creative: [
    { type: "word_count", relation: "at_least", n: 20 },
    { type: "not_refusal" },
    { type: "no_repetition", maxRepeatRatio: 0.5 },
  ],
};

/** At least one of these must be among the instruction's own checks (also inside
 *  any_of / multi_step). */
const REQUIRED: Partial<Record<TestType, CheckType[]>> = {
  factual: ["answer", "exact_answer", "math_result", "yes_no"],
  list: ["list_items", "numbered_list", "bullet_list"],
};

export function typesIn(specs: readonly CheckSpec[]): Set<CheckType> {
  const out = new Set<CheckType>();
  const visit = (s: CheckSpec) => {
    out.add(s.type);
    if (s.type === "any_of") s.checks.forEach(visit);
    if (s.type === "multi_step") s.steps.forEach((st) => visit(st.check));
  };
  specs.forEach(visit);
  return out;
}

/** A problem with an instruction's checks, or null. */
export function validateChecks(type: TestType, own: readonly CheckSpec[]): string | null {
  if (type === "instruction_following" && own.length === 0) return "an instruction_following item needs at least one check";
  const required = REQUIRED[type];
  if (required) {
    const present = typesIn(own);
    if (!required.some((t) => present.has(t))) return `a ${type} item needs one of the checks ${required.join(", ")}`;
  }
  return null;
}

/** The full list of checks a response of this type is judged by. */
export function checksFor(type: TestType, own: readonly CheckSpec[]): CheckSpec[] {
  const present = new Set(own.map((s) => s.type));
  // Every type's success includes the hygiene check: text in no language fails.
  const base = [...BASE, { type: "fluent", language: responseLanguage(own) } as CheckSpec].filter((s) => !present.has(s.type));
  const defaults = DEFAULTS[type].filter((s) => !present.has(s.type));
  return [...base, ...own, ...defaults];
}
