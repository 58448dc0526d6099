// The loader's configuration. Exactly one of `model` (a GGUF path) and `synthesize`
// (a random-weight model of a real architecture and vocabulary, for smoke runs and tests).
import { z } from "zod";

const mode = z.enum(["fail", "warn", "off"]);

export const SynthesizeConfig = z.strictObject({
  arch: z.enum(["qwen2", "llama"]).default("qwen2"),
  preset: z.enum(["tiny", "0.5b", "1.5b", "7b"]).default("tiny"),
  type: z.enum(["f32", "f16", "bf16"]).default("f16"),
  seed: z.number().int().min(0).default(0),
});

export const LoaderConfig = z
  .strictObject({
    /** A GGUF base model; relative paths are resolved against the current directory. */
    model: z.string().min(1).optional(),
    /** Synthesize a model on the spot (cached in .cache/models/) instead of `model`. */
    synthesize: SynthesizeConfig.optional(),
    /** Layers offloaded to the GPU: -1 all (default), 0 none. Ignored by CPU builds. */
    gpuLayers: z.number().int().min(-1).default(-1),
    /** Default: physical cores. */
    threads: z.number().int().min(1).optional(),
    /** KV cells of the default context, shared by its parallel sequences. */
    contextSize: z.number().int().min(64).default(8192),
    /** Parallel sequences of the default context (scoring and generation batches). */
    parallel: z.number().int().min(1).default(16),
    batchSize: z.number().int().min(1).optional(),
    ubatchSize: z.number().int().min(1).optional(),
    kvType: z.enum(["f16", "f32", "bf16", "q8_0"]).optional(),
    flashAttention: z.enum(["auto", "on", "off"]).optional(),
    /**
     * false: one KV cache per sequence (contextSize / (parallel + 1) cells each), no shared
     * prefixes; with kvType f32 and flashAttention off, specs/inference.md's exact path, on
     * which the stages keep one work context across batches. Default: one unified cache.
     */
    kvUnified: z.boolean().optional(),
    mmap: z.boolean().default(true),
    /** Special tokens (ids or their text) a prompt may contain anyway. Empty by default. */
    allowSpecialTokens: z.array(z.union([z.number().int().min(0), z.string().min(1)])).default([]),
    /** Sentinel probes: fail (stops the load) | warn | off. */
    sentinels: z
      .strictObject({
        tokenizer: z.enum(["fail", "warn"]).default("fail"),
        criticChoices: mode.default("fail"),
        chatMarkup: mode.default("fail"),
        persona: mode.default("warn"),
        /** Tokens each greedy probe completion may generate. */
        maxTokens: z.number().int().min(1).max(512).default(32),
      })
      .default({ tokenizer: "fail", criticChoices: "fail", chatMarkup: "fail", persona: "warn", maxTokens: 32 }),
  })
  .refine((c) => (c.model === undefined) !== (c.synthesize === undefined), { message: "give exactly one of `model` (a GGUF path) and `synthesize`" });
export type LoaderConfig = z.output<typeof LoaderConfig>;
