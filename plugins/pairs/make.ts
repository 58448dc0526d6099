// One batch of pairs from each source. Both functions are pure in their inputs (the batch,
// the stage seed, the model): the same batch gives the same pairs in a full run, a
// resumed one or another shard layout of the same seed.
import type { Critic } from "../critic/critic.ts";
import { cutAtSpecialToken } from "../generate/common.ts";
import { cleanResponse, responseStopStrings } from "../prompts/clean.ts";
import { normalizeInstruction } from "../prompts/dedupe.ts";
import { negativePrompt } from "../prompts/negatives.ts";
import { SEED_TASKS } from "../prompts/pool.ts";
import { buildResponsePrompt, trainingText } from "../prompts/prompts.ts";
import { deriveSeed, Rng } from "../prompts/rng.ts";
import { rawWithStop, type GenerationResult, type TextGenerator } from "../shared/generation.ts";
import type { PreferencePair } from "../shared/kinds.ts";
import type { PairsConfig } from "./config.ts";
import { rankBestOfN, fitToReject, type Candidate } from "./best-of-n.ts";
import { checkNegative, formatViolationEdit, incorrectEdit, leastRelated, refusalEdit, verboseEdit } from "./negatives.ts";
import type { InstructionItem, NegativeItem, WorkLists } from "./work.ts";
import type { PairsModel } from "./model.ts";

export interface BatchResult {
  pairs: PreferencePair[];
  /** Items that gave no pair, by reason. */
  skipped: Record<string, number>;
  /** Synthetic negatives by maker: "<kind>:model" or "<kind>:edit". */
  made: Record<string, number>;
}

const STOP = responseStopStrings(1);
const bump = (r: Record<string, number>, k: string) => (r[k] = (r[k] ?? 0) + 1);

function clean(m: Pick<PairsModel, "guard" | "model">, g: GenerationResult) {
  const { result } = cutAtSpecialToken(g, m);
  return cleanResponse(rawWithStop(result), { hitMaxTokens: result.stop === "length", blankLines: 1 });
}

/** Both sides must become DPO sequences (specs/prompts.md §7); the rejected may hold delimiters. */
function trainable(p: Pick<PreferencePair, "instruction" | "chosen" | "rejected">): boolean {
  try {
    trainingText(p.instruction, p.chosen);
    trainingText(p.instruction, p.rejected, { allowDelimiters: true });
    return true;
  } catch {
    return false;
  }
}

export async function bestOfNBatch(m: PairsModel, w: { sft: TextGenerator; critic: Critic }, items: readonly InstructionItem[], cfg: PairsConfig["bestOfN"], seed: number, signal: AbortSignal): Promise<BatchResult> {
  const n = cfg.n;
  const work = items.flatMap((it) => Array.from({ length: n }, (_, s) => ({ it, s, seed: deriveSeed(seed, "best-of-n", it.instructionId, s) })));
  const requests = work.map(({ it, s, seed: sd }) => ({
    prompt: m.guard.tokenizePrompt(buildResponsePrompt(it.instruction, { seed, key: it.instructionId, k: cfg.k }).prompt, `best-of-n:${it.instructionId}#${s}`),
    sampling: { ...cfg.sampling, minP: 0, seed: sd, stop: STOP },
  }));
  const generated = await w.sft.generate(requests, { signal });
  const cands = work.map(({ it, s, seed: sd }, j) => {
    const c = clean(m, generated[j]!);
    return { id: `bon-${it.instructionId}-${s}`, response: c.response, stopReason: c.stopReason, seed: sd, margin: Number.NaN, instruction: it.instruction };
  });
  const judged = cands.filter((c) => fitToReject(c));
  const scores = await w.critic.scorePairs(judged.map((c) => ({ id: c.id, instruction: c.instruction, response: c.response })), { signal });
  judged.forEach((c, i) => (c.margin = scores[i]!.verdict.margin));
  const out: BatchResult = { pairs: [], skipped: {}, made: {} };
  items.forEach((it, i) => {
    const mine: Candidate[] = cands.slice(i * n, (i + 1) * n).filter((c) => !Number.isNaN(c.margin));
    const r = rankBestOfN(mine, cfg.minMarginGap);
    if ("skip" in r) return void bump(out.skipped, `best-of-n:${r.skip}`);
    const pair: PreferencePair = {
      id: `pair-bon-${it.instructionId}`,
      instructionId: it.instructionId,
      instruction: it.instruction,
      chosen: r.chosen.response,
      rejected: r.rejected.response,
      source: "best-of-n",
      chosenId: r.chosen.id,
      rejectedId: r.rejected.id,
      negativeKind: null,
      chosenMargin: r.chosen.margin,
      rejectedMargin: r.rejected.margin,
      marginGap: r.gap,
      chosenTokens: m.guard.tokenize(r.chosen.response).length,
      rejectedTokens: m.guard.tokenize(r.rejected.response).length,
      seed: r.rejected.seed,
    };
    if (!trainable(pair)) return void bump(out.skipped, "best-of-n:untrainable");
    out.pairs.push(pair);
  });
  return out;
}

/** Other pool entries for an item (another instruction), a seeded sample of at most `k`. */
function others(pool: WorkLists["pool"], it: NegativeItem, rng: Rng, k: number): WorkLists["pool"] {
  const ni = normalizeInstruction(it.instruction);
  const rest = pool.filter((p) => p.id !== it.id && normalizeInstruction(p.instruction) !== ni);
  return rng.sample(rest, Math.min(k, rest.length));
}

export async function syntheticBatch(m: PairsModel, w: { base: TextGenerator; critic: Critic }, items: readonly NegativeItem[], pool: WorkLists["pool"], cfg: PairsConfig["synthetic"], seed: number, signal: AbortSignal): Promise<BatchResult> {
  const out: BatchResult = { pairs: [], skipped: {}, made: {} };
  const tokens = (t: string) => m.guard.tokenize(t).length;
  const check = { tokens, verboseRatio: cfg.verboseRatio, offTopicMaxOverlap: cfg.offTopicMaxOverlap };
  // The base model's attempts at refusals and wrong answers, all in one call.
  const asked = cfg.useModel ? items.filter((it) => it.kind === "refusal" || it.kind === "incorrect") : [];
  const seeds = asked.map((it) => deriveSeed(seed, "negative", it.id, it.kind));
  const generated = await w.base.generate(
    asked.map((it, j) => ({
      prompt: m.guard.tokenizePrompt(negativePrompt(it.kind as "refusal" | "incorrect", it.instruction), `negative:${it.kind}:${it.id}`),
      sampling: { ...cfg.sampling, minP: 0, seed: seeds[j]!, stop: STOP },
    })),
    { signal },
  );
  const fromModel = new Map(asked.map((it, j) => [it.id, { text: clean(m, generated[j]!).response, seed: seeds[j]! }]));

  const made: { it: NegativeItem; rejected: string; rejectedId: string | null; seed: number | null }[] = [];
  for (const it of items) {
    const rng = new Rng(seed, "negative-edit", it.id, it.kind);
    const gen = fromModel.get(it.id);
    if (gen && checkNegative(it.kind, it, gen.text, check) === null) {
      made.push({ it, rejected: gen.text, rejectedId: `neg-${it.id}-${it.kind}`, seed: gen.seed });
      bump(out.made, `${it.kind}:model`);
      continue;
    }
    let rejected: string | null = null;
    let rejectedId: string | null = null;
    switch (it.kind) {
      case "refusal":
        rejected = refusalEdit(rng);
        break;
      case "incorrect":
        rejected = incorrectEdit(it, rng, others(pool, it, rng, 1)[0]?.response ?? null);
        break;
      case "verbose":
        rejected = verboseEdit(it, rng, cfg.verboseRatio);
        break;
      case "format-violation": {
        const o = others(pool, it, rng, 1)[0] ?? null;
        rejected = formatViolationEdit(it, o, rng.pick(SEED_TASKS).text);
        break;
      }
      case "off-topic": {
        const o = leastRelated(it.instruction, others(pool, it, rng, cfg.offTopicCandidates));
        if (o) [rejected, rejectedId] = [o.response, o.id];
        break;
      }
    }
    const why = rejected === null ? "no edit applies" : checkNegative(it.kind, it, rejected, check);
    if (rejected === null || why !== null) {
      bump(out.skipped, `${it.kind}:${why}`);
      continue;
    }
    made.push({ it, rejected, rejectedId, seed: null });
    bump(out.made, `${it.kind}:edit`);
  }
  const kept = made.filter(({ it, rejected }) => {
    const ok = trainable({ instruction: it.instruction, chosen: it.response, rejected });
    if (!ok) bump(out.skipped, `${it.kind}:untrainable`);
    return ok;
  });
  const margins = cfg.judge
    ? (await w.critic.scorePairs(kept.flatMap(({ it, rejected }) => [{ id: `${it.id}:chosen`, instruction: it.instruction, response: it.response }, { id: `${it.id}:${it.kind}`, instruction: it.instruction, response: rejected }]), { signal })).map((s) => s.verdict.margin)
    : null;
  kept.forEach(({ it, rejected, rejectedId, seed: sd }, i) => {
    const cm = margins ? margins[2 * i]! : null;
    const rm = margins ? margins[2 * i + 1]! : null;
    out.pairs.push({
      id: `pair-${it.kind}-${it.id}`,
      instructionId: it.instructionId,
      instruction: it.instruction,
      chosen: it.response,
      rejected,
      source: "synthetic",
      chosenId: it.id,
      rejectedId,
      negativeKind: it.kind,
      chosenMargin: cm,
      rejectedMargin: rm,
      marginGap: cm !== null && rm !== null ? cm - rm : null,
      chosenTokens: tokens(it.response),
      rejectedTokens: tokens(rejected),
      seed: sd,
    });
  });
  return out;
}
