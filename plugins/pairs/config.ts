// The pairs stage's configuration (SPEC §7). Strict: an unknown key is an error.
import { z } from "zod";
import { NegativeKind } from "../shared/kinds.ts";
import { SCORER_CHOICES } from "../shared/scorer.ts";
import { PairsQcConfig } from "./qc.ts";

const Sampling = z.strictObject({
  temperature: z.number().min(0),
  topP: z.number().gt(0).max(1),
  /** 0 = off. */
  topK: z.number().int().min(0),
  /** 1 = off. */
  repetitionPenalty: z.number().gt(0),
  maxTokens: z.number().int().min(1),
});

/** SPEC §7's default mix of negative kinds. */
export const DEFAULT_MIX = { refusal: 0.3, "format-violation": 0.25, incorrect: 0.2, "off-topic": 0.15, verbose: 0.1 } as const;

const Mix = z
  .strictObject({
    refusal: z.number().min(0).default(DEFAULT_MIX.refusal),
    "format-violation": z.number().min(0).default(DEFAULT_MIX["format-violation"]),
    incorrect: z.number().min(0).default(DEFAULT_MIX.incorrect),
    "off-topic": z.number().min(0).default(DEFAULT_MIX["off-topic"]),
    verbose: z.number().min(0).default(DEFAULT_MIX.verbose),
  })
  .refine((m) => Object.values(m).some((w) => w > 0), { message: "at least one negative kind needs a positive weight" });

export const BestOfNConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** Responses sampled from the SFT model per instruction. */
  n: z.number().int().min(2).default(4),
  /** A pair is kept only when best margin − worst margin exceeds this (pair-critic log-odds; 0: the critic merely prefers the chosen). */
  minMarginGap: z.number().min(0).default(1.0),
  /** Few-shot examples in the response prompt; 0: the bare `Instruction:/Response:` the SFT model was trained on. */
  k: z.number().int().min(0).max(25).default(0),
  /** Instructions to use at most (per run, split across shards). */
  limit: z.number().int().min(1).optional(),
  /** Sampling of the N responses: diverse enough that best and worst differ. */
  sampling: Sampling.default({ temperature: 0.9, topP: 0.95, topK: 0, repetitionPenalty: 1.1, maxTokens: 80 }),
});

export const SyntheticConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** Weights of the five negative kinds (normalised; SPEC §7 default 30/25/20/15/10). */
  mix: Mix.default(Mix.parse({})),
  /** Chosen responses (trainable sft-examples) to pair at most (per run, split across shards). */
  limit: z.number().int().min(1).optional(),
  /** Seeds which example gets which kind; independent of the stage seed so every shard agrees on the split. */
  mixSeed: z.number().int().default(0),
  /** Ask the base model for refusal and incorrect negatives (off: the deterministic fallbacks only). */
  useModel: z.boolean().default(true),
  /** Sampling of model-made negatives. */
  sampling: Sampling.default({ temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1.1, maxTokens: 60 }),
  /** Judge chosen and rejected with the pair critic (margins recorded; off: margins null). */
  judge: z.boolean().default(true),
  /** A verbose negative must have at least this many times the chosen's tokens. */
  verboseRatio: z.number().min(1).default(2),
  /** Off-topic: most content-word overlap (Jaccard) allowed between the negative and the instruction. */
  offTopicMaxOverlap: z.number().min(0).max(1).default(0.2),
  /** Other examples considered per off-topic negative (the least related is taken). */
  offTopicCandidates: z.number().int().min(1).default(16),
});

export const PairsConfig = z
  .strictObject({
    bestOfN: BestOfNConfig.default(BestOfNConfig.parse({})),
    synthetic: SyntheticConfig.default(SyntheticConfig.parse({})),
    /** Work items (instructions or chosen examples) per batch; each batch is a commit point. */
    batch: z.number().int().min(1).default(16),
    /** The critic's forward: auto = the training engine when its CUDA backend is usable, else llama.cpp. */
    scorer: z.enum(SCORER_CHOICES).optional(),
    /** The QC gate over the whole set (qc.ts; with shards, over the merged whole). The stage's `gate: stop|report` says whether a failure stops the run; dpo refuses failed pairs unless forced. */
    qc: PairsQcConfig.default(PairsQcConfig.parse({})),
  })
  .refine((c) => c.bestOfN.enabled || c.synthetic.enabled, { message: "enable bestOfN or synthetic (or both)" });
export type PairsConfig = z.output<typeof PairsConfig>;
export type NegativeKindName = z.output<typeof NegativeKind>;
