// evaluation_results.json (every number plus provenance) and summary.txt.
import type { ProvenanceStamp } from "../../core/provenance.ts";
import type { Analysis, PairRow, RateRow } from "./analysis.ts";
import type { VariantIdentity } from "./cache.ts";
import { formatP } from "./stats.ts";
import { metricsText, type IfevalVariantMetrics } from "./ifeval/metrics.ts";
import type { SelfJudge } from "./self-judge.ts";

export const RESULTS_FILE = "evaluation_results.json";
export const SUMMARY_FILE = "summary.txt";
export const REPORT_FILE = "report.html";
export const responsesFile = (variant: string) => `${variant}.responses.jsonl`;

export interface VariantRecord extends VariantIdentity {
  responsesFile: string;
  generated: number;
  cached: number;
  loadInfo: Record<string, unknown> | null;
}

export interface EvaluationResults {
  schemaVersion: 1;
  createdAt: string;
  analysis: Analysis;
  variants: VariantRecord[];
  decode: { greedy: true; maxTokens: number; stop: string[] };
  prompt: Record<string, unknown>;
  testSet: { items: number; sha256: string | null; byType: Record<string, number> };
  provenance: ProvenanceStamp | null;
  /** IFEval's four metrics and per-id table per variant, when IFEval prompts were evaluated (specs/evaluation.md §8). */
  ifeval?: IfevalVariantMetrics[];
  /** The pair critic (base model) against the checks per variant and type, when the run's model judged (specs/evaluation.md §9). */
  selfJudge?: SelfJudge;
}

const pct = (x: number | null) => (x === null ? "   -  " : `${(100 * x).toFixed(1).padStart(5)}%`);

function rateLine(r: RateRow, metric: "strict" | "loose"): string {
  const m = r[metric];
  return `  ${r.variant.padEnd(14)} ${r.scope.padEnd(22)} ${String(m.successes).padStart(4)}/${String(r.n).padEnd(4)} ${pct(m.rate)}  [${pct(m.lower)}, ${pct(m.upper)}]   loose ${pct(r.loose.rate)}`;
}

function pairLine(p: PairRow): string {
  const d = p.difference === null ? "   -  " : `${p.difference >= 0 ? "+" : ""}${(100 * p.difference).toFixed(1)}`;
  const h = p.cohensH === null ? "-" : p.cohensH.toFixed(2);
  const pts = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
  const ci = p.differenceCi === null ? "[   -  ,    -  ]" : `[${pts(p.differenceCi.lower).padStart(6)}, ${pts(p.differenceCi.upper).padStart(6)}]`;
  return `  ${`${p.candidate} vs ${p.baseline}`.padEnd(22)} ${p.scope.padEnd(22)} diff ${d.padStart(6)} pts ${ci}  h ${h.padStart(5)}  b/c ${p.table.b}/${p.table.c}  ${p.test.padEnd(14)} p ${formatP(p.p).padStart(8)}  adj ${formatP(p.pAdjusted).padStart(8)}${p.significant ? "  *" : ""}`;
}

const num = (x: number | null, d = 2) => (x === null ? "-" : x.toFixed(d));

function selfJudgeLines(s: SelfJudge): string[] {
  const out = [`self-judge (pair critic, base model, accept iff margin >= ${s.threshold}, vs the checks' ${s.metric} verdict; ${s.skipped} responses not judged):`];
  for (const r of s.rows) {
    const t = r.table;
    out.push(`  ${r.variant.padEnd(14)} ${r.scope.padEnd(22)} n ${String(r.n).padStart(4)}  agree ${pct(r.agreement)}  precision ${pct(r.precision)}  recall ${pct(r.recall)}  kappa ${num(r.kappa).padStart(5)}  tp/fp/fn/tn ${t.tp}/${t.fp}/${t.fn}/${t.tn}  margin pass ${num(r.meanMargin.passed)} fail ${num(r.meanMargin.failed)}`);
  }
  return out;
}

/** The readable summary: the same numbers as the JSON, in columns. */
export function summaryText(r: EvaluationResults): string {
  const a = r.analysis;
  const lines: string[] = [];
  lines.push(`selftune evaluation  (${r.testSet.items} test instructions: ${Object.entries(r.testSet.byType).map(([t, n]) => `${t} ${n}`).join(", ")})`);
  lines.push(`metric ${a.metric}; greedy decoding, max ${r.decode.maxTokens} tokens; Wilson ${Math.round(a.confidence * 100)}% CI; McNemar (cc; exact binomial when b+c < ${a.exactThreshold}); BH across types; alpha ${a.alpha}`);
  if (r.provenance) lines.push(`run ${r.provenance.runId}  stage ${r.provenance.stage}  git ${r.provenance.git.commit?.slice(0, 12) ?? "none"}${r.provenance.git.dirty ? " (dirty)" : ""}`);
  lines.push("", "variants:");
  for (const v of r.variants) {
    lines.push(`  ${v.name.padEnd(14)} model ${v.model.sha256.slice(0, 12)} ${v.model.path}`);
    for (const ad of v.adapters) lines.push(`  ${"".padEnd(14)} + adapter ${ad.sha256.slice(0, 12)} x${ad.scale} ${ad.path}`);
    lines.push(`  ${"".padEnd(14)} variant hash ${v.hash.slice(0, 12)}  generated ${v.generated}, cached ${v.cached}`);
  }
  lines.push("", `success rates (${a.metric}):`);
  for (const row of a.rates) lines.push(rateLine(row, a.metric));
  if (a.pairs.length) {
    lines.push("", `paired comparisons (diff = first − second in points, ${Math.round(a.confidence * 100)}% CI: ${a.differenceCiMethod ?? "none"}; * = adjusted p < alpha):`);
    for (const p of a.pairs) lines.push(pairLine(p));
  }
  lines.push("", "response length (words):");
  for (const l of a.lengths) lines.push(`  ${l.variant.padEnd(14)} median ${l.median.toFixed(0).padStart(4)}  IQR ${l.q1.toFixed(0)}-${l.q3.toFixed(0)}  mean ${l.mean.toFixed(1)}  max ${l.max}`);
  const hits = a.rates.filter((x) => x.scope === "overall" && x.tokenLimitHits > 0);
  for (const h of hits) lines.push(`  ${h.variant}: ${h.tokenLimitHits} of ${h.n} responses hit the token limit`);
  for (const v of r.ifeval ?? []) lines.push("", metricsText(v.metrics, `IFEval, variant ${v.variant}`).trimEnd());
  if (r.selfJudge) lines.push("", ...selfJudgeLines(r.selfJudge));
  const gates = a.gates ?? (a.gate ? [a.gate] : []);
  if (gates.length) lines.push("");
  for (const g of gates) lines.push(`gate ${g.name}: ${g.passed ? "PASS" : "FAIL"}  ${g.summary}`);
  return lines.join("\n") + "\n";
}
