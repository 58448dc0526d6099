// The evaluator for a whole run (issue 11 item 4): base, SFT, DPO and DPO-only answer the
// same held-out instructions, the adapters being the run's own sft/dpo/dpo-only outputs.
// The core's input slots are fixed per plugin, required and of one kind each, so the
// path-configured `evaluator` cannot grow optional adapter inputs without breaking configs
// that have no training stages; this plugin declares them instead, and reuses the
// evaluator's generation loop, cache, statistics and report unchanged.
import { join } from "node:path";
import { z } from "zod";
import { sha256File } from "../../core/artifacts.ts";
import { definePlugin, type GateResult } from "../../core/plugin.ts";
import { generate, loadAdapter, textWithStop, type Adapter } from "../../native/index.ts";
import { openModel } from "../loader/open.ts";
import { responseStopStrings } from "../prompts/clean.ts";
import { ModelInfoKind, TestInstructionKind } from "../shared/kinds.ts";
import { DpoAdapterKind } from "../dpo/kinds.ts";
import { LoraAdapterKind } from "../sft/kinds.ts";
import { decideGate } from "../evaluator/analysis.ts";
import { FileHashes, identifyVariant } from "../evaluator/cache.ts";
import { validateInstructions } from "../evaluator/evaluate.ts";
import type { DecodeOptions, Generator, Variant } from "../evaluator/generator.ts";
import { analysisOptions, EvaluationFields, promptFormat } from "../evaluator/index.ts";
import { EvaluationRateKind } from "../evaluator/outputs.ts";
import { runEvaluation } from "../evaluator/stage.ts";
import { DEFAULT_ALPHA } from "../evaluator/stats.ts";

const SLOTS = ["sft", "dpo", "dpo-only"] as const;
const pair = z.tuple([z.string(), z.string()]);

export const PipelineVariant = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only"),
  /** The input slot whose adapter is applied; absent: the bare base model. */
  adapter: z.enum(SLOTS).optional(),
  scale: z.number().default(1),
});

export const PipelineEvaluatorConfig = z
  .strictObject({
    variants: z
      .array(PipelineVariant)
      .min(1)
      .default([{ name: "base", scale: 1 }, { name: "sft", adapter: "sft", scale: 1 }, { name: "dpo", adapter: "dpo", scale: 1 }, { name: "dpo-only", adapter: "dpo-only", scale: 1 }]),
    /** [candidate, baseline]: the pairs of interest; each gets McNemar/BH rows and, with `gate`, a gate. */
    compare: z.array(pair).min(1).default([["sft", "base"], ["dpo", "sft"], ["dpo", "dpo-only"]]),
    ...EvaluationFields,
    /** One significance gate per `compare` pair (a failed one stops the run unless `gate: report`). */
    gate: z.strictObject({ alpha: z.number().gt(0).lt(1).default(DEFAULT_ALPHA), scope: z.enum(["overall", "per_type"]).default("overall") }).optional(),
  })
  .superRefine((c, ctx) => {
    const names = c.variants.map((v) => v.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: "custom", path: ["variants", i, "name"], message: `duplicate variant name '${n}'` });
    });
    c.compare.forEach((p, i) =>
      p.forEach((n, k) => {
        if (!names.includes(n)) ctx.addIssue({ code: "custom", path: ["compare", i, k], message: `'${n}' is not a variant (${names.join(", ")})` });
      }),
    );
  });
export type PipelineEvaluatorConfig = z.output<typeof PipelineEvaluatorConfig>;

export default definePlugin({
  name: "pipeline-evaluator",
  version: "0.1.0",
  description: "paired evaluation of base, SFT, DPO and DPO-only from the run's own adapters (one model, adapters per call)",
  config: PipelineEvaluatorConfig,
  consumes: { tests: TestInstructionKind, model: ModelInfoKind, sft: LoraAdapterKind, dpo: DpoAdapterKind, "dpo-only": DpoAdapterKind },
  produces: { rates: EvaluationRateKind },
  async run(ctx) {
    const c = ctx.config;
    const cacheDir = join(ctx.run.dir, ".cache", "evaluator");
    const m = await openModel(ctx.services, ctx.inputs.model, { signal: ctx.signal, log: ctx.log });
    const arts = { sft: ctx.inputs.sft, dpo: ctx.inputs.dpo, "dpo-only": ctx.inputs["dpo-only"] };
    for (const slot of new Set(c.variants.flatMap((v) => (v.adapter ? [v.adapter] : [])))) {
      const meta = arts[slot].meta();
      // An adapter of another base file loads (same architecture) and quietly means nothing.
      if (meta.baseModel.sha256 !== m.info.sha256) throw new Error(`the '${slot}' adapter ${arts[slot].path} was trained on ${meta.baseModel.path}, not on the loaded model ${m.info.path}`);
    }
    const variants: Variant[] = c.variants.map((v) => ({ name: v.name, model: m.info.path, adapters: v.adapter ? [{ path: arts[v.adapter].path, scale: v.scale }] : [] }));

    const tests = await ctx.inputs.tests.all();
    validateInstructions(tests);
    const format = promptFormat(c);
    const decode: DecodeOptions = { maxTokens: c.maxTokens, stop: responseStopStrings(c.cleanBlankLines) };
    const hashes = new FileHashes(cacheDir);
    const identities = [];
    for (const v of variants) identities.push(await identifyVariant(v, decode, format.identity, hashes));
    const testSetSha256 = await sha256File(ctx.inputs.tests.path);
    const adapterStages = Object.fromEntries(c.variants.filter((v) => v.adapter).map((v) => [v.name, v.adapter]));
    Object.assign(ctx.provenance.extra, { variants: identities, adapterInputs: adapterStages, decode: { greedy: true, ...decode }, prompt: format.identity, testSet: { sha256: testSetSha256, items: tests.length } });

    // The run's one loaded model; a "load" only loads the variant's adapters, applied per call.
    const generator: Generator = {
      async load(v) {
        const adapters: { adapter: Adapter; scale: number }[] = [];
        for (const a of v.adapters) adapters.push({ adapter: await loadAdapter(m.model, a.path), scale: a.scale });
        return {
          info: { model: m.provenance.path, backend: (m.provenance as { backend?: string }).backend },
          async generate(prompts, opts) {
            // A fresh context per batch: a batch's output depends on its prompts alone.
            const wc = await m.workContext();
            try {
              const out = await generate(wc, prompts.map((prompt) => ({ prompt })), { sampling: { temperature: 0, maxTokens: opts.maxTokens, stop: opts.stop }, ...(adapters.length && { adapters }), signal: ctx.signal });
              return out.results.map((r) => ({ text: textWithStop(r), tokens: r.nTokens, stop: r.stop }));
            } finally {
              wc.dispose();
            }
          },
          async dispose() {
            for (const a of adapters) a.adapter.dispose();
          },
        };
      },
    };

    const first = c.gate ? { ...c.gate, compare: c.compare[0]! } : undefined;
    const done = await runEvaluation(ctx, { variants, identities, tests, generator, format, decode, batchSize: c.batchSize, cacheDir, testSetSha256, options: analysisOptions({ ...c, pairs: c.compare, gate: first }) });
    if (!done) return;
    const results = done.results;
    if (c.gate) {
      const names = c.variants.map((v) => v.name);
      for (const p of c.compare) {
        const g = decideGate({ ...c.gate, compare: p }, results.analysis.pairs, c.metric, names);
        const gate: GateResult = { name: `significance ${g.candidate} vs ${g.baseline}`, passed: g.passed, summary: g.summary, details: { candidate: g.candidate, baseline: g.baseline, alpha: g.alpha, scope: g.scope } };
        ctx.gate(gate);
      }
    }
    ctx.log.info(done.summary);
  },
});
