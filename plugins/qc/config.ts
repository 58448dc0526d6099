// QC thresholds (SPEC §5; pilot defaults). Every gate is configurable; `null`
// disables a gate: its metric is still computed and reported, it never fails.
// The comparisons are fixed: rates and the median must be strictly below their
// maximum, leakage at most its maximum, acceptance at least its minimum.
import { z } from "zod";

const rate = z.number().min(0).max(1);

export const QcConfig = z.strictObject({
  /** Runaway rate (no delimiter before max tokens) must be < this. */
  maxRunawayRate: rate.nullable().default(0.05),
  /** Token-limit hits (generation reached max tokens) must be < this. */
  maxTokenLimitRate: rate.nullable().default(0.1),
  /** Records with a delimiter left in the cleaned response must be <= this. */
  maxLeakage: z.number().int().min(0).nullable().default(0),
  /** Records with chat-template markup in the response must be <= this; off by
   *  default (not a SPEC §5 gate), but such records are never trainable. */
  maxChatMarkup: z.number().int().min(0).nullable().default(null),
  /** The median of responseTokens must be < this. */
  maxMedianResponseTokens: z.number().min(0).nullable().default(40),
  /** Pair-critic acceptance (accepted / judged) must be >= this. */
  minCriticAcceptance: rate.nullable().default(0.5),
  /** Instruction duplicate rate (exact + near) must be <= this; off by default. */
  maxDuplicateRate: rate.nullable().default(null),
  /** At least this many records (QC over nothing proves nothing). */
  minRecords: z.number().int().min(0).default(1),
  /** Width of the response-length histogram bins, in tokens. */
  histogramBinWidth: z.number().int().min(1).default(10),
  /** Lower edge of the last, open-ended histogram bin. */
  histogramMax: z.number().int().min(1).default(80),
  /** Jaccard threshold for near-duplicate instructions (plugins/prompts/dedupe.ts). */
  nearDuplicateThreshold: z.number().gt(0).max(1).default(0.7),
});
export type QcConfig = z.output<typeof QcConfig>;

/** The config with every default applied. */
export function qcDefaults(): QcConfig {
  return QcConfig.parse({});
}
