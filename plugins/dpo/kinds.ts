// What the dpo stage produces: the adapter (a file artifact whose metadata is the DPO training
// manifest) and the metrics curve. The adapter file is the same GGUF LoRA format as sft's; its
// kind is its own so that a stage wanting "the SFT adapter" is never wired to a DPO one.
import { z } from "zod";
import { defineKind } from "../../core/plugin.ts";
import { TrainingManifest, TrainStep } from "../sft/kinds.ts";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex sha256");
const count = z.number().int().min(0);
const sft = TrainingManifest.shape;

/** One optimizer step: the DPO loss (mean over the step's pairs) and TRL's reward metrics. */
export const DpoStep = TrainStep.extend({
  /** beta x (policy - reference) log-prob of the chosen responses, mean over the step's pairs (IPO: per-token means). */
  "rewards/chosen": z.number(),
  "rewards/rejected": z.number(),
  /** chosen - rejected. */
  "rewards/margins": z.number(),
  /** Fraction of the step's pairs whose margin is > 0. */
  "rewards/accuracies": z.number().min(0).max(1),
});
export type DpoStep = z.output<typeof DpoStep>;
export const DpoStepKind = defineKind("dpo-step", DpoStep);

/** Mean summed response log-prob margin (chosen - rejected) of the held-out pairs, and how many favour chosen. */
const Margin = z.strictObject({ meanMargin: z.number(), favoured: count, pairs: count });

/** The DPO training manifest: everything that went into the adapter, nothing of one attempt
 *  (run id, wall-clock time, whether a resume happened: those are in the run manifest). */
export const DpoManifest = z.strictObject({
  format: z.literal("gguf-lora"),
  objective: z.literal("dpo"),
  /** sft: trained on from the run's SFT adapter; base: the DPO-only baseline (a fresh LoRA). */
  from: z.enum(["sft", "base"]),
  baseModel: sft.baseModel,
  /** The SFT adapter DPO started from (null for the baseline): its bytes and what trained it. */
  startAdapter: z.strictObject({ sha256: sha256Hex, dataSha256: sha256Hex, qcForced: z.boolean() }).nullable(),
  lora: sft.lora,
  hyperparameters: sft.hyperparameters.extend({ beta: z.number().gt(0), loss: z.enum(["sigmoid", "ipo"]) }),
  data: z.strictObject({
    /** preference-pair records read. */
    records: count,
    /** Pairs trained on (not held out). */
    pairs: count,
    heldOut: count,
    /** sha256 over the trained pairs' ids and both training texts, in order. */
    textSha256: sha256Hex,
    /** sha256 over the token ids, loss masks and boundaries the engine trained on (chosen 2i, rejected 2i+1). */
    tokensSha256: sha256Hex,
    tokens: count,
    lossTokens: count,
    /** Mean response tokens of chosen minus rejected (DPO is known to reward length). */
    meanLengthDifference: z.number(),
    truncated: count,
    bySource: z.record(z.string(), count),
  }),
  /** The frozen reference: the starting policy's summed response log-probs, by the engine's own forward. */
  reference: z.strictObject({
    /** true: with the SFT adapter; false: the bare base. */
    useLora: z.boolean(),
    /** sha256 of what the sums depend on (pairs' tokens, base, starting adapter, useLora, maxLength, backend); the cache's key. */
    fingerprint: sha256Hex,
    /** The cache file in the stage folder (MessagePack). */
    cache: z.string().min(1),
    /** sha256 of the sums' bytes (little-endian float64). */
    sumsSha256: sha256Hex,
  }),
  /** The pairs' QC: the gates of the stage that produced them. */
  qc: z.strictObject({ stage: z.string().nullable(), passed: z.boolean(), failedGates: z.array(z.string()), forced: z.boolean() }),
  training: z.strictObject({
    steps: count,
    totalSteps: count,
    tokensSeen: count,
    lossTokensSeen: count,
    firstLoss: z.number().nullable(),
    finalLoss: z.number().nullable(),
    /** The last step's reward metrics. */
    final: z.strictObject({ "rewards/chosen": z.number(), "rewards/rejected": z.number(), "rewards/margins": z.number(), "rewards/accuracies": z.number() }).nullable(),
    fingerprint: z.string(),
  }),
  /** Held-out pairs under the starting policy and after training (null without heldOut). */
  validation: z.strictObject({ before: Margin, after: Margin }).nullable(),
  device: sft.device,
  engine: sft.engine,
});
export type DpoManifest = z.output<typeof DpoManifest>;
export const DpoAdapterKind = { ...defineKind("dpo-adapter", DpoManifest, "file"), format: "file" as const };
