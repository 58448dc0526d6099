// Scoring one response against one IFEval prompt: each instruction becomes an
// `ifeval` check (checks/spec.ts) under the chosen semantics, judged strict and
// loose by the same code the evaluator stage runs.
import { runCheck, type CheckOf } from "../checks/index.ts";
import { IfevalInputError, type IfevalItem } from "./input.ts";
import type { Instruction } from "./instructions.ts";
import type { PromptVerdict } from "./metrics.ts";
import { selftuneChecks } from "./selftune.ts";

export type Semantics = "ifeval" | "selftune";
export const SEMANTICS = ["ifeval", "selftune"] as const;

/** The check for one instruction; throws where the selftune checks cannot express it. */
export function ifevalCheck(ins: Instruction, semantics: Semantics): CheckOf<"ifeval"> {
  if (semantics === "selftune") selftuneChecks(ins);
  return { type: "ifeval", instruction: ins.id, kwargs: ins.kwargs as Record<string, unknown>, semantics };
}

/** Every instruction's check, or an error naming the item's line in `path`. */
export function itemChecks(path: string, item: IfevalItem, semantics: Semantics): CheckOf<"ifeval">[] {
  return item.instructions.map((ins, k) => {
    try {
      return ifevalCheck(ins, semantics);
    } catch (e) {
      throw new IfevalInputError(`${path}:${item.line}: instruction ${k + 1} (${ins.id}): ${(e as Error).message}`);
    }
  });
}

export function scorePrompt(checks: readonly CheckOf<"ifeval">[], response: string): PromptVerdict {
  return {
    instruction_id_list: checks.map((c) => c.instruction),
    strict: checks.map((c) => runCheck(response, c, "strict").passed),
    loose: checks.map((c) => runCheck(response, c, "loose").passed),
  };
}
