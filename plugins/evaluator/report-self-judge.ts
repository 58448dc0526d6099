// The report's self-judge section: how far the base model's pair critic (which the
// pipeline trusts to keep or drop data) agrees with the verifiable checks, per variant
// and type. Every row carries its numbers as data-* attributes for the browser test.
import type { SelfJudge } from "./self-judge.ts";

type Esc = (s: string) => string;

const pct = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(1)}%`);
const fixed = (x: number | null, d: number) => (x === null ? "–" : x.toFixed(d));
/** data-* values: the number as JSON has it (null as "null"), so a test can compare exactly. */
const dv = (x: number | null) => (x === null ? "null" : String(Number(x.toPrecision(12))));

export function selfJudgeSection(s: SelfJudge, esc: Esc): string {
  const head = ["variant", "type", "n judged", "tp / fp / fn / tn", "agreement", "precision (accept)", "recall (accept)", "Cohen's κ", "mean margin, checks pass", "mean margin, checks fail"];
  const rows = s.rows.map((r) => {
    const t = r.table;
    const cells = [r.variant, r.scope.replace("_", " "), String(r.n), `${t.tp} / ${t.fp} / ${t.fn} / ${t.tn}`, pct(r.agreement), pct(r.precision), pct(r.recall), fixed(r.kappa, 3), fixed(r.meanMargin.passed, 2), fixed(r.meanMargin.failed, 2)];
    const data = `data-variant="${esc(r.variant)}" data-type="${esc(r.scope)}" data-n="${r.n}" data-agreement="${dv(r.agreement)}" data-precision="${dv(r.precision)}" data-recall="${dv(r.recall)}" data-kappa="${dv(r.kappa)}"`;
    return `<tr ${data}>${cells.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`;
  });
  return `<h2>Self-judge agreement</h2>
<div data-section="self-judge"><p class="note">The pair critic (the base model, as the pipeline uses it) judged each response with verifiable checks: accept iff its margin ≥ ${esc(String(s.threshold))}. Against the checks' ${esc(s.metric)} verdict: agreement, precision and recall of “accept”, Cohen's κ (agreement beyond chance). ${s.skipped} response${s.skipped === 1 ? "" : "s"} not judged.</p>
${s.rows.length ? `<table data-table="self-judge"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>` : `<p class="note">No response was judged.</p>`}</div>
`;
}
