// The dpo stage's config: sft's training options (the same engine, plan and optimizer) with
// DPO's defaults and its own fields. Validated with the rest of the run config; unknown keys
// are errors.
import { z } from "zod";
import { SftConfig } from "../sft/config.ts";

export const DpoConfig = SftConfig.extend({
  /**
   * The starting policy, which is also DPO's frozen reference (SPEC §7). "sft": the adapter of
   * the run's sft stage (the `adapter` input), trained further; its rank, alpha and targets
   * are kept and `lora` is ignored. "base": a fresh LoRA (`lora`) on the bare base model, the
   * DPO-only baseline; the `adapter` input is not read.
   */
  from: z.enum(["sft", "base"]).default("sft"),
  /** DPO's inverse temperature: how far the policy may move from the reference. */
  beta: z.number().gt(0).default(0.1),
  /** "sigmoid": DPO's loss; "ipo": IPO's squared loss on per-token mean log-probs. */
  loss: z.enum(["sigmoid", "ipo"]).default("sigmoid"),
  epochs: z.number().int().min(1).default(1),
  lr: z.number().gt(0).default(5e-5),
  /** Pairs per micro-batch (each pair is two sequences, chosen and rejected, side by side). Effective batch = microBatch x gradAccum pairs. */
  microBatch: z.number().int().min(1).default(2),
  gradAccum: z.number().int().min(1).default(4),
  warmupRatio: z.number().min(0).max(1).default(0.1),
  /** Sequences per forward when computing the reference's sums (they do not depend on it on the CPU). */
  referenceMicroBatch: z.number().int().min(1).default(8),
  /** Pairs held out (seeded choice) to report their chosen-minus-rejected log-prob margin before and after training. */
  heldOut: z.number().int().min(0).default(0),
  /**
   * Train even though the pairs' QC did not pass (a failed gate of the stage that produced
   * them, reported with `gate: report`). Recorded in the manifest, the adapter and provenance.
   */
  force: z.boolean().default(false),
});
export type DpoConfig = z.output<typeof DpoConfig>;
