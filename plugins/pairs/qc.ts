// The pairs stage's QC gate: is this set fit to train DPO on? Computed over the whole set —
// the stage's own output, or the merged shards' (the stage's `merge`) — from the records and
// the work counts each run (shard) recorded. Pure, so tests check it on hand-made pairs.
// Thresholds (documented defaults, specs/prompts.md §10.1); a null threshold turns a gate
// off (reported, always passes); an enabled gate with nothing to measure fails.
import { z } from "zod";
import { findChatMarkup, findLeakage } from "../prompts/clean.ts";
import { normalizeInstruction } from "../prompts/dedupe.ts";
import { gate } from "../qc/metrics.ts";
import type { PreferencePair, QcReport } from "../shared/kinds.ts";
import type { NegativeKindName } from "./config.ts";
import { KINDS } from "./mix.ts";
import { normalizeText } from "./text.ts";

const rate = z.number().min(0).max(1);

export const PairsQcConfig = z.strictObject({
  /** At least this many pairs (DPO on nothing proves nothing). */
  minPairs: z.number().int().min(0).nullable().default(1),
  /** best-of-N pairs kept / instructions tried must be >= this: below it the critic cannot tell the SFT model's samples apart (or they are all unfit). Off when best-of-N is disabled. */
  minBestOfNKept: rate.nullable().default(0.25),
  /** Duplicates (dropped while making pairs, plus any left in the whole set, e.g. across shards) / pairs made must be <= this. */
  maxDuplicateRate: rate.nullable().default(0.05),
  /** Pairs whose chosen and rejected are the same text (normalised) must be <= this: they teach nothing and their DPO gradient is zero. */
  maxIdentical: z.number().int().min(0).nullable().default(0),
  /** Pairs whose chosen side holds a delimiter (`Instruction:`, `Response:`, `END`) or chat markup must be <= this: DPO would push it up. */
  maxChosenLeakage: z.number().int().min(0).nullable().default(0),
  /** Each negative kind's share of the synthetic pairs must be within this of its configured (normalised) share. Off when synthetic pairs are disabled. */
  mixTolerance: rate.nullable().default(0.05),
  /** mean(chosen tokens − rejected tokens) must be <= this: DPO rewards length, so chosen sides longer on average teach verbosity. Rejected sides longer (verbose and run-on negatives) are by design, so there is no lower bound. */
  maxMeanLengthDifference: z.number().nullable().default(10),
});
export type PairsQcConfig = z.output<typeof PairsQcConfig>;

/** What one run (or shard) of the stage counted besides its records. */
export interface PairsCounts {
  /** Work items of this run: instructions for best-of-N, chosen examples for synthetic. */
  work: { bestOfN: number; synthetic: number };
  skipped: Record<string, number>;
  negativesMadeBy: Record<string, number>;
  /** Pairs dropped as duplicates of an earlier one. */
  duplicates: number;
}

export function sumCounts(parts: readonly PairsCounts[]): PairsCounts {
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
    return into;
  };
  const sorted = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    work: { bestOfN: parts.reduce((s, p) => s + p.work.bestOfN, 0), synthetic: parts.reduce((s, p) => s + p.work.synthetic, 0) },
    skipped: sorted(parts.reduce((r, p) => add(r, p.skipped), {} as Record<string, number>)),
    negativesMadeBy: sorted(parts.reduce((r, p) => add(r, p.negativesMadeBy), {} as Record<string, number>)),
    duplicates: parts.reduce((s, p) => s + p.duplicates, 0),
  };
}

type Gate = QcReport["gates"][number];
type Checked = Pick<PreferencePair, "instruction" | "chosen" | "rejected" | "source" | "negativeKind" | "chosenTokens" | "rejectedTokens">;

export interface PairsQcResult {
  passed: boolean;
  gates: Gate[];
  /** Pairs in the set whose (instruction, chosen, rejected) repeats an earlier one's. */
  duplicatesInSet: number;
  identical: number;
  chosenLeakage: number;
  /** Each kind's share of the synthetic pairs and its configured share. */
  mix: Record<NegativeKindName, { share: number | null; target: number }>;
  meanLengthDifference: number | null;
}

export function pairsQc(pairs: readonly Checked[], counts: PairsCounts, o: { qc: PairsQcConfig; mix: Record<NegativeKindName, number>; bestOfN: boolean; synthetic: boolean }): PairsQcResult {
  const n = pairs.length;
  const seen = new Set<string>();
  let duplicatesInSet = 0, identical = 0, chosenLeakage = 0;
  for (const p of pairs) {
    const key = `${normalizeInstruction(p.instruction)}\0${normalizeText(p.chosen)}\0${normalizeText(p.rejected)}`;
    if (seen.has(key)) duplicatesInSet++;
    seen.add(key);
    if (normalizeText(p.chosen) === normalizeText(p.rejected)) identical++;
    if (findLeakage(p.chosen).length > 0 || findChatMarkup(p.chosen) !== null) chosenLeakage++;
  }
  const bon = pairs.filter((p) => p.source === "best-of-n").length;
  const syn = pairs.filter((p) => p.source === "synthetic");
  const total = KINDS.reduce((s, k) => s + o.mix[k], 0);
  const mix = Object.fromEntries(KINDS.map((k) => [k, { share: syn.length ? syn.filter((p) => p.negativeKind === k).length / syn.length : null, target: o.mix[k] / total }])) as PairsQcResult["mix"];
  const worst = syn.length ? Math.max(...KINDS.map((k) => Math.abs(mix[k].share! - mix[k].target))) : null;
  const worstKind = worst === null ? null : KINDS.find((k) => Math.abs(mix[k].share! - mix[k].target) === worst)!;
  const made = n + counts.duplicates;
  const dups = counts.duplicates + duplicatesInSet;
  const meanLengthDifference = n ? pairs.reduce((s, p) => s + p.chosenTokens - p.rejectedTokens, 0) / n : null;
  const off = (enabled: boolean, t: number | null) => (enabled ? t : null);
  const gates: Gate[] = [
    gate("pairs", n, ">=", o.qc.minPairs, (v) => `${v} pairs`, false),
    gate("best-of-n-kept", counts.work.bestOfN ? bon / counts.work.bestOfN : null, ">=", off(o.bestOfN, o.qc.minBestOfNKept), (v) => `best-of-N pairs kept ${bon}/${counts.work.bestOfN} = ${v}`, true),
    gate("duplicate-rate", made ? dups / made : null, "<=", o.qc.maxDuplicateRate, (v) => `duplicates ${dups}/${made} = ${v}`, true),
    gate("identical-sides", n ? identical : null, "<=", o.qc.maxIdentical, (v) => `chosen = rejected in ${v}/${n} pairs`, false),
    gate("chosen-leakage", n ? chosenLeakage : null, "<=", o.qc.maxChosenLeakage, (v) => `delimiters or chat markup in ${v}/${n} chosen sides`, false),
    gate("kind-mix", worst, "<=", off(o.synthetic, o.qc.mixTolerance), (v) => `largest share off the mix ${v}${worstKind ? ` (${worstKind})` : ""}`, true),
    gate("length-difference", meanLengthDifference, "<=", o.qc.maxMeanLengthDifference, (v) => `mean chosen − rejected ${v} tokens`, false),
  ];
  return { passed: gates.every((g) => g.passed), gates, duplicatesInSet, identical, chosenLeakage, mix, meanLengthDifference };
}
