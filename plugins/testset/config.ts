// Test-set options. The default seed is fixed (not the run's seed) so that
// every run evaluates on the same held-out set unless asked otherwise.
import { z } from "zod";
import { TEST_TYPES, TestType } from "../evaluator/checks/spec.ts";

export const TestsetConfig = z.strictObject({
  /** Seed of the draw; same seed and options give byte-identical records. */
  seed: z.number().int().default(1),
  /** Items per test type. */
  perType: z.number().int().min(1).default(40),
  types: z.array(TestType).min(1).default([...TEST_TYPES]),
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
