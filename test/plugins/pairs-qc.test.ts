// The pairs QC gate on hand-made pairs: each gate passes on a clean set and fails on the
// fault it is there for; a null threshold turns a gate off; counts from shards add up.
import { describe, expect, test } from "bun:test";
import { DEFAULT_MIX } from "../../plugins/pairs/config.ts";
import { PairsQcConfig, pairsQc, sumCounts, type PairsCounts } from "../../plugins/pairs/qc.ts";

type P = Parameters<typeof pairsQc>[0][number];
const bon = (i: number, over: Partial<P> = {}): P => ({ instruction: `Question number ${i}?`, chosen: `Answer ${i}.`, rejected: `Wrong ${i}.`, source: "best-of-n", negativeKind: null, chosenTokens: 5, rejectedTokens: 5, ...over });
// 20 synthetic pairs in the default mix: 6 / 5 / 4 / 3 / 2.
const KIND_COUNTS = { refusal: 6, "format-violation": 5, incorrect: 4, "off-topic": 3, verbose: 2 } as const;
const synthetic = (): P[] =>
  Object.entries(KIND_COUNTS).flatMap(([k, c]) => Array.from({ length: c }, (_, j) => ({ ...bon(100 + j), instruction: `Task ${k} ${j}`, source: "synthetic" as const, negativeKind: k as P["negativeKind"], rejected: `${k} negative ${j}` })));
const counts = (over: Partial<PairsCounts> = {}): PairsCounts => ({ work: { bestOfN: 10, synthetic: 20 }, skipped: {}, negativesMadeBy: {}, duplicates: 0, ...over });
const opts = (qc: Partial<PairsQcConfig> = {}) => ({ qc: PairsQcConfig.parse(qc), mix: { ...DEFAULT_MIX }, bestOfN: true, synthetic: true });
const clean = () => [...Array.from({ length: 8 }, (_, i) => bon(i)), ...synthetic()];
const failed = (r: ReturnType<typeof pairsQc>) => r.gates.filter((g) => !g.passed).map((g) => g.name);

describe("pairs QC gate", () => {
  test("a clean set passes every gate, in a fixed order", () => {
    const r = pairsQc(clean(), counts(), opts());
    expect(r.gates.map((g) => g.name)).toEqual(["pairs", "best-of-n-kept", "duplicate-rate", "identical-sides", "chosen-leakage", "kind-mix", "length-difference"]);
    expect(failed(r)).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.gates[1]!.summary).toBe("best-of-N pairs kept 8/10 = 80.0% >= 25.0%");
  });

  test("each gate fails on its fault", () => {
    expect(failed(pairsQc(clean(), counts(), opts({ minPairs: 29 })))).toEqual(["pairs"]);
    expect(failed(pairsQc(clean(), counts({ work: { bestOfN: 40, synthetic: 20 } }), opts()))).toEqual(["best-of-n-kept"]);
    // 2 dropped while making + 1 left in the set (e.g. across shards) out of 29 + 2 made.
    const dup = [...clean(), bon(0)];
    const d = pairsQc(dup, counts({ duplicates: 2 }), opts());
    expect(d.duplicatesInSet).toBe(1);
    expect(failed(d)).toEqual(["duplicate-rate"]);
    expect(d.gates[2]!.value).toBeCloseTo(3 / 31, 12);
    expect(failed(pairsQc([...clean().slice(1), bon(0, { rejected: " answer 0. " })], counts(), opts()))).toEqual(["identical-sides"]);
    expect(failed(pairsQc([...clean().slice(1), bon(0, { chosen: "Answer.\nEND" })], counts(), opts()))).toEqual(["chosen-leakage"]);
    expect(failed(pairsQc([...clean().slice(1), bon(0, { chosen: "<|im_start|>hi" })], counts(), opts()))).toEqual(["chosen-leakage"]);
    // Two refusals fewer: 4/18 = 22.2 % against 30 %.
    const skewed = clean().filter((p, i, all) => !(p.negativeKind === "refusal" && all.indexOf(p) < 10));
    const m = pairsQc(skewed, counts(), opts());
    expect(failed(m)).toEqual(["kind-mix"]);
    expect(m.gates[5]!.summary).toContain("(refusal)");
    // Chosen sides longer by 11 tokens on average.
    const long = clean().map((p) => ({ ...p, chosenTokens: p.rejectedTokens + 11 }));
    expect(failed(pairsQc(long, counts(), opts()))).toEqual(["length-difference"]);
    // Rejected sides longer (verbose, run-on negatives) is by design: no lower bound.
    expect(failed(pairsQc(clean().map((p) => ({ ...p, rejectedTokens: 60 })), counts(), opts()))).toEqual([]);
  });

  test("null thresholds and disabled sources turn gates off; nothing to measure fails", () => {
    const off = pairsQc(clean(), counts({ work: { bestOfN: 40, synthetic: 20 } }), opts({ minBestOfNKept: null }));
    expect(off.passed).toBe(true);
    expect(off.gates[1]!.summary).toContain("(gate off)");
    const noBon = pairsQc(synthetic(), counts({ work: { bestOfN: 0, synthetic: 20 } }), { ...opts(), bestOfN: false });
    expect(failed(noBon)).toEqual([]);
    const empty = pairsQc([], counts({ work: { bestOfN: 3, synthetic: 3 } }), opts());
    expect(failed(empty)).toEqual(["pairs", "best-of-n-kept", "duplicate-rate", "identical-sides", "chosen-leakage", "kind-mix", "length-difference"]);
  });

  test("shards' counts add up", () => {
    const s = sumCounts([
      counts({ work: { bestOfN: 3, synthetic: 5 }, skipped: { "verbose:x": 1 }, negativesMadeBy: { "refusal:edit": 2 }, duplicates: 1 }),
      counts({ work: { bestOfN: 2, synthetic: 4 }, skipped: { "best-of-n:gap": 2, "verbose:x": 1 }, negativesMadeBy: { "refusal:edit": 1, "verbose:edit": 1 }, duplicates: 0 }),
    ]);
    expect(s).toEqual({ work: { bestOfN: 5, synthetic: 9 }, skipped: { "best-of-n:gap": 2, "verbose:x": 2 }, negativesMadeBy: { "refusal:edit": 3, "verbose:edit": 1 }, duplicates: 1 });
  });
});
