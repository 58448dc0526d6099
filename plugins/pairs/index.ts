// The pairs stage (SPEC §1 stage 7, §7): preference pairs for DPO from two sources —
// best-of-N (the SFT model = base + the sft stage's adapter samples N responses per
// instruction; the base model's pair critic ranks them; best vs worst above a margin gap)
// and synthetic negatives of five kinds against trainable sft-examples (model-made where
// the base model manages, deterministic edits otherwise; each checked to be worse in its
// kind). One model is loaded; the adapter is switched per call.
//
// Work: the best-of-N list, then the synthetic list (work.ts), in fixed batches; each
// batch is committed with the cursor {phase, done} plus the skip and maker counts, so a
// resumed stage continues exactly there and writes nothing twice. Pairs are deduplicated
// by (instruction, chosen, rejected) after normalisation, across resumes too (the keys
// are rebuilt from the committed records). The QC summary (summary.ts) and gate (qc.ts)
// go to pairs-summary.json, the stage's gates and its provenance; a sharded run decides
// them in merge() over the merged whole (each shard's summary holds only its share).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import { definePlugin, type StageContext } from "../../core/plugin.ts";
import { criticChoiceRecord } from "../critic/critic.ts";
import { modelProvenanceExtra } from "../loader/open.ts";
import { normalizeInstruction } from "../prompts/dedupe.ts";
import { PROMPT_FORMAT_VERSION } from "../prompts/prompts.ts";
import { promptFormatsSha256 } from "../prompts/spec.ts";
import { ModelInfoKind, PreferencePairKind, SftExampleKind, type PreferencePair, type SftExample } from "../shared/kinds.ts";
import { LoraAdapterKind } from "../sft/kinds.ts";
import { PairsConfig } from "./config.ts";
import { pairsQc, sumCounts, type PairsCounts, type PairsQcResult } from "./qc.ts";
import { bestOfNBatch, syntheticBatch, type BatchResult } from "./make.ts";
import { pairsModel } from "./model.ts";
import { summarizePairs } from "./summary.ts";
import { normalizeText } from "./text.ts";
import { workLists } from "./work.ts";

export const PAIRS_VERSION = "0.1.0";

interface Cursor {
  /** 0: best-of-N, 1: synthetic. */
  phase: 0 | 1;
  /** Items of the current phase done. */
  done: number;
  skipped: Record<string, number>;
  made: Record<string, number>;
  duplicates: number;
}

const pairKey = (p: Pick<PreferencePair, "instruction" | "chosen" | "rejected">) => `${normalizeInstruction(p.instruction)}\0${normalizeText(p.chosen)}\0${normalizeText(p.rejected)}`;

function add(into: Record<string, number>, from: Record<string, number>) {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export default definePlugin({
  name: "pairs",
  version: PAIRS_VERSION,
  description: "preference pairs for DPO: best-of-N from the SFT model ranked by the base model's pair critic, and synthetic negatives of five kinds",
  config: PairsConfig,
  consumes: { model: ModelInfoKind, examples: SftExampleKind, adapter: LoraAdapterKind },
  produces: { pairs: PreferencePairKind },
  shardable: true,
  async run(ctx) {
    const cfg = ctx.config;
    const examples: SftExample[] = await ctx.inputs.examples.all();
    const lists = workLists(examples, { shard: ctx.shard, bestOfNLimit: cfg.bestOfN.limit, syntheticLimit: cfg.synthetic.limit, mix: cfg.synthetic.mix, mixSeed: cfg.synthetic.mixSeed });
    const phases = [cfg.bestOfN.enabled ? lists.bestOfN : [], cfg.synthetic.enabled ? lists.synthetic : []] as const;
    const m = await pairsModel(ctx.services, ctx.inputs.model, ctx.inputs.adapter, { scorer: cfg.scorer, needAdapter: phases[0].length > 0, signal: ctx.signal, log: ctx.log });
    try {
      Object.assign(ctx.provenance.extra, modelProvenanceExtra(m.provenance), {
        adapter: { path: m.adapterPath, sha256: await sha256File(m.adapterPath), applied: phases[0].length > 0 },
        scorer: m.scorer,
        critic: criticChoiceRecord(m.model, m.guard),
        promptFormatVersion: PROMPT_FORMAT_VERSION,
        promptFormatsSha256: promptFormatsSha256(),
        workList: { ...lists.stats, bestOfN: phases[0].length, synthetic: phases[1].length },
      });
      ctx.log.info(`pairs: best-of-${cfg.bestOfN.n} over ${phases[0].length} instructions, synthetic negatives for ${phases[1].length} examples (of ${examples.length} records, ${lists.stats.untrainable} untrainable)`);

      const out = ctx.outputs.pairs;
      const cur: Cursor = (out.cursor as Cursor | null) ?? { phase: 0, done: 0, skipped: {}, made: {}, duplicates: 0 };
      // What earlier attempts committed: for deduplication and the summary.
      const written: PreferencePair[] = out.cursor ? await out.committed().all() : [];
      const seen = new Set(written.map(pairKey));
      const task = ctx.progress.task("pairs", phases[0].length + phases[1].length);
      task.update((cur.phase === 1 ? phases[0].length : 0) + cur.done);
      while (cur.phase < 2) {
        const items = phases[cur.phase];
        if (cur.done >= items.length) {
          if (cur.phase === 1) break;
          Object.assign(cur, { phase: 1, done: 0 });
          continue;
        }
        if (ctx.signal.aborted) return;
        let r: BatchResult;
        try {
          r = await m.batch((w) =>
            cur.phase === 0
              ? bestOfNBatch(m, w, lists.bestOfN.slice(cur.done, cur.done + cfg.batch), cfg.bestOfN, ctx.seed, ctx.signal)
              : syntheticBatch(m, w, lists.synthetic.slice(cur.done, cur.done + cfg.batch), lists.pool, cfg.synthetic, ctx.seed, ctx.signal),
          );
        } catch (e) {
          if (ctx.signal.aborted) return;
          throw e;
        }
        for (const p of r.pairs) {
          const k = pairKey(p);
          if (seen.has(k)) {
            cur.duplicates++;
            continue;
          }
          seen.add(k);
          out.write(p);
          written.push(p);
        }
        add(cur.skipped, r.skipped);
        add(cur.made, r.made);
        cur.done = Math.min(cur.done + cfg.batch, items.length);
        out.commit(structuredClone(cur));
        task.update((cur.phase === 1 ? phases[0].length : 0) + cur.done);
      }
      task.finish();
      const counts: PairsCounts = { work: { bestOfN: phases[0].length, synthetic: phases[1].length }, skipped: cur.skipped, negativesMadeBy: cur.made, duplicates: cur.duplicates };
      // A shard writes its share's summary (with its counts, which merge adds up); the QC
      // gate is decided over the whole only: here unsharded, in merge() when sharded.
      if (ctx.shard) await ctx.writeFile(SUMMARY_FILE, json(makeSummary(written, counts, null)));
      else await finish(ctx, written, counts);
    } finally {
      m.dispose();
    }
  },
  async merge(ctx) {
    const parts = ctx.shards.map((s) => {
      const file = join(s.dir, SUMMARY_FILE);
      if (!existsSync(file)) throw new Error(`pairs: shard ${s.index}/${s.count} left no ${file}`);
      const { work, skipped, negativesMadeBy, duplicates } = JSON.parse(readFileSync(file, "utf8")) as PairsCounts;
      return { work, skipped, negativesMadeBy, duplicates };
    });
    await finish(ctx, await ctx.outputs.pairs.all(), sumCounts(parts));
  },
});

const SUMMARY_FILE = "pairs-summary.json";
const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;

function makeSummary(pairs: readonly PreferencePair[], counts: PairsCounts, qc: PairsQcResult | null) {
  return { ...summarizePairs(pairs, counts.skipped), duplicates: counts.duplicates, negativesMadeBy: counts.negativesMadeBy, work: counts.work, qc };
}

/** The whole set's summary and QC gates: pairs-summary.json, provenance, ctx.gate, the log. */
async function finish(ctx: Pick<StageContext<PairsConfig, never, never>, "config" | "provenance" | "writeFile" | "gate" | "log">, pairs: readonly PreferencePair[], counts: PairsCounts) {
  const cfg = ctx.config;
  const qc = pairsQc(pairs, counts, { qc: cfg.qc, mix: cfg.synthetic.mix, bestOfN: cfg.bestOfN.enabled, synthetic: cfg.synthetic.enabled });
  const summary = makeSummary(pairs, counts, qc);
  ctx.provenance.extra.summary = summary;
  await ctx.writeFile(SUMMARY_FILE, json(summary));
  for (const g of qc.gates) ctx.gate({ name: g.name, passed: g.passed, summary: g.summary, details: { value: g.value, op: g.op, threshold: g.threshold } });
  const diff = summary.length.all.difference;
  ctx.log.info(`pairs: ${summary.pairs} pairs (${summary.bySource["best-of-n"]} best-of-n, ${summary.bySource.synthetic} synthetic)${diff ? `, rejected − chosen tokens: mean ${diff.mean.toFixed(1)}, median ${diff.median}` : ""}; QC ${qc.passed ? "PASS" : `FAIL (${qc.gates.filter((g) => !g.passed).map((g) => g.name).join(", ")})`}`);
}
