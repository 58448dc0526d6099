// The evaluator stage (SPEC §8): every variant answers the same held-out test
// instructions greedily, one variant loaded at a time; responses are scored by
// the checks, compared pairwise, written with provenance, and gated.
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { sha256File } from "../../core/artifacts.ts";
import { definePlugin } from "../../core/plugin.ts";
import { cleanResponse, responseStopStrings } from "../prompts/clean.ts";
import { buildResponsePrompt, PROMPT_FORMAT_VERSION } from "../prompts/prompts.ts";
import { TestInstructionKind } from "../shared/kinds.ts";
import { FileHashes, identifyVariant } from "./cache.ts";
import { validateInstructions, type PromptFormat } from "./evaluate.ts";
import { resolveGenerator, Variant, type DecodeOptions } from "./generator.ts";
import { EvaluationRateKind } from "./outputs.ts";
import { runEvaluation } from "./stage.ts";
import { DEFAULT_ALPHA, EXACT_THRESHOLD } from "./stats.ts";

const pair = z.tuple([z.string(), z.string()]);

/** How responses are prompted, decoded and compared: the same for every evaluating stage. */
export const EvaluationFields = {
    maxTokens: z.number().int().min(1).default(256),
    /** Prompts per generate() call. */
    batchSize: z.number().int().min(1).default(16),
    /** Few-shot examples before each test instruction (the same for every variant and item). */
    fewShot: z.number().int().min(0).default(0),
    fewShotSeed: z.number().int().default(0),
    /** A run of this many blank lines ends a response. 2, not the generation default 1,
     *  so that paragraph checks can see paragraphs. */
    cleanBlankLines: z.number().int().min(1).default(2),
    metric: z.enum(["strict", "loose"]).default("strict"),
    /** Level for the `significant` flags in results and report. */
    alpha: z.number().gt(0).lt(1).default(DEFAULT_ALPHA),
    confidence: z.number().gt(0).lt(1).default(0.95),
    /** McNemar uses the exact binomial test below this many discordant pairs. */
    exactThreshold: z.number().int().min(0).default(EXACT_THRESHOLD),
};

export const EvaluatorConfig = z
  .strictObject({
    /** Evaluated in this order; the first is usually the base model. */
    variants: z.array(Variant).min(1),
    /** `native` (the addon) or a module path exporting createGenerator(options). */
    generator: z.string().default("native"),
    generatorOptions: z.record(z.string(), z.unknown()).default({}),
    ...EvaluationFields,
    /** [candidate, baseline] pairs; default: every variant against every earlier one. */
    pairs: z.array(pair).optional(),
    gate: z
      .strictObject({
        alpha: z.number().gt(0).lt(1).default(DEFAULT_ALPHA),
        compare: pair,
        scope: z.enum(["overall", "per_type"]).default("overall"),
      })
      .optional(),
    /** Response cache; default <runDir>/.cache/evaluator. Relative to the config file. */
    cacheDir: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    const names = c.variants.map((v) => v.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: "custom", path: ["variants", i, "name"], message: `duplicate variant name '${n}'` });
    });
    const check = (p: [string, string], path: (string | number)[]) =>
      p.forEach((n, k) => {
        if (!names.includes(n)) ctx.addIssue({ code: "custom", path: [...path, k], message: `'${n}' is not a variant (${names.join(", ")})` });
      });
    c.pairs?.forEach((p, i) => check(p, ["pairs", i]));
    if (c.gate) check(c.gate.compare, ["gate", "compare"]);
  });
export type EvaluatorConfig = z.output<typeof EvaluatorConfig>;

export function promptFormat(c: Pick<EvaluatorConfig, "fewShot" | "fewShotSeed" | "cleanBlankLines">): PromptFormat {
  return {
    // One key for every item: all prompts share the few-shot header (and its KV cache).
    prompt: (instruction) => buildResponsePrompt(instruction, { seed: c.fewShotSeed, key: "evaluation", k: c.fewShot }).prompt,
    clean: (raw, hitMaxTokens) => {
      const r = cleanResponse(raw, { hitMaxTokens, blankLines: c.cleanBlankLines });
      return { text: r.response, stopReason: r.stopReason };
    },
    identity: { format: "response", version: PROMPT_FORMAT_VERSION, fewShot: c.fewShot, fewShotSeed: c.fewShotSeed, cleanBlankLines: c.cleanBlankLines },
  };
}

export default definePlugin({
  name: "evaluator",
  version: "0.1.0",
  description: "paired evaluation of model variants on held-out test instructions (checks, McNemar, report)",
  config: EvaluatorConfig,
  consumes: { tests: TestInstructionKind },
  produces: { rates: EvaluationRateKind },
  async run(ctx) {
    const c = ctx.config;
    const baseDir = dirname(resolve(ctx.run.configPath));
    const variants = c.variants.map((v) => ({ ...v, model: resolve(baseDir, v.model), adapters: v.adapters.map((a) => ({ ...a, path: resolve(baseDir, a.path) })) }));
    const cacheDir = c.cacheDir ? resolve(baseDir, c.cacheDir) : join(ctx.run.dir, ".cache", "evaluator");

    const tests = await ctx.inputs.tests.all();
    validateInstructions(tests);
    const format = promptFormat(c);
    const decode: DecodeOptions = { maxTokens: c.maxTokens, stop: responseStopStrings(c.cleanBlankLines) };
    const hashes = new FileHashes(cacheDir);
    const identities = [];
    for (const v of variants) identities.push(await identifyVariant(v, decode, format.identity, hashes));
    const testSetSha256 = await sha256File(ctx.inputs.tests.path);
    Object.assign(ctx.provenance.extra, { variants: identities, decode: { greedy: true, ...decode }, prompt: format.identity, testSet: { sha256: testSetSha256, items: tests.length } });

    const generator = await resolveGenerator(c.generator, c.generatorOptions, baseDir);
    const done = await runEvaluation(ctx, { variants, identities, tests, generator, format, decode, batchSize: c.batchSize, cacheDir, testSetSha256, options: analysisOptions(c) });
    if (!done) return; // interrupted: finished batches are in the cache
    const g = done.results.analysis.gate;
    if (g) ctx.gate({ name: g.name, passed: g.passed, summary: g.summary, details: { candidate: g.candidate, baseline: g.baseline, alpha: g.alpha, scope: g.scope } });
    ctx.log.info(done.summary);
  },
});

export function analysisOptions(c: Pick<EvaluatorConfig, "metric" | "alpha" | "confidence" | "exactThreshold" | "pairs" | "gate">) {
  return { metric: c.metric, alpha: c.alpha, confidence: c.confidence, exactThreshold: c.exactThreshold, pairs: c.pairs, gate: c.gate ?? null };
}
