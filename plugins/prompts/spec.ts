// The prompt formats as data: one `prompt-spec` record per format and pool, so
// a run's manifest pins exactly which prompt texts its data was made with.
import type { PromptSpec } from "../shared/kinds.ts";
import { INCORRECT_EXAMPLES, REFUSAL_EXAMPLES, REFUSAL_TEMPLATES, VERBOSE_FILLERS, incorrectPrompt, refusalPrompt } from "./negatives.ts";
import { INSTRUCTION_CRITIC_EXAMPLES, PAIR_CRITIC_EXAMPLES, RESPONSE_POOL, SEED_TASKS } from "./pool.ts";
import {
  INSTRUCTION_CRITIC_HEADER,
  PAIR_CRITIC_HEADER,
  PROMPT_FORMAT_VERSION,
  buildInstructionListPrompt,
  buildResponsePrompt,
  instructionCriticPrompt,
  pairCriticPrompt,
  trainingText,
} from "./prompts.ts";
import { sha256 } from "../../core/provenance.ts";

function record(name: string, description: string, template: string, example: string): PromptSpec {
  return { name, version: PROMPT_FORMAT_VERSION, description, template, example, sha256: sha256(`${template}\n${example}`) };
}

// Fixed inputs for the rendered examples, so the records never change unless a format does.
const EXAMPLE_INSTRUCTION = "Name two planets of the solar system.";
const EXAMPLE_RESPONSE = "Mars and Venus.";

/** Every format and pool, in a fixed order. */
export function promptSpecs(): PromptSpec[] {
  return [
    record(
      "response",
      "k few-shot examples from the response pool (seeded, stratified by category), then the open item",
      "{for each example: Instruction: {i}\\nResponse: {r}\\nEND\\n\\n}Instruction: {instruction}\\nResponse:",
      buildResponsePrompt(EXAMPLE_INSTRUCTION, { seed: 0, key: "example", k: 3 }).prompt,
    ),
    record(
      "instruction-list",
      "preamble, k seed tasks numbered from 1, then the next number and a dot; the model continues the list",
      "{preamble}{for n, task: {n}. {task}\\n}{k+1}.",
      buildInstructionListPrompt({ seed: 0, key: "example", k: 8 }).prompt,
    ),
    record("instruction-critic", "rubric and labelled examples, the item, `Answer:`; next token read: \" A\" or \" B\"", `${INSTRUCTION_CRITIC_HEADER}Instruction: {instruction}\nAnswer:`, instructionCriticPrompt(EXAMPLE_INSTRUCTION)),
    record("pair-critic", "rubric and labelled examples, the item, `Answer:`; next token read: \" A\" or \" B\"", `${PAIR_CRITIC_HEADER}Instruction: {instruction}\nResponse: {response}\nAnswer:`, pairCriticPrompt(EXAMPLE_INSTRUCTION, EXAMPLE_RESPONSE)),
    record("training", "SFT text; the loss covers ` {response}\\nEND`", "Instruction: {instruction}\nResponse: {response}\nEND", trainingText(EXAMPLE_INSTRUCTION, EXAMPLE_RESPONSE).text),
    record("refusal-negative", "few-shot refusals of harmless tasks, then the open item (pairs: synthetic refusal)", "{for each refusal example: Instruction: {i}\\nResponse: {r}\\nEND\\n\\n}Instruction: {instruction}\\nResponse:", refusalPrompt(EXAMPLE_INSTRUCTION)),
    record("incorrect-negative", "few-shot wrong answers, then the open item (pairs: synthetic incorrect answer)", "{for each incorrect example: Instruction: {i}\\nResponse: {r}\\nEND\\n\\n}Instruction: {instruction}\\nResponse:", incorrectPrompt(EXAMPLE_INSTRUCTION)),
    record("pool:response", "few-shot examples for response prompts", JSON.stringify(RESPONSE_POOL), ""),
    record("pool:seed-tasks", "seed tasks for the instruction list", JSON.stringify(SEED_TASKS), ""),
    record("pool:negatives", "examples in the negative prompts, refusal fallbacks and verbose fillers (pairs)", JSON.stringify({ refusal: REFUSAL_EXAMPLES, incorrect: INCORRECT_EXAMPLES, refusalTemplates: REFUSAL_TEMPLATES, verboseFillers: VERBOSE_FILLERS }), ""),
    record("pool:critic-examples", "labelled examples inside the critic prompts", JSON.stringify({ instruction: INSTRUCTION_CRITIC_EXAMPLES, pair: PAIR_CRITIC_EXAMPLES }), ""),
  ];
}

/** One hash over every format and pool: what a generating stage records as its prompt version. */
export function promptFormatsSha256(): string {
  return sha256(promptSpecs().map((s) => s.sha256).join("\n"));
}
