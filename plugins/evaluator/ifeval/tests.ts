// IFEval prompts as the project's test instructions (kind `test-instruction`):
// type instruction_following, one `ifeval` check per instruction. The completion
// format takes a one-line instruction (SPEC §3), so a prompt's line breaks become
// single spaces; the checks keep every kwarg, so the verdicts do not depend on it.
import { assertInstruction } from "../../prompts/prompts.ts";
import type { TestInstruction } from "../../shared/kinds.ts";
import { IfevalInputError, readIfevalInput, type IfevalItem } from "./input.ts";
import { itemChecks, type Semantics } from "./score.ts";

export const IFEVAL_TEMPLATE = "ifeval";

export function oneLine(prompt: string): string {
  return prompt.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

export function toTestInstructions(path: string, items: readonly IfevalItem[], semantics: Semantics): TestInstruction[] {
  return items.map((it) => {
    const instruction = oneLine(it.prompt);
    try {
      assertInstruction(instruction, "prompt");
    } catch (e) {
      throw new IfevalInputError(`${path}:${it.line}: ${(e as Error).message}`);
    }
    return { id: `ifeval-${it.key}`, type: "instruction_following", template: IFEVAL_TEMPLATE, instruction, checks: itemChecks(path, it, semantics), seed: 0 };
  });
}

/** Read an IFEval input file as test instructions. */
export function readIfevalTests(path: string, semantics: Semantics): TestInstruction[] {
  return toTestInstructions(path, readIfevalInput(path), semantics);
}
