// What every evaluating stage does once its variants, generator and prompt format are set:
// generate (through the response cache), score, write each variant's responses, the results,
// summary and report, and the rate records. The `evaluator` (variants by path) and the
// `pipeline-evaluator` (adapters from the run's own stages) differ only before this point
// and in how they gate.
import type { StageContext } from "../../core/plugin.ts";
import type { AnalysisOptions } from "./analysis.ts";
import { evaluateVariants, type EvaluateOptions } from "./evaluate.ts";
import { buildOutputs, EvaluationRateKind, type BuildInput, responsesFile, responsesJsonl, toRecord } from "./outputs.ts";
import type { EvaluationResults } from "./results.ts";
import { SELF_JUDGE_FILE } from "./self-judge.ts";
import type { JudgePass, ToJudge } from "./self-judge-run.ts";

type Ctx = Pick<StageContext<unknown, Record<never, never>, { rates: typeof EvaluationRateKind }>, "progress" | "log" | "signal" | "provenance" | "writeFile" | "outputs">;

export interface EvaluationStage extends Pick<EvaluateOptions, "variants" | "identities" | "generator" | "format" | "formats" | "decode" | "batchSize" | "cacheDir"> {
  tests: readonly (EvaluateOptions["instructions"][number] & { template: string })[];
  testSetSha256: string;
  options: AnalysisOptions;
  /** The self-judge's scoring pass (self-judge-run.ts), where the run's base model is there to judge; null: interrupted. */
  judge?: (variants: ToJudge[]) => Promise<JudgePass | null>;
}

/**
 * The results and the summary text (the caller logs it after gating); null when interrupted
 * (finished batches are in the cache, and a re-run resumes from them).
 */
export async function runEvaluation(ctx: Ctx, s: EvaluationStage): Promise<{ results: EvaluationResults; summary: string } | null> {
  const task = ctx.progress.task("responses", s.tests.length * s.variants.length);
  const evals = await evaluateVariants({
    variants: s.variants,
    identities: s.identities,
    instructions: s.tests,
    generator: s.generator,
    format: s.format,
    formats: s.formats,
    decode: s.decode,
    batchSize: s.batchSize,
    cacheDir: s.cacheDir,
    signal: ctx.signal,
    onBatch: (name, done) => task.update(s.variants.findIndex((v) => v.name === name) * s.tests.length + done),
    log: (m) => ctx.log.info(m),
  });
  if (!evals) return null;
  // What the generator reported at load (backend, device) joins the recorded identities.
  ctx.provenance.extra.variants = evals.map((e) => ({ ...e.variant, loadInfo: e.loadInfo }));

  const templates = new Map(s.tests.map((t) => [t.id, t.template]));
  const perVariant = [];
  for (const e of evals) {
    const responses = e.items.map((it) => toRecord(e.variant, it, templates.get(it.id) ?? null));
    await ctx.writeFile(responsesFile(e.variant.name), responsesJsonl(responses));
    perVariant.push({ record: { ...e.variant, responsesFile: responsesFile(e.variant.name), generated: e.generated, cached: e.cached, loadInfo: e.loadInfo }, responses });
  }
  let selfJudge: BuildInput["selfJudge"];
  if (s.judge) {
    const pass = await s.judge(evals.map((e) => ({ variant: e.variant.name, items: e.items })));
    if (!pass) return null;
    await ctx.writeFile(SELF_JUDGE_FILE, pass.judgements.map((j) => JSON.stringify(j) + "\n").join(""));
    ctx.provenance.extra.selfJudge = pass.meta;
    selfJudge = { judgements: pass.judgements, ...pass.meta };
  }
  const { results, files } = buildOutputs({
    variants: perVariant,
    selfJudge,
    options: s.options,
    decode: { greedy: true, ...s.decode },
    prompt: s.format.identity,
    testSetSha256: s.testSetSha256,
    provenance: ctx.provenance,
  });
  for (const [name, data] of Object.entries(files)) await ctx.writeFile(name, data);
  const metric = s.options.metric;
  for (const r of results.analysis.rates) {
    const m = r[metric];
    ctx.outputs.rates.write({ variant: r.variant, scope: r.scope, metric, n: r.n, successes: m.successes, rate: m.rate, lower: m.lower, upper: m.upper });
  }
  return { results, summary: files["summary.txt"]!.trimEnd() };
}
