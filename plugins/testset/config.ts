// Test-set options. The default seed is fixed (not the run's seed) so that
// every run evaluates on the same held-out set unless asked otherwise.
import { z } from "zod";
import { TEST_TYPES, TestType } from "../evaluator/checks/spec.ts";

export const TestsetConfig = z.strictObject({
  /** Seed of the draw; same seed and options give byte-identical records. */
  seed: z.number().int().default(1),
  /** Items per test type. */
  perType: z.number().int().min(1).default(40),
  /** Template-made types; default all five, or none when `ifeval` is given. */
  types: z.array(TestType).min(1).optional(),
  /**
   * An IFEval-format file (JSONL: key, prompt, instruction_id_list, kwargs; users bring it),
   * path relative to the config file: its prompts become instruction_following items, one
   * `ifeval` check per instruction, judged under `semantics` (specs/evaluation.md §8).
   */
  ifeval: z.strictObject({ path: z.string().min(1), semantics: z.enum(["ifeval", "selftune"]).default("ifeval") }).optional(),
  /**
   * JSONL files of training data to stay disjoint from: `instruction`,
   * `sft-example` or `test-instruction` records (e.g. a pilot's
   * responses/sft.jsonl). Paths relative to the config file.
   */
  exclude: z.array(z.string().min(1)).default([]),
  /** Near-duplicate threshold (Jaccard of character 5-grams). */
  nearDuplicateThreshold: z.number().gt(0).max(1).default(0.7),
  /** replace: a colliding candidate is replaced by the next one (recorded);
   *  error: as replace, but the stage's disjointness gate fails. */
  onCollision: z.enum(["replace", "error"]).default("replace"),
});
export type TestsetConfig = z.output<typeof TestsetConfig>;

/** The template types drawn: as configured, else all five unless an IFEval file replaces them. */
export function templateTypes(c: Pick<TestsetConfig, "types" | "ifeval">): TestType[] {
  return c.types ?? (c.ifeval ? [] : [...TEST_TYPES]);
}
