// What the sft stage produces: the adapter (a file artifact whose metadata is the training
// manifest) and the loss curve. The DPO stage consumes `lora-adapter` to start from the SFT
// policy; if a second plugin needs these kinds, move them to plugins/shared/kinds.ts.
import { z } from "zod";
import { defineKind } from "../../core/plugin.ts";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex sha256");
const count = z.number().int().min(0);

/** One optimizer step of the loss curve. */
export const TrainStep = z.strictObject({
  step: count,
  epoch: count,
  /** Mean over the step's response tokens; null for a step that had none. */
  loss: z.number().nullable(),
  lossTokens: count,
  tokens: count,
  lr: z.number().min(0),
  /** Global gradient norm before clipping. */
  gradNorm: z.number().min(0),
});
export type TrainStep = z.output<typeof TrainStep>;
export const TrainStepKind = defineKind("train-step", TrainStep);

const Loss = z.strictObject({ loss: z.number(), tokens: count });

/** The training manifest (SPEC §6): everything that went into the adapter. Nothing of one
 *  attempt (run id, wall-clock seconds, the step a resume started from): the same config
 *  and seed give the same bytes; those facts are in the run manifest's provenance. */
export const TrainingManifest = z.strictObject({
  /** llama.cpp's GGUF LoRA format (general.type=adapter, adapter.type=lora). */
  format: z.literal("gguf-lora"),
  baseModel: z.strictObject({
    path: z.string().min(1),
    sha256: sha256Hex,
    architecture: z.string().min(1),
    /** As stored (training dequantizes): e.g. "f16", "q4_K". */
    weightType: z.string().min(1),
    parameters: count,
  }),
  lora: z.strictObject({
    rank: z.number().int().min(1),
    alpha: z.number().gt(0),
    dropout: z.number().min(0).lt(1),
    targets: z.array(z.string()).min(1),
    parameters: count,
  }),
  hyperparameters: z.strictObject({
    epochs: z.number().int().min(1),
    lr: z.number().gt(0),
    microBatch: z.number().int().min(1),
    gradAccum: z.number().int().min(1),
    effectiveBatch: z.number().int().min(1),
    schedule: z.enum(["cosine", "linear", "constant"]),
    warmupSteps: count,
    minLrRatio: z.number(),
    weightDecay: z.number(),
    maxGradNorm: z.number(),
    beta1: z.number(),
    beta2: z.number(),
    eps: z.number(),
    maxLength: z.number().int(),
    bucketWindow: z.number().int(),
    maxSteps: z.number().int().nullable(),
    seed: z.number().int(),
  }),
  data: z.strictObject({
    /** sft-example records read. */
    records: count,
    /** Records trained on (trainable, not held out). */
    examples: count,
    heldOut: count,
    /** Untrainable records left out, by reason (plugins/qc/trainable.ts). */
    skipped: z.record(z.string(), count),
    /** sha256 over the trained examples' ids and training texts, in order. */
    textSha256: sha256Hex,
    /** sha256 over the token ids, loss masks and boundaries the engine trained on. */
    tokensSha256: sha256Hex,
    tokens: count,
    lossTokens: count,
    truncated: count,
  }),
  qc: z.strictObject({ passed: z.boolean(), forced: z.boolean() }),
  training: z.strictObject({
    steps: count,
    totalSteps: count,
    /** Every real token processed, over all epochs (resumed parts included). */
    tokensSeen: count,
    lossTokensSeen: count,
    firstLoss: z.number().nullable(),
    finalLoss: z.number().nullable(),
    /** The engine's identity of the run (data + configuration). */
    fingerprint: z.string(),
  }),
  /** Response loss of the held-out examples before and after training (null without heldOut). */
  validation: z.strictObject({ before: Loss, after: Loss }).nullable(),
  device: z.strictObject({ backend: z.string(), device: z.string(), baseStorage: z.enum(["dense", "stored"]), cpu: z.string() }),
  engine: z.strictObject({ llamaCpp: z.string(), trainer: z.string() }),
});
export type TrainingManifest = z.output<typeof TrainingManifest>;
// `format: "file" as const` so the stage context types this slot as a FileArtifact
// (defineKind's return type widens the format to the union).
export const LoraAdapterKind = { ...defineKind("lora-adapter", TrainingManifest, "file"), format: "file" as const };
