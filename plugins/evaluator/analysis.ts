// From per-item outcomes to every number of the results (specs/statistics.md):
// rates with Wilson CIs per variant and type, paired McNemar tests with
// BH-adjusted p per pair, Cohen's h, length distributions and the gate.
import { TEST_TYPES, type TestType } from "./checks/spec.ts";
import { benjaminiHochberg, cohensH, EXACT_THRESHOLD, mcnemar, newcombePairedDifference, PAIRED_CI_METHOD, pairedTable, significanceGate, wilson, type McNemarResult, type PairedTable } from "./stats.ts";

export type Metric = "strict" | "loose";
export type Scope = TestType | "overall";

/** What analysis needs of one scored item. */
export interface Outcome {
  id: string;
  type: TestType;
  success: { strict: boolean; loose: boolean };
  words: number;
  tokens: number;
  stop: "eos" | "control" | "length" | "stop";
}

export interface RateRow {
  variant: string;
  scope: Scope;
  n: number;
  strict: { successes: number; rate: number | null; lower: number; upper: number };
  loose: { successes: number; rate: number | null; lower: number; upper: number };
  tokenLimitHits: number;
}

export interface PairRow {
  candidate: string;
  baseline: string;
  scope: Scope;
  n: number;
  table: PairedTable;
  candidateRate: number | null;
  baselineRate: number | null;
  difference: number | null;
  /** CI of `difference` at the analysis's confidence (Newcombe's method 10; specs/statistics.md); null when n = 0. */
  differenceCi: { lower: number; upper: number } | null;
  cohensH: number | null;
  test: McNemarResult["test"];
  statistic: number | null;
  p: number;
  /** BH-adjusted across the types of this pair; the overall row is one pre-specified test, not adjusted. */
  pAdjusted: number;
  significant: boolean;
}

export interface LengthSummary {
  variant: string;
  n: number;
  mean: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  /** Histogram of response lengths in words over shared bin edges (same for all variants). */
  histogram: { edges: number[]; counts: number[] };
}

export interface GateConfig {
  alpha: number;
  compare: [string, string];
  scope: "overall" | "per_type";
}

export interface GateOutcome {
  /** `significance <candidate> vs <baseline>`: one gate per compared pair. */
  name: string;
  candidate: string;
  baseline: string;
  alpha: number;
  scope: "overall" | "per_type";
  passed: boolean;
  summary: string;
}

export interface Analysis {
  metric: Metric;
  alpha: number;
  confidence: number;
  /** The method of every pair's `differenceCi`. */
  differenceCiMethod: string;
  exactThreshold: number;
  types: TestType[];
  rates: RateRow[];
  pairs: PairRow[];
  lengths: LengthSummary[];
  /** One significance gate per configured comparison, in order. */
  gates: GateOutcome[];
  /** The first of `gates` (null when none): kept for readers of older results. */
  gate: GateOutcome | null;
}

export interface AnalysisOptions {
  metric: Metric;
  /** Significance level for `significant` flags and the gate. */
  alpha: number;
  confidence: number;
  exactThreshold?: number;
  /** [candidate, baseline] pairs; default every later variant against every earlier one. */
  pairs?: [string, string][];
  /** One gate per entry; `gate` (a single one) is the older spelling of `gates: [gate]`. */
  gates?: GateConfig[];
  gate?: GateConfig | null;
  histogramBins?: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function rateRow(variant: string, scope: Scope, items: Outcome[], confidence: number): RateRow {
  const part = (m: Metric) => {
    const successes = items.filter((o) => o.success[m]).length;
    return { successes, ...wilson(successes, items.length, confidence) };
  };
  return { variant, scope, n: items.length, strict: part("strict"), loose: part("loose"), tokenLimitHits: items.filter((o) => o.stop === "length").length };
}

function byId(items: Outcome[]): Map<string, Outcome> {
  return new Map(items.map((o) => [o.id, o]));
}

export function analyse(variants: { name: string; items: Outcome[] }[], o: AnalysisOptions): Analysis {
  const names = variants.map((v) => v.name);
  if (new Set(names).size !== names.length) throw new Error(`variant names must be unique: ${names.join(", ")}`);
  // Paired analysis needs the same items for every variant.
  const ids = variants[0]?.items.map((i) => i.id).sort() ?? [];
  for (const v of variants) {
    const vid = v.items.map((i) => i.id).sort();
    if (vid.length !== ids.length || vid.some((x, k) => x !== ids[k])) throw new Error(`variant '${v.name}' was evaluated on different items than '${variants[0]!.name}'; a paired analysis needs the same items`);
  }
  const present = new Set(variants[0]?.items.map((i) => i.type) ?? []);
  const types = TEST_TYPES.filter((t) => present.has(t));
  const scopes: Scope[] = [...types, "overall"];
  const inScope = (items: Outcome[], s: Scope) => (s === "overall" ? items : items.filter((i) => i.type === s));

  const rates = variants.flatMap((v) => scopes.map((s) => rateRow(v.name, s, inScope(v.items, s), o.confidence)));

  const pairSpecs = o.pairs ?? names.flatMap((cand, j) => names.slice(0, j).map((base) => [cand, base] as [string, string]));
  for (const [c, b] of pairSpecs) for (const n of [c, b]) if (!names.includes(n)) throw new Error(`pair [${c}, ${b}]: no variant '${n}' (variants: ${names.join(", ")})`);
  const exactThreshold = o.exactThreshold ?? EXACT_THRESHOLD;
  const pairs: PairRow[] = [];
  for (const [cand, base] of pairSpecs) {
    const ci = variants.find((v) => v.name === cand)!.items;
    const bi = byId(variants.find((v) => v.name === base)!.items);
    const rows = scopes.map((s): PairRow => {
      const cs = inScope(ci, s);
      const x = cs.map((i) => i.success[o.metric]);
      const y = cs.map((i) => bi.get(i.id)!.success[o.metric]);
      const table = pairedTable(x, y);
      const n = cs.length;
      const cr = n ? (table.a + table.b) / n : null;
      const br = n ? (table.a + table.c) / n : null;
      const test = mcnemar(table, exactThreshold);
      const dci = newcombePairedDifference(table, o.confidence);
      return {
        candidate: cand,
        baseline: base,
        scope: s,
        n,
        table,
        candidateRate: cr,
        baselineRate: br,
        difference: cr === null || br === null ? null : cr - br,
        differenceCi: dci.difference === null ? null : { lower: dci.lower, upper: dci.upper },
        cohensH: cr === null || br === null ? null : cohensH(cr, br),
        test: test.test,
        statistic: test.statistic,
        p: test.p,
        pAdjusted: test.p,
        significant: false,
      };
    });
    const perType = rows.filter((r) => r.scope !== "overall");
    benjaminiHochberg(perType.map((r) => r.p)).forEach((adj, k) => (perType[k]!.pAdjusted = adj));
    for (const r of rows) r.significant = r.pAdjusted < o.alpha;
    pairs.push(...rows);
  }

  const allWords = variants.flatMap((v) => v.items.map((i) => i.words));
  const bins = o.histogramBins ?? 12;
  const top = Math.max(1, ...allWords);
  const width = Math.max(1, Math.ceil(top / bins));
  const edges = Array.from({ length: bins + 1 }, (_, k) => k * width);
  const lengths = variants.map((v): LengthSummary => {
    const w = v.items.map((i) => i.words).sort((a, b) => a - b);
    const counts = new Array<number>(bins).fill(0);
    for (const x of w) counts[Math.min(bins - 1, Math.floor(x / width))]!++;
    return { variant: v.name, n: w.length, mean: w.length ? w.reduce((s, x) => s + x, 0) / w.length : 0, min: w[0] ?? 0, q1: quantile(w, 0.25), median: quantile(w, 0.5), q3: quantile(w, 0.75), max: w.at(-1) ?? 0, histogram: { edges, counts } };
  });

  const gates = (o.gates ?? (o.gate ? [o.gate] : [])).map((g) => decideGate(g, pairs, o.metric, names));
  return { metric: o.metric, alpha: o.alpha, confidence: o.confidence, differenceCiMethod: PAIRED_CI_METHOD, exactThreshold, types, rates, pairs, lengths, gates, gate: gates[0] ?? null };
}

export function decideGate(g: GateConfig, pairs: PairRow[], metric: Metric, names: string[]): GateOutcome {
  const [cand, base] = g.compare;
  for (const n of g.compare) if (!names.includes(n)) throw new Error(`gate.compare names '${n}', which is not a variant (${names.join(", ")})`);
  const find = (c: string, b: string) => pairs.filter((p) => p.candidate === c && p.baseline === b);
  let rows = find(cand, base);
  if (rows.length === 0) {
    // The pair was analysed the other way round: swap the table so the candidate comes first.
    rows = find(base, cand).map((r) => ({ ...r, candidate: cand, baseline: base, table: { a: r.table.a, b: r.table.c, c: r.table.b, d: r.table.d }, candidateRate: r.baselineRate, baselineRate: r.candidateRate, difference: r.difference === null ? null : -r.difference, differenceCi: r.differenceCi && { lower: -r.differenceCi.upper, upper: -r.differenceCi.lower }, cohensH: r.cohensH === null ? null : -r.cohensH }));
  }
  if (rows.length === 0) throw new Error(`gate: no analysis of ${cand} vs ${base}`);
  const base0 = { name: `significance ${cand} vs ${base}`, candidate: cand, baseline: base, alpha: g.alpha, scope: g.scope };
  if (g.scope === "overall") {
    const r = rows.find((x) => x.scope === "overall")!;
    const d = significanceGate({ candidate: cand, baseline: base, candidateRate: r.candidateRate, baselineRate: r.baselineRate, p: r.p, alpha: g.alpha, label: `overall, ${metric}, McNemar ${r.test}` });
    return { ...base0, ...d };
  }
  const decisions = rows.filter((x) => x.scope !== "overall").map((r) => ({ r, d: significanceGate({ candidate: cand, baseline: base, candidateRate: r.candidateRate, baselineRate: r.baselineRate, p: r.pAdjusted, alpha: g.alpha, label: `${r.scope}, BH-adjusted` }) }));
  const failed = decisions.filter((x) => !x.d.passed);
  return { ...base0, passed: failed.length === 0, summary: failed.length === 0 ? `${cand} better than ${base} on every type (BH-adjusted p < ${g.alpha})` : `not significant on ${failed.length} of ${decisions.length} types: ${failed.map((f) => f.d.summary).join("; ")}` };
}
