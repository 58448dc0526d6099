// The `responses` stage (SPEC §1 stage 3): one completion prompt per instruction
// (few-shot `Instruction:/Response:/END` blocks, SPEC §3), generation stopped at the
// delimiters, cleaned (cleanResponse records which delimiter ended it), judged by the
// pair critic. Every generation is recorded — runaways, empty and rejected ones —
// so QC sees true rates; isTrainable decides what SFT uses.
//
// Work list: the input instructions in file order, without critic-rejected ones
// (unless useRejected) and without duplicates of earlier ones (dedupe; e.g. across
// merged shards), then this shard's share (every N-th), then `limit`, then `samples`
// copies. Request w is sampled with seed deriveSeed(stage seed, "response",
// instruction id, sample); its few-shot header is chosen by variantKey(stage seed,
// instruction id, variants). Batches are fixed slices of the work list and each is
// committed with the position reached, so a resumed stage continues exactly there.
import { definePlugin } from "../../core/plugin.ts";
import { cleanResponse, responseStopStrings } from "../prompts/clean.ts";
import { DuplicateIndex } from "../prompts/dedupe.ts";
import { buildResponsePrompt, variantKey } from "../prompts/prompts.ts";
import { deriveSeed } from "../prompts/rng.ts";
import { rawWithStop, recordedSampling, type GenerationRequest, type GenerationResult } from "../shared/generation.ts";
import { InstructionKind, ModelInfoKind, SftExampleKind, type Instruction, type SftExample } from "../shared/kinds.ts";
import { cutAtSpecialToken, provenanceExtra, resolveParams, stageModel } from "./common.ts";
import { RESPONSE_DEFAULTS, RESPONSE_PARAM_KEYS, ResponseParams, ResponsesConfig } from "./config.ts";

export const RESPONSES_VERSION = "1.0.0";

interface WorkItem {
  instruction: Instruction;
  sample: number;
}

interface Cursor {
  done: number;
  /** Generations ended early by a special token (cutAtSpecialToken). */
  specialTokenStops?: number;
}

export interface WorkListStats {
  input: number;
  rejectedByCritic: number;
  duplicates: number;
  otherShards: number;
  overLimit: number;
}

/** The deterministic work list (see the header). */
export function workList(instructions: readonly Instruction[], opts: { useRejected: boolean; dedupe: boolean; threshold: number; shard: { index: number; count: number } | null; limit?: number; samples: number }): { items: WorkItem[]; stats: WorkListStats } {
  const stats: WorkListStats = { input: instructions.length, rejectedByCritic: 0, duplicates: 0, otherShards: 0, overLimit: 0 };
  const index = new DuplicateIndex({ threshold: opts.threshold });
  let kept: Instruction[] = [];
  for (const ins of instructions) {
    if (ins.critic && !ins.critic.accepted && !opts.useRejected) {
      stats.rejectedByCritic++;
      continue;
    }
    if (opts.dedupe && index.add(ins.id, ins.text).kind !== "unique") {
      stats.duplicates++;
      continue;
    }
    kept.push(ins);
  }
  if (opts.limit !== undefined && kept.length > opts.limit) {
    stats.overLimit = kept.length - opts.limit;
    kept = kept.slice(0, opts.limit);
  }
  if (opts.shard) {
    const { index: i, count: n } = opts.shard;
    stats.otherShards = kept.filter((_, j) => j % n !== i).length;
    kept = kept.filter((_, j) => j % n === i);
  }
  const items: WorkItem[] = [];
  for (const ins of kept) for (let s = 0; s < opts.samples; s++) items.push({ instruction: ins, sample: s });
  return { items, stats };
}

export function responseId(instructionId: string, sample: number, samples: number): string {
  return samples === 1 ? `res-${instructionId}` : `res-${instructionId}-${sample}`;
}

export default definePlugin({
  name: "responses",
  version: RESPONSES_VERSION,
  description: "generate a response per instruction with a few-shot completion prompt; clean at delimiters; pair critic (pilot or scale mode)",
  config: ResponsesConfig,
  consumes: { model: ModelInfoKind, instructions: InstructionKind },
  produces: { examples: SftExampleKind },
  shardable: true,
  async run(ctx) {
    const cfg = ctx.config;
    const m = await stageModel(ctx.services, ctx.inputs.model, { signal: ctx.signal, log: ctx.log });
    const { params, pilot } = await resolveParams({
      config: cfg,
      keys: RESPONSE_PARAM_KEYS,
      defaults: RESPONSE_DEFAULTS,
      schema: ResponseParams,
      plugin: "responses",
      stageId: ctx.stage.id,
      modelSha256: m.info.sha256,
      readManifest: ctx.readManifest,
    });
    if (pilot) ctx.log.info(`responses: scale mode, parameters from the passed pilot ${pilot.runId} (stage '${pilot.stage}', QC '${pilot.qcStage}')`);
    const instructions: Instruction[] = [];
    for await (const r of ctx.inputs.instructions) instructions.push(r);
    const { items, stats } = workList(instructions, { useRejected: cfg.useRejected, dedupe: cfg.dedupe, threshold: 0.7, shard: ctx.shard, limit: cfg.limit, samples: cfg.samples });
    const sampling = params.sampling;
    const stop = responseStopStrings(params.blankLines);
    Object.assign(ctx.provenance.extra, provenanceExtra(m), { mode: cfg.mode, parameters: params, stopStrings: stop, workList: stats, requests: items.length, ...(pilot && { pilot }) });
    ctx.provenance.extra.scorer = await m.selectScorer(cfg.scorer, params.critic.enabled);
    ctx.log.info(`responses: ${items.length} requests from ${stats.input} instructions (${stats.rejectedByCritic} rejected by the instruction critic, ${stats.duplicates} duplicates${ctx.shard ? `, ${stats.otherShards} for other shards` : ""}${stats.overLimit ? `, ${stats.overLimit} over the limit` : ""})`);

    const out = ctx.outputs.examples;
    const cur: Cursor = (out.cursor as Cursor | null) ?? { done: 0 };
    const task = ctx.progress.task("responses", items.length);
    task.update(cur.done);
    while (cur.done < items.length) {
      if (ctx.signal.aborted) return;
      const batch = items.slice(cur.done, cur.done + cfg.batch);
      const built = batch.map((w) => buildResponsePrompt(w.instruction.text, { seed: ctx.seed, key: variantKey(ctx.seed, w.instruction.id, params.variants), k: params.k }));
      const seeds = batch.map((w) => deriveSeed(ctx.seed, "response", w.instruction.id, w.sample));
      const requests: GenerationRequest[] = batch.map((w, j) => ({
        prompt: m.guard.tokenizePrompt(built[j]!.prompt, `response:${w.instruction.id}#${w.sample}`),
        sampling: { ...sampling, minP: 0, seed: seeds[j]!, stop },
      }));
      let stops = 0;
      const toRecord = (generated: GenerationResult, j: number): Omit<SftExample, "critic"> => {
        const w = batch[j]!;
        const { result: r, cut } = cutAtSpecialToken(generated, m);
        if (cut) stops++;
        const raw = rawWithStop(r);
        const hitMaxTokens = r.stop === "length";
        const clean = cleanResponse(raw, { hitMaxTokens, blankLines: params.blankLines });
        return {
          id: responseId(w.instruction.id, w.sample, cfg.samples),
          instructionId: w.instruction.id,
          instruction: w.instruction.text,
          response: clean.response,
          raw,
          stopReason: clean.stopReason,
          hitMaxTokens,
          responseTokens: clean.response === "" ? 0 : m.guard.tokenize(clean.response).length,
          generatedTokens: r.tokens.length,
          fewShotIds: built[j]!.fewShotIds,
          sampling: recordedSampling(sampling),
          seed: seeds[j]!,
        };
      };
      let records: Omit<SftExample, "critic">[];
      // The pair critic judges every non-empty response; an empty one gets no verdict.
      const verdicts: SftExample["critic"][] = batch.map(() => null);
      try {
        records = await m.batch(async ({ generator, critic }) => {
          const recs = (await generator.generate(requests, { signal: ctx.signal })).map(toRecord);
          if (params.critic.enabled) {
            const judged = recs.map((r, j) => ({ r, j })).filter(({ r }) => r.response.trim() !== "");
            const scores = await critic.scorePairs(judged.map(({ r }) => ({ id: r.id, instruction: r.instruction, response: r.response })), { threshold: params.critic.threshold, signal: ctx.signal });
            judged.forEach(({ j }, i) => (verdicts[j] = scores[i]!.verdict));
          }
          return recs;
        });
      } catch (e) {
        if (ctx.signal.aborted) return;
        throw e;
      }
      records.forEach((r, j) => out.write({ ...r, critic: verdicts[j]! }));
      cur.done += batch.length;
      if (stops) cur.specialTokenStops = (cur.specialTokenStops ?? 0) + stops;
      out.commit(structuredClone(cur));
      task.update(cur.done);
    }
    task.finish();
    ctx.provenance.extra.specialTokenStops = cur.specialTokenStops ?? 0;
    ctx.log.info(`responses: ${cur.done} responses written${cur.specialTokenStops ? ` (${cur.specialTokenStops} ended at a generated special token)` : ""}`);
  },
});
