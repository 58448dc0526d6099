// The `instructions` stage (SPEC §1 stage 2): candidate instructions by few-shot
// numbered-list continuation, normalised, exact and near-duplicates removed (the
// index is seeded with the pool's seed tasks), judged by the instruction critic.
//
// Determinism and resume: list prompt c (c = 0, 1, ...) is built from
// (stage seed, "list-c") and sampled with seed deriveSeed(stage seed,
// "instruction-call", c); calls run in fixed batches; after each batch the new
// records are committed with a cursor (calls made, instructions produced, stats).
// An interrupted stage rebuilds the duplicate index from the committed records and
// continues at the next batch, so the output equals an uninterrupted run's.
import { definePlugin } from "../../core/plugin.ts";
import { extractInstructions } from "../prompts/clean.ts";
import { DuplicateIndex, normalizeInstruction } from "../prompts/dedupe.ts";
import { SEED_TASKS } from "../prompts/pool.ts";
import { buildInstructionListPrompt } from "../prompts/prompts.ts";
import { deriveSeed, Rng } from "../prompts/rng.ts";
import { recordedSampling, rawWithStop, type GenerationRequest, type GenerationResult } from "../shared/generation.ts";
import { InstructionKind, ModelInfoKind, type Instruction } from "../shared/kinds.ts";
import { INSTRUCTION_DEFAULTS, INSTRUCTION_PARAM_KEYS, InstructionParams, InstructionsConfig } from "./config.ts";
import type { Critic } from "../critic/critic.ts";
import { cutAtSpecialToken, provenanceExtra, resolveParams, stageModel } from "./common.ts";
import { shardShare } from "./pilot.ts";

export const INSTRUCTIONS_VERSION = "1.0.0";

/** Stop list generation at a blank line: the list ends there (parseInstructionList). */
export const LIST_STOP = ["\n\n"];

const MAX_EXAMPLES = 20;

export interface InstructionStats {
  calls: number;
  hitMaxTokens: number;
  /** Candidates that passed cleaning (before the guard and dedupe). */
  candidates: number;
  rejected: Record<string, number>;
  rejectedExamples: { text: string; reason: string }[];
  exactDuplicates: number;
  nearDuplicates: number;
  unique: number;
  criticAccepted: number;
  criticRejected: number;
  fromPool: number;
  /** List continuations ended early by a generated special token. */
  specialTokenStops: number;
}

interface Cursor {
  calls: number;
  produced: number;
  written: number;
  poolDone: boolean;
  stats: InstructionStats;
}

function emptyStats(): InstructionStats {
  return { calls: 0, hitMaxTokens: 0, candidates: 0, rejected: {}, rejectedExamples: [], exactDuplicates: 0, nearDuplicates: 0, unique: 0, criticAccepted: 0, criticRejected: 0, fromPool: 0, specialTokenStops: 0 };
}

export function instructionId(shard: number, n: number): string {
  return `ins-${shard}-${String(n).padStart(5, "0")}`;
}

export default definePlugin({
  name: "instructions",
  version: INSTRUCTIONS_VERSION,
  description: "generate instructions by numbered-list continuation; normalise, dedupe (exact + near), instruction critic (pilot or scale mode)",
  config: InstructionsConfig,
  consumes: { model: ModelInfoKind },
  produces: { instructions: InstructionKind },
  shardable: true,
  async run(ctx) {
    const cfg = ctx.config;
    const m = await stageModel(ctx.services, ctx.inputs.model, { signal: ctx.signal, log: ctx.log });
    const { params, pilot } = await resolveParams({
      config: cfg,
      keys: INSTRUCTION_PARAM_KEYS,
      defaults: INSTRUCTION_DEFAULTS,
      schema: InstructionParams,
      plugin: "instructions",
      stageId: ctx.stage.id,
      modelSha256: m.info.sha256,
      readManifest: ctx.readManifest,
    });
    const shardIndex = ctx.shard?.index ?? 0;
    const target = shardShare(cfg.count, ctx.shard);
    const maxCalls = cfg.maxCalls ?? Math.max(64, 8 * target);
    const sampling = params.sampling;
    Object.assign(ctx.provenance.extra, provenanceExtra(m), { mode: cfg.mode, parameters: params, target, maxCalls, ...(pilot && { pilot }) });
    ctx.provenance.extra.scorer = await m.selectScorer(cfg.scorer, params.critic.enabled);
    if (pilot) ctx.log.info(`instructions: scale mode, parameters from the passed pilot ${pilot.runId} (stage '${pilot.stage}', QC '${pilot.qcStage}')`);

    const out = ctx.outputs.instructions;
    const cur: Cursor = (out.cursor as Cursor | null) ?? { calls: 0, produced: 0, written: 0, poolDone: false, stats: emptyStats() };
    const stats = cur.stats;
    // The duplicate index: seed tasks, then everything already committed.
    const index = new DuplicateIndex({ threshold: params.nearDuplicateThreshold });
    for (const t of SEED_TASKS) index.insert(t.id, t.text);
    if (cur.written > 0) for await (const r of out.committed()) index.insert(r.id, r.text);

    const accepts = (r: Instruction) => !r.critic || r.critic.accepted;
    const task = ctx.progress.task("instructions", target);
    task.update(Math.min(cur.produced, target));
    const reject = (text: string, reason: string) => {
      stats.rejected[reason] = (stats.rejected[reason] ?? 0) + 1;
      if (stats.rejectedExamples.length < MAX_EXAMPLES) stats.rejectedExamples.push({ text: text.slice(0, 200), reason });
    };

    /** Judge new instructions, write them in order until the target is reached. */
    const judgeAndWrite = async (items: Omit<Instruction, "critic">[], critic: Critic) => {
      const verdicts = params.critic.enabled && items.length ? await critic.scoreInstructions(items.map((it) => ({ id: it.id, text: it.text })), { threshold: params.critic.threshold, signal: ctx.signal }) : null;
      for (const [i, it] of items.entries()) {
        if (cur.produced >= target) break;
        const rec: Instruction = { ...it, critic: verdicts ? verdicts[i]!.verdict : null };
        out.write(rec);
        cur.written++;
        if (rec.critic) rec.critic.accepted ? stats.criticAccepted++ : stats.criticRejected++;
        if (accepts(rec)) cur.produced++;
        if (it.origin === "pool") stats.fromPool++;
      }
    };

    /** Candidates of one batch of list continuations: cleaned, guarded, deduplicated. */
    const collect = (results: GenerationResult[], calls: number[], seeds: number[], built: { fewShotIds: string[] }[]) => {
      const fresh: Omit<Instruction, "critic">[] = [];
      let nextId = cur.written;
      results.forEach((generated, j) => {
        stats.calls++;
        const { result: r, cut } = cutAtSpecialToken(generated, m);
        if (cut) stats.specialTokenStops++;
        const hit = r.stop === "length";
        if (hit) stats.hitMaxTokens++;
        const ext = extractInstructions(rawWithStop(r), { hitMaxTokens: hit, minWords: params.minWords, maxChars: params.maxChars });
        for (const x of ext.rejected) reject(x.text, x.reason);
        for (const text of ext.accepted) {
          stats.candidates++;
          // Text llama.cpp would read as a special token (e.g. a user-defined one) never
          // becomes an instruction: it would reach every later prompt and SFT.
          if (m.guard.containsSpecialText(text)) {
            reject(text, "special-token");
            continue;
          }
          const id = instructionId(shardIndex, nextId);
          const v = index.add(id, text);
          if (v.kind === "exact") stats.exactDuplicates++;
          else if (v.kind === "near") stats.nearDuplicates++;
          if (v.kind !== "unique") continue;
          stats.unique++;
          nextId++;
          fresh.push({ id, text, normalized: normalizeInstruction(text), origin: "generated", seed: seeds[j]!, sampling: recordedSampling(sampling), fewShotIds: built[j]!.fewShotIds });
        }
      });
      if (calls.length !== results.length) throw new Error(`generator returned ${results.length} results for ${calls.length} requests`);
      return fresh;
    };

    while (cur.produced < target && cur.calls < maxCalls) {
      if (ctx.signal.aborted) return;
      const n = Math.min(cfg.batch, maxCalls - cur.calls);
      const calls = Array.from({ length: n }, (_, j) => cur.calls + j);
      const built = calls.map((c) => buildInstructionListPrompt({ seed: ctx.seed, key: `list-${c}`, k: params.k }));
      const seeds = calls.map((c) => deriveSeed(ctx.seed, "instruction-call", c));
      const requests: GenerationRequest[] = calls.map((c, j) => ({
        prompt: m.guard.tokenizePrompt(built[j]!.prompt, `instruction-list:${shardIndex}:${c}`),
        sampling: { ...sampling, minP: 0, seed: seeds[j]!, stop: LIST_STOP },
      }));
      try {
        await m.batch(async ({ generator, critic }) => {
          const results = await generator.generate(requests, { signal: ctx.signal });
          const fresh = collect(results, calls, seeds, built);
          await judgeAndWrite(fresh, critic);
        });
      } catch (e) {
        if (ctx.signal.aborted) return;
        throw e;
      }
      cur.calls += n;
      out.commit(structuredClone(cur));
      task.update(Math.min(cur.produced, target), { calls: cur.calls, unique: stats.unique });
    }

    if (cur.produced < target && cfg.poolFill && !cur.poolDone) {
      const used = new Set<string>();
      for await (const r of out.committed()) if (r.origin === "pool") used.add(normalizeInstruction(r.text));
      const pool = new Rng(ctx.seed, "pool-fill").shuffle(SEED_TASKS).filter((t) => !used.has(normalizeInstruction(t.text)));
      const items = pool.map((t, j) => ({ id: instructionId(shardIndex, cur.written + j), text: t.text, normalized: normalizeInstruction(t.text), origin: "pool" as const, seed: null, sampling: null, fewShotIds: [] }));
      await m.batch(({ critic }) => judgeAndWrite(items, critic));
      cur.poolDone = true;
      out.commit(structuredClone(cur));
      ctx.log.info(`instructions: topped up from the seed-task pool (${stats.fromPool} pool tasks)`);
    }
    task.update(Math.min(cur.produced, target));
    task.finish();

    const summary = `${cur.produced}/${target} instructions${params.critic.enabled ? " accepted by the critic" : ""} (${cur.written} written, ${stats.fromPool} from the pool) from ${stats.calls} list continuations; candidates ${stats.candidates}, duplicates ${stats.exactDuplicates} exact + ${stats.nearDuplicates} near`;
    ctx.gate({ name: "instruction-yield", passed: cur.produced >= target, summary, details: { produced: cur.produced, target } });
    Object.assign(ctx.provenance.extra, { stats: { ...stats, rejectedExamples: undefined }, produced: cur.produced, written: cur.written });
    await ctx.writeFile("instructions-stats.json", JSON.stringify({ target, produced: cur.produced, written: cur.written, maxCalls, parameters: params, stats }, null, 2) + "\n");
    ctx.log.info(`instructions: ${summary}`);
  },
});
