// The evaluator stage (SPEC §8): every variant answers the same held-out test
// instructions greedily, one variant loaded at a time; responses are scored by
// the checks, compared pairwise, written with provenance, and gated. The variants are the
// run's own — base (the loader's model-info) and SFT / DPO / DPO-only for each adapter
// wired as an input (optional inputs: specs/pipeline.md) — and/or models named by path.
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { sha256File } from "../../core/artifacts.ts";
import { definePlugin, optional, type StageContext } from "../../core/plugin.ts";
import { cleanResponse, responseStopStrings } from "../prompts/clean.ts";
import { buildResponsePrompt, PROMPT_FORMAT_VERSION } from "../prompts/prompts.ts";
import { RESPONSE_POOL } from "../prompts/pool.ts";
import { loadOptionsNextTo, readModelInfo } from "../loader/open.ts";
import { ModelInfoKind, TestInstructionKind } from "../shared/kinds.ts";
import { DpoAdapterKind } from "../dpo/kinds.ts";
import { LoraAdapterKind } from "../sft/kinds.ts";
import type { AnalysisOptions } from "./analysis.ts";
import { FileHashes, identifyVariant } from "./cache.ts";
import { validateInstructions, type PromptFormat } from "./evaluate.ts";
import { readIfevalTests } from "./ifeval/tests.ts";
import { resolveGenerator, Variant, type DecodeOptions, type LoadableVariant } from "./generator.ts";
import { EvaluationRateKind } from "./outputs.ts";
import { FEW_SHOT_BASELINE_DEFAULT, FEW_SHOT_VARIANT, FewShotBaselineConfig, fewShotPool } from "./fewshot.ts";
import type { FewShotExample } from "../prompts/pool.ts";
import { SELF_JUDGE_DEFAULT, SelfJudgeConfig } from "./self-judge.ts";
import { judgeResponses } from "./self-judge-run.ts";
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

/** The run's own variants: `base` (the `model` input) and one per wired adapter input. */
export const RUN_ADAPTERS = ["sft", "dpo", "dpo-only"] as const;
/** `base+few-shot` (the in-context baseline, fewshot.ts) comes with `base` unless turned off. */
export const RUN_VARIANTS = ["base", FEW_SHOT_VARIANT, ...RUN_ADAPTERS] as const;
/** The comparisons of interest among them ([candidate, baseline]), each where both are evaluated:
 *  training against the bare model, against a good prompt of it, and DPO's own steps. */
export const RUN_COMPARISONS: [string, string][] = [["sft", "base"], ["sft", FEW_SHOT_VARIANT], ["dpo", "sft"], ["dpo", FEW_SHOT_VARIANT], ["dpo", "dpo-only"]];

export const EvaluatorConfig = z
  .strictObject({
    /**
     * Variants by path (models from outside the run), evaluated after the run's own. Omitted:
     * the run's own only, and the `model` input is wired from the nearest loader.
     */
    variants: z.array(Variant).min(1).optional(),
    /** `native` (the addon, through the run's model service) or a module path exporting createGenerator(options). */
    generator: z.string().default("native"),
    generatorOptions: z.record(z.string(), z.unknown()).default({}),
    ...EvaluationFields,
    /** [candidate, baseline] pairs; default: the run's comparisons that apply, else every variant against every earlier one. */
    pairs: z.array(pair).optional(),
    gate: z
      .strictObject({
        alpha: z.number().gt(0).lt(1).default(DEFAULT_ALPHA),
        /** The pair(s) gated, one gate each; default: every analysed pair. */
        compare: z.union([pair, z.array(pair).min(1)]).optional(),
        scope: z.enum(["overall", "per_type"]).default("overall"),
      })
      .optional(),
    /** The in-context baseline `base+few-shot`, evaluated wherever the run's base model is (fewshot.ts). */
    fewShotBaseline: FewShotBaselineConfig.default(FEW_SHOT_BASELINE_DEFAULT),
    /** The pair critic (the run's base model) against the checks, wherever the run's model is wired (self-judge.ts). */
    selfJudge: SelfJudgeConfig.default(SELF_JUDGE_DEFAULT),
    /** Response cache; default <runDir>/.cache/evaluator. Relative to the config file. */
    cacheDir: z.string().optional(),
    /** An IFEval-format file (relative to the config file) evaluated beside or instead of the `tests` input (specs/evaluation.md §8). */
    ifeval: z.strictObject({ path: z.string().min(1), semantics: z.enum(["ifeval", "selftune"]).default("ifeval") }).optional(),
  })
  .superRefine((c, ctx) => {
    const names = (c.variants ?? []).map((v) => v.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: "custom", path: ["variants", i, "name"], message: `duplicate variant name '${n}'` });
    });
    // The run's own names exist only when their inputs are wired: checked again at run time.
    const known = [...names, ...RUN_VARIANTS.filter((n) => !names.includes(n))];
    const check = (p: [string, string], path: (string | number)[]) =>
      p.forEach((n, k) => {
        if (!known.includes(n)) ctx.addIssue({ code: "custom", path: [...path, k], message: `'${n}' is not a variant (${known.join(", ")})` });
      });
    c.pairs?.forEach((p, i) => check(p, ["pairs", i]));
    gateCompares(c).forEach((p, i) => check(p, Array.isArray(c.gate?.compare?.[0]) ? ["gate", "compare", i] : ["gate", "compare"]));
  });
export type EvaluatorConfig = z.output<typeof EvaluatorConfig>;

/** The configured gate pairs (none configured: []). */
function gateCompares(c: Pick<EvaluatorConfig, "gate">): [string, string][] {
  const cmp = c.gate?.compare;
  if (!cmp) return [];
  return Array.isArray(cmp[0]) ? (cmp as [string, string][]) : [cmp as [string, string]];
}

/** `pool` narrows where few-shot examples come from (the in-context baseline: without the test instructions). */
export function promptFormat(c: Pick<EvaluatorConfig, "fewShot" | "fewShotSeed" | "cleanBlankLines">, pool?: readonly FewShotExample[]): PromptFormat {
  const excluded = pool ? RESPONSE_POOL.filter((e) => !pool.includes(e)).map((e) => e.id) : [];
  return {
    // One key for every item: all prompts share the few-shot header (and its KV cache).
    prompt: (instruction) => buildResponsePrompt(instruction, { seed: c.fewShotSeed, key: "evaluation", k: c.fewShot, pool }).prompt,
    clean: (raw, hitMaxTokens) => {
      const r = cleanResponse(raw, { hitMaxTokens, blankLines: c.cleanBlankLines });
      return { text: r.response, stopReason: r.stopReason };
    },
    identity: { format: "response", version: PROMPT_FORMAT_VERSION, fewShot: c.fewShot, fewShotSeed: c.fewShotSeed, cleanBlankLines: c.cleanBlankLines, ...(excluded.length ? { fewShotExcluded: excluded } : {}) },
  };
}

type Ctx = StageContext<EvaluatorConfig, typeof CONSUMES, { rates: typeof EvaluationRateKind }>;

const CONSUMES = {
  // Wired from the nearest test-set stage unless an IFEval file stands in for it.
  tests: optional(TestInstructionKind, { wantedBy: (c: EvaluatorConfig) => c.ifeval === undefined }),
  // The run's base model (the loader's model-info): wired from the nearest loader when no
  // path variants are given; `inputs: { model: <loader> }` adds it to path variants.
  model: optional(ModelInfoKind, { wantedBy: (c: EvaluatorConfig) => c.variants === undefined }),
  // The run's adapters, by stage id (`inputs: { sft: sft, dpo: dpo, dpo-only: dpo-only }`): one variant each.
  sft: optional(LoraAdapterKind),
  dpo: optional(DpoAdapterKind),
  "dpo-only": optional(DpoAdapterKind),
};

/** base + one variant per wired adapter, on the model-info's file with the loader's load options. */
async function runVariants(ctx: Ctx): Promise<LoadableVariant[]> {
  const wired = RUN_ADAPTERS.filter((slot) => ctx.inputs[slot]);
  if (!ctx.inputs.model) {
    if (wired.length) throw new Error(`evaluator: the ${wired.join(", ")} adapter input(s) are wired but not the model they apply to: add \`model: <loader stage>\` to this stage's inputs`);
    return [];
  }
  const info = await readModelInfo(ctx.inputs.model);
  const load = loadOptionsNextTo(ctx.inputs.model.path);
  const out: LoadableVariant[] = [{ name: "base", model: info.path, adapters: [], load }];
  // The same model and load as base: only the prompt differs (variantFormats).
  if (ctx.config.fewShotBaseline.enabled) out.push({ name: FEW_SHOT_VARIANT, model: info.path, adapters: [], load });
  for (const slot of wired) {
    const art = ctx.inputs[slot]!;
    // An adapter of another base file loads (same architecture) and quietly means nothing.
    const base = art.meta().baseModel;
    if (base.sha256 !== info.sha256) throw new Error(`evaluator: the '${slot}' adapter ${art.path} was trained on ${base.path}, not on the run's model ${info.path}`);
    out.push({ name: slot, model: info.path, adapters: [{ path: art.path, scale: 1 }], load });
  }
  return out;
}

/**
 * The analysed pairs: `pairs`; else, when the run's own variants (`own`) are evaluated, the
 * run's comparisons among them that apply; else every variant against every earlier one.
 */
export function resolvePairs(c: Pick<EvaluatorConfig, "pairs">, names: string[], own: string[]): [string, string][] {
  if (c.pairs) return c.pairs;
  const run = RUN_COMPARISONS.filter(([a, b]) => own.includes(a) && own.includes(b));
  if (run.length) return run;
  return names.flatMap((cand, j) => names.slice(0, j).map((base) => [cand, base] as [string, string]));
}

/** Every name the pairs and gates use must be an evaluated variant (the run's own depend on the wiring). */
function checkNames(c: EvaluatorConfig, names: string[]): void {
  for (const [where, p] of [...(c.pairs ?? []).map((p) => ["pairs", p] as const), ...gateCompares(c).map((p) => ["gate.compare", p] as const)]) {
    for (const n of p) {
      if (names.includes(n)) continue;
      const hint = (RUN_ADAPTERS as readonly string[]).includes(n)
        ? `: wire its adapter (inputs: { ${n}: <stage> })`
        : n === "base" || n === FEW_SHOT_VARIANT
          ? `: wire the run's model (inputs: { model: <loader stage> })${n === FEW_SHOT_VARIANT ? " and keep fewShotBaseline.enabled" : ""}`
          : "";
      throw new Error(`evaluator: ${where} names '${n}', which is not evaluated (variants: ${names.join(", ")})${hint}`);
    }
  }
}

export default definePlugin({
  name: "evaluator",
  version: "0.2.0",
  description: "paired evaluation of the run's base, SFT, DPO and DPO-only (declared inputs) and of models by path, on held-out test instructions (checks, McNemar, report)",
  config: EvaluatorConfig,
  consumes: CONSUMES,
  produces: { rates: EvaluationRateKind },
  async run(ctx) {
    const c = ctx.config;
    const baseDir = dirname(resolve(ctx.run.configPath));
    const own = await runVariants(ctx);
    const byPath = (c.variants ?? []).map((v) => ({ ...v, model: resolve(baseDir, v.model), adapters: v.adapters.map((a) => ({ ...a, path: resolve(baseDir, a.path) })) }));
    for (const v of byPath) if (own.some((o) => o.name === v.name)) throw new Error(`evaluator: variant name '${v.name}' is the run's own ${v.name === "base" ? "model" : `'${v.name}' adapter`}: give the path variant another name`);
    const variants: LoadableVariant[] = [...own, ...byPath];
    if (variants.length === 0) throw new Error("evaluator: nothing to evaluate: give variants: or wire the run's model (inputs: { model: <loader stage> })");
    const names = variants.map((v) => v.name);
    checkNames(c, names);
    const cacheDir = c.cacheDir ? resolve(baseDir, c.cacheDir) : join(ctx.run.dir, ".cache", "evaluator");

    const ifevalFile = c.ifeval ? resolve(baseDir, c.ifeval.path) : null;
    const tests = [...(ctx.inputs.tests ? await ctx.inputs.tests.all() : []), ...(ifevalFile ? readIfevalTests(ifevalFile, c.ifeval!.semantics) : [])];
    if (tests.length === 0) throw new Error("evaluator: no test instructions: wire a test-set stage (inputs: { tests: <stage> }) or give ifeval: { path }");
    validateInstructions(tests);
    const format = promptFormat(c);
    const formats = variantFormats(c, variants, tests.map((t) => t.instruction), format);
    const decode: DecodeOptions = { maxTokens: c.maxTokens, stop: responseStopStrings(c.cleanBlankLines) };
    const hashes = new FileHashes(cacheDir);
    const identities = [];
    for (const [i, v] of variants.entries()) identities.push(await identifyVariant(v, decode, formats[i]!.identity, hashes));
    if (own.length && ctx.inputs.model) {
      const info = await readModelInfo(ctx.inputs.model);
      if (identities[0]!.model.sha256 !== info.sha256) throw new Error(`evaluator: model ${info.path} changed since the load stage recorded it (sha256 ${identities[0]!.model.sha256.slice(0, 12)}, recorded ${info.sha256.slice(0, 12)}): re-run from the load stage`);
    }
    const testSetSha256 = await sha256File(ctx.inputs.tests?.path ?? ifevalFile!);
    const ifeval = ifevalFile ? { path: ifevalFile, sha256: await sha256File(ifevalFile), semantics: c.ifeval!.semantics } : undefined;
    Object.assign(ctx.provenance.extra, { variants: identities, ownVariants: own.map((v) => v.name), decode: { greedy: true, ...decode }, prompt: format.identity, testSet: { sha256: testSetSha256, items: tests.length, ...(ifeval ? { ifeval } : {}) }, ...fewShotRecord(variants, formats) });

    const generator = await resolveGenerator(c.generator, c.generatorOptions, baseDir, { services: ctx.services, signal: ctx.signal, log: ctx.log });
    const model = ctx.inputs.model;
    const judge =
      model && c.selfJudge.enabled
        ? (v: Parameters<typeof judgeResponses>[3]) => {
            let task: ReturnType<typeof ctx.progress.task> | undefined;
            const progress = (done: number, total: number) => (task ??= ctx.progress.task("self-judge", total)).update(done);
            return judgeResponses({ services: ctx.services, signal: ctx.signal, log: ctx.log, progress }, model, c.selfJudge, v).finally(() => task?.finish());
          }
        : undefined;
    const done = await runEvaluation(ctx, { variants, identities, tests, generator, format, formats, decode, batchSize: c.batchSize, cacheDir, testSetSha256, options: analysisOptions(c, names, own.map((v) => v.name)), judge });
    if (!done) return; // interrupted: finished batches are in the cache
    for (const g of done.results.analysis.gates) ctx.gate({ name: g.name, passed: g.passed, summary: g.summary, details: { candidate: g.candidate, baseline: g.baseline, alpha: g.alpha, scope: g.scope } });
    ctx.log.info(done.summary);
  },
});

/**
 * Each variant's prompt format: `format` for all but the run's `base+few-shot`, which gets
 * fewShotBaseline's k examples (seeded, from the pool minus the test instructions) before
 * every item; the cleaning is the same for all.
 */
export function variantFormats(c: Pick<EvaluatorConfig, "fewShotBaseline" | "cleanBlankLines">, variants: readonly { name: string }[], instructions: readonly string[], format: PromptFormat): PromptFormat[] {
  const fs = c.fewShotBaseline;
  const fewShot = variants.some((v) => v.name === FEW_SHOT_VARIANT) ? promptFormat({ fewShot: fs.k, fewShotSeed: fs.seed, cleanBlankLines: c.cleanBlankLines }, fewShotPool(instructions)) : null;
  return variants.map((v) => (v.name === FEW_SHOT_VARIANT ? fewShot! : format));
}

/** What the in-context baseline was prompted with, for provenance (nothing when it is not evaluated). */
function fewShotRecord(variants: readonly { name: string }[], formats: readonly PromptFormat[]): Record<string, unknown> {
  const i = variants.findIndex((v) => v.name === FEW_SHOT_VARIANT);
  return i < 0 ? {} : { fewShotBaseline: { variant: FEW_SHOT_VARIANT, prompt: formats[i]!.identity } };
}

/** The analysis options of a stage whose variants are `names` (in evaluation order), `own` of them the run's own. */
export function analysisOptions(c: Pick<EvaluatorConfig, "metric" | "alpha" | "confidence" | "exactThreshold" | "pairs" | "gate">, names: string[], own: string[] = []): AnalysisOptions {
  const pairs = resolvePairs(c, names, own);
  const compares = c.gate ? (gateCompares(c).length ? gateCompares(c) : pairs) : [];
  const gates = compares.map((compare) => ({ alpha: c.gate!.alpha, scope: c.gate!.scope, compare }));
  return { metric: c.metric, alpha: c.alpha, confidence: c.confidence, exactThreshold: c.exactThreshold, pairs, gates };
}
