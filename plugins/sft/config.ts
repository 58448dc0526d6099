// The sft stage's config (SPEC §6 defaults). Validated with the rest of the run config
// before anything runs; unknown keys are errors.
import { z } from "zod";
import { LORA_TARGETS } from "../../native/train.ts";

export const LoraConfig = z.strictObject({
  rank: z.number().int().min(1).max(4096).default(16),
  alpha: z.number().gt(0).default(32),
  /** On the LoRA input during training (PEFT's placement). */
  dropout: z.number().min(0).lt(1).default(0.05),
  targets: z.array(z.enum(LORA_TARGETS)).min(1).default([...LORA_TARGETS]),
});

export const SftConfig = z.strictObject({
  /**
   * Base model GGUF (llama or qwen2; f32/f16/bf16 or quantized), relative to the config file.
   * Omitted: the model the run's loader stage loaded (its model-info record).
   */
  model: z.string().min(1).optional(),
  lora: LoraConfig.default(LoraConfig.parse({})),
  epochs: z.number().int().min(1).default(3),
  lr: z.number().gt(0).default(2e-4),
  /** Effective batch = microBatch x gradAccum (default 8). */
  microBatch: z.number().int().min(1).default(4),
  gradAccum: z.number().int().min(1).default(2),
  schedule: z.enum(["cosine", "linear", "constant"]).default("cosine"),
  /** Warm-up steps = ceil(warmupRatio x total steps), unless warmupSteps is given. */
  warmupRatio: z.number().min(0).max(1).default(0.03),
  warmupSteps: z.number().int().min(0).optional(),
  /** The decay's floor as a fraction of lr. */
  minLrRatio: z.number().min(0).max(1).default(0),
  weightDecay: z.number().min(0).default(0),
  /** Gradient clipping by global norm; 0 turns it off. */
  maxGradNorm: z.number().min(0).default(1),
  beta1: z.number().gt(0).lt(1).default(0.9),
  beta2: z.number().gt(0).lt(1).default(0.999),
  eps: z.number().gt(0).default(1e-8),
  /** Longer training texts are cut to this many tokens (counted in the manifest). */
  maxLength: z.number().int().min(2).default(1024),
  /** Steps per length-bucketing window (1: no bucketing across steps). */
  bucketWindow: z.number().int().min(1).default(8),
  /** Cap on optimizer steps (smoke runs); the schedule spans the cap. */
  maxSteps: z.number().int().min(1).optional(),
  /** Fixes LoRA init, dropout and data order. Default: the stage's derived seed. */
  seed: z.number().int().min(0).optional(),
  /**
   * The training backend: "cuda" (the GPU kernels; needs an addon built with
   * `bun run build:native:cuda` and a GPU), "cpu" (the reference engine) or "auto" (cuda
   * when both are there, else cpu). Recorded in the manifest and provenance.
   */
  backend: z.enum(["auto", "cpu", "cuda"]).default("auto"),
  /** How the CUDA backend holds the frozen base: "dense" (bf16) or "stored" (quantized blocks as in the GGUF, the QLoRA analogue). */
  baseStorage: z.enum(["dense", "stored"]).default("dense"),
  /** Keep only each layer's input and recompute the rest in backward: less memory, more compute. */
  checkpointActivations: z.boolean().default(false),
  /** CPU threads (cpu backend). Default: physical cores. */
  threads: z.number().int().min(1).optional(),
  /** Steps between checkpoints (an interrupted stage resumes from the last one). */
  checkpointEvery: z.number().int().min(1).default(50),
  /** Examples held out (seeded choice) to report response loss before and after training. */
  heldOut: z.number().int().min(0).default(0),
  /** Train even though the dataset's QC did not pass. Recorded in the manifest and provenance. */
  force: z.boolean().default(false),
});
export type SftConfig = z.output<typeof SftConfig>;
