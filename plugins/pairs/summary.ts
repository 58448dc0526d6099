// The pairs QC summary: what a person checks before DPO. Counts by source and kind, the
// critic's margin gaps, and the length difference between rejected and chosen — DPO is
// known to reward length, so a set whose chosen sides are systematically longer (or
// shorter) teaches length, and this says by how much.
import type { PreferencePair } from "../shared/kinds.ts";
import { KINDS } from "./mix.ts";

export interface Dist {
  count: number;
  min: number;
  p10: number;
  median: number;
  mean: number;
  p90: number;
  max: number;
}

export function distribution(xs: readonly number[]): Dist | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!;
  return { count: s.length, min: s[0]!, p10: q(0.1), median: q(0.5), mean: s.reduce((a, b) => a + b, 0) / s.length, p90: q(0.9), max: s.at(-1)! };
}

type Summarized = Pick<PreferencePair, "source" | "negativeKind" | "marginGap" | "chosenTokens" | "rejectedTokens">;

function lengths(ps: readonly Summarized[]) {
  return {
    chosenTokens: distribution(ps.map((p) => p.chosenTokens)),
    rejectedTokens: distribution(ps.map((p) => p.rejectedTokens)),
    /** rejected − chosen, per pair. */
    difference: distribution(ps.map((p) => p.rejectedTokens - p.chosenTokens)),
    /** Pairs whose chosen side is the longer one (DPO would learn "longer is better" from a high share). */
    chosenLonger: ps.filter((p) => p.chosenTokens > p.rejectedTokens).length,
  };
}

export function summarizePairs(pairs: readonly Summarized[], skipped: Record<string, number>) {
  const by = (f: (p: Summarized) => boolean) => pairs.filter(f);
  const bon = by((p) => p.source === "best-of-n");
  const syn = by((p) => p.source === "synthetic");
  const gaps = (ps: readonly Summarized[]) => distribution(ps.flatMap((p) => (p.marginGap === null ? [] : [p.marginGap])));
  return {
    pairs: pairs.length,
    bySource: { "best-of-n": bon.length, synthetic: syn.length },
    byKind: Object.fromEntries(KINDS.map((k) => [k, syn.filter((p) => p.negativeKind === k).length])),
    marginGap: { all: gaps(pairs), "best-of-n": gaps(bon), synthetic: gaps(syn), byKind: Object.fromEntries(KINDS.map((k) => [k, gaps(syn.filter((p) => p.negativeKind === k))])) },
    length: { all: lengths(pairs), "best-of-n": lengths(bon), synthetic: lengths(syn), byKind: Object.fromEntries(KINDS.map((k) => [k, lengths(syn.filter((p) => p.negativeKind === k))])) },
    /** Work items that gave no pair, by reason. */
    skipped,
  };
}
export type PairsSummary = ReturnType<typeof summarizePairs>;
