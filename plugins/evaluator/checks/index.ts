// Running checks: one pure function per check type, strict and loose modes,
// and the combinators (any_of, multi_step).
import { contentChecks } from "./content.ts";
import { formatChecks } from "./format.ts";
import type { CheckImpls, CheckOf, CheckResult, CheckSpec, LeafCheckType } from "./spec.ts";
import { looseVariants } from "./text.ts";
import { parseInstruction } from "../ifeval/instructions.ts";
import { referenceFollows } from "../ifeval/reference.ts";
import { selftuneChecks } from "../ifeval/selftune.ts";
import { looseVerdict, strictVerdict, type Follows } from "../ifeval/verdict.ts";

export * from "./spec.ts";

/** Every leaf check type must have an implementation: the type annotation enforces it. */
const IMPLS: CheckImpls = { ...contentChecks, ...formatChecks };

export type Mode = "strict" | "loose";

/** Hygiene checks are judged on the response as written in both modes: dropping a line
 *  must not hide a leaked delimiter or an opening refusal. Loose leniency is for the
 *  format of instruction-following, as in IFEval. */
export const STRICT_ONLY: ReadonlySet<CheckSpec["type"]> = new Set(["non_empty", "no_leakage", "not_refusal", "fluent"]);

function leaf(response: string, spec: Extract<CheckSpec, { type: LeafCheckType }>): CheckResult {
  const fn = IMPLS[spec.type] as (r: string, s: typeof spec) => CheckResult;
  return fn(response, spec);
}

/** The strict check: the response as it is. */
export function checkStrict(response: string, spec: CheckSpec): CheckResult {
  return run(response, spec, "strict");
}

/** The loose check (IFEval): passes if the strict check passes on any loose variant of the
 *  response (first/last line removed, markdown asterisks removed). */
export function checkLoose(response: string, spec: CheckSpec): CheckResult {
  return run(response, spec, "loose");
}

export function runCheck(response: string, spec: CheckSpec, mode: Mode): CheckResult {
  return run(response, spec, mode);
}

/** An IFEval instruction, strict or loose by IFEval's own rule (the reference's eight loose
 *  versions, one of which must follow the whole instruction). */
function ifeval(response: string, spec: CheckOf<"ifeval">, mode: Mode): CheckResult {
  const parsed = parseInstruction(spec.instruction, spec.kwargs);
  if (!parsed.ok) throw new Error(parsed.message); // the schema refuses these at load
  const ins = parsed.value;
  const checks = spec.semantics === "selftune" ? selftuneChecks(ins) : null;
  const follows: Follows = checks ? (r) => runChecks(r, checks, "strict").passed : (r) => referenceFollows(ins, r);
  const passed = mode === "strict" ? strictVerdict(response, follows) : looseVerdict(response, follows);
  const measured = checks ? `: ${runChecks(response, checks, "strict").results.map((x) => x.detail).join("; ")}` : "";
  return { passed, detail: `${spec.instruction} (${spec.semantics} semantics) ${passed ? "followed" : "not followed"}${measured}` };
}

function run(response: string, spec: CheckSpec, mode: Mode): CheckResult {
  if (spec.type === "ifeval") return ifeval(response, spec, mode);
  if (spec.type === "any_of") {
    const results = spec.checks.map((c) => run(response, c, mode));
    const hit = results.findIndex((r) => r.passed);
    return { passed: hit >= 0, detail: hit >= 0 ? `alternative ${hit + 1}: ${results[hit]!.detail}` : `no alternative passed (${results.map((r) => r.detail).join("; ")})` };
  }
  if (spec.type === "multi_step") {
    // Each step is judged on its own, in loose mode with its own best variant, as IFEval
    // judges each instruction of a multi-instruction prompt independently.
    const failed = spec.steps.map((s) => ({ label: s.label, r: run(response, s.check, mode) })).filter((x) => !x.r.passed);
    return { passed: failed.length === 0, detail: failed.length ? `failed steps: ${failed.map((f) => `${f.label} (${f.r.detail})`).join("; ")}` : `all ${spec.steps.length} steps passed` };
  }
  if (mode === "strict" || STRICT_ONLY.has(spec.type)) return leaf(response, spec);
  let first: CheckResult | null = null;
  for (const variant of looseVariants(response)) {
    const r = leaf(variant, spec);
    if (r.passed) return r;
    first ??= r;
  }
  return first ?? leaf(response, spec);
}

export interface ChecksOutcome {
  passed: boolean;
  results: { type: CheckSpec["type"]; passed: boolean; detail: string }[];
}

/** All checks of one response in one mode; success means every check passed. */
export function runChecks(response: string, specs: readonly CheckSpec[], mode: Mode): ChecksOutcome {
  const results = specs.map((s) => ({ type: s.type, ...run(response, s, mode) }));
  return { passed: results.every((r) => r.passed), results };
}
