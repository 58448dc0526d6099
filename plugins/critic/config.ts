// The critic stage's configuration.
import { z } from "zod";
import { SCORER_CHOICES } from "../shared/scorer.ts";

export const CriticStageConfig = z.strictObject({
  /** Accept when logp(" A") − logp(" B") ≥ threshold (SPEC §4 default 1.0). */
  threshold: z.number().default(1.0),
  /** Drop rejected records (and those without a verdict) instead of keeping them with their verdict. */
  drop: z.boolean().default(false),
  /** Records per batch (a commit point). */
  batch: z.number().int().min(1).default(64),
  /** The forward that scores: auto = the training engine when its CUDA backend is usable, else llama.cpp (specs/training.md §14). Unset = auto: no default, so configs written before the option keep their stage hashes. */
  scorer: z.enum(SCORER_CHOICES).optional(),
});
export type CriticStageConfig = z.output<typeof CriticStageConfig>;
