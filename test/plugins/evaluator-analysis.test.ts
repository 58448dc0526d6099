// analyse(): pairing, BH within a pair, default pairs, the gate's scopes and
// direction, length summaries.
import { describe, expect, test } from "bun:test";
import { analyse, type Outcome } from "../../plugins/evaluator/analysis.ts";
import type { TestType } from "../../plugins/evaluator/checks/spec.ts";

function outcomes(pattern: Record<string, string>): Outcome[] {
  // pattern: type -> string of 1/0 per item (strict success); loose = strict
  return Object.entries(pattern).flatMap(([type, bits]) =>
    [...bits].map((b, k) => ({ id: `${type}-${k}`, type: type as TestType, success: { strict: b === "1", loose: b === "1" }, words: k, tokens: k, stop: "eos" as const })),
  );
}

const ones = (n: number) => "1".repeat(n);
const zeros = (n: number) => "0".repeat(n);

describe("analyse", () => {
  const base = outcomes({ factual: ones(5) + zeros(25), list: zeros(30) });
  const sft = outcomes({ factual: ones(30), list: ones(12) + zeros(18) });
  const opts = { metric: "strict" as const, alpha: 0.01, confidence: 0.95 };

  test("rates per variant and scope, in SPEC type order then overall", () => {
    const a = analyse([{ name: "base", items: base }, { name: "sft", items: sft }], opts);
    expect(a.types).toEqual(["factual", "list"]);
    expect(a.rates.map((r) => `${r.variant}:${r.scope}:${r.strict.successes}/${r.n}`)).toEqual(["base:factual:5/30", "base:list:0/30", "base:overall:5/60", "sft:factual:30/30", "sft:list:12/30", "sft:overall:42/60"]);
  });

  test("paired tables, tests and BH-adjusted p within the pair", () => {
    const a = analyse([{ name: "base", items: base }, { name: "sft", items: sft }], opts);
    const f = a.pairs.find((p) => p.scope === "factual")!;
    expect(f.table).toEqual({ a: 5, b: 25, c: 0, d: 0 });
    expect(f.test).toBe("chi-square-cc");
    const l = a.pairs.find((p) => p.scope === "list")!;
    expect(l.test).toBe("exact-binomial");
    expect(l.p).toBeCloseTo(2 * 0.5 ** 12, 15);
    // BH over two p-values: the larger stays, the smaller becomes min(2p, larger)
    const [small, large] = [f.p, l.p].sort((x, y) => x - y) as [number, number];
    expect(Math.min(f.pAdjusted, l.pAdjusted)).toBeCloseTo(Math.min(2 * small, large), 15);
    expect(Math.max(f.pAdjusted, l.pAdjusted)).toBeCloseTo(large, 15);
    const overall = a.pairs.find((p) => p.scope === "overall")!;
    expect(overall.pAdjusted).toBe(overall.p);
    expect(overall.difference).toBeCloseTo(37 / 60, 12);
  });

  test("each pair row carries Newcombe's CI of candidate − baseline (Newcombe 1998, Table II example (a))", () => {
    // 50 paired items: 36 both succeed, 12 only the candidate (sft), 2 only the baseline, 0 neither.
    const cand = outcomes({ factual: ones(36) + ones(12) + zeros(2) });
    const basel = outcomes({ factual: ones(36) + zeros(12) + ones(2) });
    const a = analyse([{ name: "base", items: basel }, { name: "sft", items: cand }], opts);
    expect(a.differenceCiMethod).toMatch(/Newcombe 1998, method 10/);
    const overall = a.pairs.find((p) => p.scope === "overall")!;
    expect([overall.candidate, overall.baseline]).toEqual(["sft", "base"]);
    expect(overall.table).toEqual({ a: 36, b: 12, c: 2, d: 0 });
    expect(Math.round(overall.differenceCi!.lower * 1e4) / 1e4).toBe(0.0569);
    expect(Math.round(overall.differenceCi!.upper * 1e4) / 1e4).toBe(0.3404);
    // The other way round, the interval is negated.
    const rev = analyse([{ name: "base", items: basel }, { name: "sft", items: cand }], { ...opts, pairs: [["base", "sft"]] }).pairs.find((p) => p.scope === "overall")!;
    expect(rev.differenceCi!.lower).toBeCloseTo(-overall.differenceCi!.upper, 12);
    expect(rev.differenceCi!.upper).toBeCloseTo(-overall.differenceCi!.lower, 12);
  });

  test("default pairs: each variant against every earlier one; explicit pairs override", () => {
    const dpo = sft;
    const three = [{ name: "base", items: base }, { name: "sft", items: sft }, { name: "dpo", items: dpo }];
    const a = analyse(three, opts);
    expect([...new Set(a.pairs.map((p) => `${p.candidate}>${p.baseline}`))]).toEqual(["sft>base", "dpo>base", "dpo>sft"]);
    const b = analyse(three, { ...opts, pairs: [["dpo", "sft"]] });
    expect([...new Set(b.pairs.map((p) => `${p.candidate}>${p.baseline}`))]).toEqual(["dpo>sft"]);
    expect(b.pairs.find((p) => p.scope === "overall")!.test).toBe("none");
    expect(() => analyse(three, { ...opts, pairs: [["dpo", "nope"]] })).toThrow(/no variant 'nope'/);
  });

  test("the gate: overall and per-type scopes; the reverse pair is swapped, not reused as is", () => {
    const vs = [{ name: "base", items: base }, { name: "sft", items: sft }];
    const overall = analyse(vs, { ...opts, gate: { alpha: 0.01, compare: ["sft", "base"], scope: "overall" } }).gate!;
    expect(overall.passed).toBe(true);
    // list: p = 2^-11 ~ 4.9e-4, BH-adjusted below 0.01 too -> per_type passes as well
    expect(analyse(vs, { ...opts, gate: { alpha: 0.01, compare: ["sft", "base"], scope: "per_type" } }).gate!.passed).toBe(true);
    // a stricter alpha fails per type but the summary names the type
    const strict = analyse(vs, { ...opts, gate: { alpha: 1e-4, compare: ["sft", "base"], scope: "per_type" } }).gate!;
    expect(strict.passed).toBe(false);
    expect(strict.summary).toContain("list");
    // base vs sft (only sft>base was analysed): significant, but base is worse -> fails
    const reverse = analyse(vs, { ...opts, gate: { alpha: 0.01, compare: ["base", "sft"], scope: "overall" } }).gate!;
    expect(reverse.passed).toBe(false);
    expect(reverse.summary).toContain("base is not better");
  });

  test("loose metric uses loose outcomes", () => {
    const x = outcomes({ factual: "0000" }).map((o, k) => ({ ...o, success: { strict: false, loose: k < 3 } }));
    const a = analyse([{ name: "x", items: x }], { ...opts, metric: "loose" });
    expect(a.rates.find((r) => r.scope === "overall")!.loose.successes).toBe(3);
    expect(a.pairs).toEqual([]);
  });

  test("items must be the same for every variant", () => {
    expect(() => analyse([{ name: "a", items: base }, { name: "b", items: base.slice(1) }], opts)).toThrow(/different items/);
    expect(() => analyse([{ name: "a", items: base }, { name: "a", items: base }], opts)).toThrow(/unique/);
  });

  test("length summaries share histogram edges across variants", () => {
    const a = analyse([{ name: "base", items: base }, { name: "sft", items: sft }], opts);
    expect(a.lengths[0]!.histogram.edges).toEqual(a.lengths[1]!.histogram.edges);
    expect(a.lengths[0]!.histogram.counts.reduce((s, c) => s + c, 0)).toBe(60);
    expect(a.lengths[0]!.median).toBe(14.5); // words 0..29 twice
    expect(a.lengths[0]!.max).toBe(29);
  });
});
