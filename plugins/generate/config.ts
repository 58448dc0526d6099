// Configuration of the generating stages (`instructions`, `responses`).
//
// Keys fall in two groups:
//   - run keys (how much, in what batches): count, batch, maxCalls, limit, ...;
//   - *validated parameters* (what the data looks like): sampling, few-shot k,
//     cleaning and critic settings. A pilot run uses them (defaults: SPEC §5); a
//     scale run takes them from the passed pilot's manifest and refuses keys that
//     would differ. They have no zod defaults so a scale config can be checked for
//     keys that were set; `effective*Params` applies the defaults.
import { z } from "zod";
import { SCORER_CHOICES } from "../shared/scorer.ts";

const SamplingInput = z.strictObject({
  temperature: z.number().min(0).optional(),
  topP: z.number().gt(0).max(1).optional(),
  /** 0 = off. */
  topK: z.number().int().min(0).optional(),
  /** 1 = off. */
  repetitionPenalty: z.number().gt(0).optional(),
  maxTokens: z.number().int().min(1).optional(),
});

const CriticInput = z.strictObject({
  /** Judge with the single-token A/B critic (SPEC §4). */
  enabled: z.boolean().optional(),
  /** Accept when logp(" A") − logp(" B") ≥ threshold. */
  threshold: z.number().optional(),
});

const Mode = z.enum(["pilot", "scale"]);

const common = {
  /** pilot: parameters from this config (SPEC §5 defaults). scale: from `pilot`, which must have passed QC. */
  mode: Mode.default("pilot"),
  /** The pilot's run directory (scale mode), relative to the current directory. */
  pilot: z.string().min(1).optional(),
  /** Scale mode: accept a pilot made with a different model file (off: an error). */
  allowModelChange: z.boolean().default(false),
  /** The critic's forward: auto = the training engine when its CUDA backend is usable, else llama.cpp (specs/training.md §14). Unset = auto: no default, so configs written before the option keep their stage hashes. */
  scorer: z.enum(SCORER_CHOICES).optional(),
};

// ---------------------------------------------------------------- instructions

export const InstructionsConfig = z
  .strictObject({
    ...common,
    /** Instructions to produce (split across shards): accepted by the critic, or all when it is off. */
    count: z.number().int().min(1).default(150),
    /** List prompts per generation call (a commit point). */
    batch: z.number().int().min(1).default(16),
    /** Most list continuations to try (per shard); default 8 per instruction wanted, at least 64. */
    maxCalls: z.number().int().min(1).optional(),
    /** When generation falls short after maxCalls, top up with seed tasks from the pool (origin "pool"). */
    poolFill: z.boolean().default(false),
    // validated parameters
    /** Seed tasks shown in each list prompt. */
    k: z.number().int().min(1).max(40).optional(),
    sampling: SamplingInput.optional(),
    /** Candidates with fewer words are rejected. */
    minWords: z.number().int().min(1).optional(),
    /** Candidates with more characters are rejected. */
    maxChars: z.number().int().min(10).optional(),
    /** Jaccard threshold of near-duplicates (specs/prompts.md §5). */
    nearDuplicateThreshold: z.number().gt(0).max(1).optional(),
    critic: CriticInput.optional(),
  })
  .refine((c) => c.mode !== "scale" || c.pilot !== undefined, { message: "scale mode needs `pilot:` (the passed pilot's run directory)", path: ["pilot"] });
export type InstructionsConfig = z.output<typeof InstructionsConfig>;

export const InstructionParams = z.strictObject({
  k: z.number().int().min(1),
  sampling: z.strictObject({ temperature: z.number(), topP: z.number(), topK: z.number().int(), repetitionPenalty: z.number(), maxTokens: z.number().int() }),
  minWords: z.number().int(),
  maxChars: z.number().int(),
  nearDuplicateThreshold: z.number(),
  critic: z.strictObject({ enabled: z.boolean(), threshold: z.number() }),
});
export type InstructionParams = z.output<typeof InstructionParams>;

/** SPEC §5 pilot defaults for instruction generation. */
export const INSTRUCTION_DEFAULTS: InstructionParams = {
  k: 8,
  sampling: { temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1.1, maxTokens: 256 },
  minWords: 3,
  maxChars: 300,
  nearDuplicateThreshold: 0.7,
  critic: { enabled: true, threshold: 1.0 },
};

// ---------------------------------------------------------------- responses

export const ResponsesConfig = z
  .strictObject({
    ...common,
    /** Requests per generation call (a commit point). */
    batch: z.number().int().min(1).default(32),
    /** Answer at most this many instructions (after filtering; per run, split across shards). */
    limit: z.number().int().min(1).optional(),
    /** Responses per instruction. */
    samples: z.number().int().min(1).default(1),
    /** Also answer instructions the instruction critic rejected. */
    useRejected: z.boolean().default(false),
    /** Skip instructions that duplicate an earlier one in the input (e.g. across shards). */
    dedupe: z.boolean().default(true),
    // validated parameters
    /** Few-shot examples per prompt (SPEC §3; pilot default 3). */
    k: z.number().int().min(0).max(25).optional(),
    /** Distinct few-shot headers (prompts of one header share its KV cache). */
    variants: z.number().int().min(1).optional(),
    /** Blank lines that end a response. */
    blankLines: z.number().int().min(1).optional(),
    sampling: SamplingInput.optional(),
    critic: CriticInput.optional(),
  })
  .refine((c) => c.mode !== "scale" || c.pilot !== undefined, { message: "scale mode needs `pilot:` (the passed pilot's run directory)", path: ["pilot"] });
export type ResponsesConfig = z.output<typeof ResponsesConfig>;

export const ResponseParams = z.strictObject({
  k: z.number().int().min(0),
  variants: z.number().int().min(1),
  blankLines: z.number().int().min(1),
  sampling: InstructionParams.shape.sampling,
  critic: InstructionParams.shape.critic,
});
export type ResponseParams = z.output<typeof ResponseParams>;

/** SPEC §5 pilot defaults for response generation. */
export const RESPONSE_DEFAULTS: ResponseParams = {
  k: 3,
  variants: 8,
  blankLines: 1,
  sampling: { temperature: 0.3, topP: 0.85, topK: 0, repetitionPenalty: 1.15, maxTokens: 80 },
  critic: { enabled: true, threshold: 1.0 },
};

// ---------------------------------------------------------------- effective parameters

type Params = Record<string, unknown>;

/** Defaults overlaid with what the config set (one level deep for nested groups). */
export function overlay<P extends Params>(defaults: P, set: Params): P {
  const out: Params = { ...defaults };
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined) continue;
    const d = defaults[k];
    out[k] = d && typeof d === "object" && v && typeof v === "object" ? { ...(d as Params), ...Object.fromEntries(Object.entries(v as Params).filter(([, x]) => x !== undefined)) } : v;
  }
  return out as P;
}

/** Keys the config sets whose value differs from `validated` (dotted paths). */
export function conflicts(set: Params, validated: Params, prefix = ""): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined) continue;
    const w = validated[k];
    if (v && typeof v === "object" && w && typeof w === "object") out.push(...conflicts(v as Params, w as Params, `${prefix}${k}.`));
    else if (v !== w) out.push(`${prefix}${k} (config ${JSON.stringify(v)}, pilot ${JSON.stringify(w)})`);
  }
  return out;
}

export function pickParams(config: Params, keys: readonly string[]): Params {
  return Object.fromEntries(keys.map((k) => [k, config[k]]));
}

export const INSTRUCTION_PARAM_KEYS = ["k", "sampling", "minWords", "maxChars", "nearDuplicateThreshold", "critic"] as const;
export const RESPONSE_PARAM_KEYS = ["k", "variants", "blankLines", "sampling", "critic"] as const;
