// The in-context baseline (URIAL-style; Lin et al. 2023): the run's base model prompted with
// k examples in the project's own response format, built by the prompts plugin's builder —
// the format the training data was generated with. It answers "did training beat a good
// prompt?": the default pairs put SFT and DPO against it (specs/evaluation.md §7).
import { z } from "zod";
import { normalizeInstruction } from "../prompts/dedupe.ts";
import { RESPONSE_POOL, type FewShotExample } from "../prompts/pool.ts";

/** The variant's name in results, pairs and its responses file. */
export const FEW_SHOT_VARIANT = "base+few-shot";

export const FewShotBaselineConfig = z.strictObject({
  /** Evaluate `base+few-shot` beside `base` whenever the run's base model is evaluated. */
  enabled: z.boolean().default(true),
  /** Examples before each test instruction; 3 is the responses stage's default k. */
  k: z.number().int().min(1).default(3),
  /** Chooses the examples (one header for every item, so the prompts share its KV cache). */
  seed: z.number().int().default(0),
});
export type FewShotBaselineConfig = z.output<typeof FewShotBaselineConfig>;
export const FEW_SHOT_BASELINE_DEFAULT: FewShotBaselineConfig = { enabled: true, k: 3, seed: 0 };

/**
 * The response pool without any example whose instruction is one of the test instructions
 * (normalized): a test item must never be answered by an example of itself.
 */
export function fewShotPool(instructions: readonly string[], pool: readonly FewShotExample[] = RESPONSE_POOL): FewShotExample[] {
  const tests = new Set(instructions.map(normalizeInstruction));
  return pool.filter((e) => !tests.has(normalizeInstruction(e.instruction)));
}
