// The critic stage: (re-)judge sft-example records with the pair critic (SPEC §4), e.g.
// at another threshold than the responses stage used, or after a response filter.
// Each non-empty response gets a fresh verdict (an empty one gets none); with `drop`
// only accepted records are kept. Resumable: each batch is committed with its position.
// The function API (scoreInstructions, scorePairs, Critic) is in critic.ts; the
// generating stages call it directly.
import { definePlugin } from "../../core/plugin.ts";
import { openModel, modelProvenanceExtra } from "../loader/open.ts";
import { ModelInfoKind, SftExampleKind, type SftExample } from "../shared/kinds.ts";
import { ModelService } from "../shared/model-service.ts";
import { Critic, chooseCriticLabels, criticProvenance, describeCriticChoice } from "./critic.ts";
import { CriticStageConfig } from "./config.ts";

export default definePlugin({
  name: "critic",
  version: "1.0.0",
  description: "judge sft-example records with the A/B pair critic (labels chosen for the tokenizer); keep verdicts or drop rejected records",
  config: CriticStageConfig,
  consumes: { model: ModelInfoKind, examples: SftExampleKind },
  produces: { examples: SftExampleKind },
  shardable: true,
  async run(ctx) {
    const cfg = ctx.config;
    const m = await openModel(ctx.services, ctx.inputs.model, { signal: ctx.signal, log: ctx.log });
    const scorer = await (await ModelService.of(ctx.services)).scorer(m.provenance.path, { scorer: cfg.scorer, log: ctx.log });
    const labels = chooseCriticLabels(m.model, m.guard);
    Object.assign(ctx.provenance.extra, modelProvenanceExtra(m.provenance), { threshold: cfg.threshold, drop: cfg.drop, scorer: scorer.provenance, critic: criticProvenance(labels) });
    ctx.log.info(`critic: ${describeCriticChoice(labels)}`);
    const all: SftExample[] = [];
    for await (const r of ctx.inputs.examples) all.push(r);
    const mine = ctx.shard ? all.filter((_, i) => i % ctx.shard!.count === ctx.shard!.index) : all;
    const out = ctx.outputs.examples;
    let pos = (out.cursor as number | null) ?? 0;
    const task = ctx.progress.task("critic", mine.length);
    task.update(pos);
    while (pos < mine.length) {
      if (ctx.signal.aborted) return;
      const batch = mine.slice(pos, pos + cfg.batch);
      const judged = batch.filter((r) => r.response.trim() !== "");
      let scores;
      // llama.cpp scores on the model's work context (kept across batches only where that cannot change a result, else fresh per batch: OpenedModel.inWorkContext); the engine keeps no state between calls.
      const pairs = judged.map((r) => ({ id: r.id, instruction: r.instruction, response: r.response }));
      try {
        scores = scorer.engine
          ? await new Critic(scorer.engine, m.guard, m.model).scorePairs(pairs, { threshold: cfg.threshold, signal: ctx.signal })
          : await m.inWorkContext((wctx) => new Critic(wctx, m.guard, m.model).scorePairs(pairs, { threshold: cfg.threshold, signal: ctx.signal }));
      } catch (e) {
        if (ctx.signal.aborted) return;
        throw e;
      }
      const verdict = new Map(judged.map((r, i) => [r.id, scores[i]!.verdict]));
      for (const r of batch) {
        const critic = verdict.get(r.id) ?? null;
        if (cfg.drop && !critic?.accepted) continue;
        out.write({ ...r, critic });
      }
      pos += batch.length;
      out.commit(pos);
      task.update(pos);
    }
    task.finish();
  },
});
