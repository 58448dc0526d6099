// The HTML report: one self-contained file (inline CSS and SVG, no script, no
// external resource) so it can be mailed, archived and opened offline. Charts
// are generated here as SVG; every mark carries data-* attributes and a <title>
// tooltip with its numbers, which is also how the browser test finds them.
import type { Analysis, PairRow, RateRow } from "./analysis.ts";
import type { TypeExamples } from "./examples.ts";
import type { IfevalVariantMetrics } from "./ifeval/metrics.ts";
import { selfJudgeSection } from "./report-self-judge.ts";
import type { EvaluationResults } from "./results.ts";
import { formatP } from "./stats.ts";

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"];

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
const pct = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(1)}%`);

function attrs(a: Record<string, string | number | null>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => ` ${k}="${esc(typeof v === "number" ? String(Number(v.toPrecision(6))) : v!)}"`)
    .join("");
}

function legend(names: string[], x: number, y: number): string {
  return names.map((n, i) => `<g transform="translate(${x + i * 130},${y})"><rect width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="17" y="10" class="lg">${esc(n)}</text></g>`).join("");
}

/** Vertical axis 0..100 % with grid lines. */
function percentAxis(x0: number, y0: number, h: number, w: number): string {
  let s = "";
  for (let k = 0; k <= 4; k++) {
    const y = y0 + h - (h * k) / 4;
    s += `<line x1="${x0}" x2="${x0 + w}" y1="${y}" y2="${y}" class="grid"/><text x="${x0 - 6}" y="${y + 4}" class="ax" text-anchor="end">${k * 25}%</text>`;
  }
  return s;
}

/** Success rate per type (and overall) for every variant, with Wilson CI error bars. */
export function successChart(a: Analysis, variants: string[]): string {
  const scopes = [...a.types, "overall"] as const;
  const m = a.metric;
  const left = 48, top = 30, h = 220, groupW = Math.max(90, variants.length * 26 + 30);
  const w = scopes.length * groupW;
  const barW = (groupW - 30) / variants.length;
  let marks = "";
  scopes.forEach((scope, gi) => {
    const gx = left + gi * groupW + 15;
    variants.forEach((v, vi) => {
      const r = a.rates.find((x) => x.variant === v && x.scope === scope) as RateRow | undefined;
      if (!r) return;
      const s = r[m];
      const rate = s.rate ?? 0;
      const x = gx + vi * barW;
      const y = top + h - h * rate;
      const tip = `${v} · ${scope}: ${s.successes}/${r.n} = ${pct(s.rate)} (95% CI ${pct(s.lower)}–${pct(s.upper)}, ${m})`;
      marks += `<rect class="bar"${attrs({ x: x, y, width: barW - 3, height: h * rate, fill: COLORS[vi % COLORS.length]!, "data-variant": v, "data-type": scope, "data-rate": s.rate, "data-ci-lower": s.lower, "data-ci-upper": s.upper, "data-n": r.n })}><title>${esc(tip)}</title></rect>`;
      const cx = x + (barW - 3) / 2;
      const yl = top + h - h * s.lower, yu = top + h - h * s.upper;
      marks += `<g class="ci"${attrs({ "data-variant": v, "data-type": scope })}><line x1="${cx}" x2="${cx}" y1="${yl}" y2="${yu}"/><line x1="${cx - 4}" x2="${cx + 4}" y1="${yl}" y2="${yl}"/><line x1="${cx - 4}" x2="${cx + 4}" y1="${yu}" y2="${yu}"/><title>${esc(tip)}</title></g>`;
    });
    marks += `<text x="${gx + (groupW - 30) / 2}" y="${top + h + 18}" class="ax" text-anchor="middle">${esc(scope.replace("_", " "))}</text>`;
  });
  const width = left + w + 20, height = top + h + 60;
  return `<svg xmlns="http://www.w3.org/2000/svg" data-chart="success-by-type" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"><title>Success rate by test type with Wilson 95% CI (${m})</title>${percentAxis(left, top, h, w)}${marks}${legend(variants, left, top + h + 34)}</svg>`;
}

const signedPts = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
const ciPts = (p: PairRow) => (p.differenceCi ? `[${signedPts(p.differenceCi.lower)}, ${signedPts(p.differenceCi.upper)}]` : "–");

/** Paired differences (candidate − baseline, percentage points) per type, one row per pair,
 *  each with its confidence interval (Newcombe's method 10) drawn as a whisker. */
export function differencesChart(pairs: PairRow[], confidence = 0.95): string {
  if (pairs.length === 0) return `<p class="note">Only one variant: no paired comparison.</p>`;
  const left = 260, rowH = 22, w = 420, top = 30;
  // The axis spans the intervals too, so no whisker is clipped.
  const maxAbs = Math.max(0.1, ...pairs.flatMap((p) => [Math.abs(p.difference ?? 0), Math.abs(p.differenceCi?.lower ?? 0), Math.abs(p.differenceCi?.upper ?? 0)]));
  const scale = (w / 2) / maxAbs;
  const zero = left + w / 2;
  let marks = "";
  pairs.forEach((p, i) => {
    const y = top + i * rowH;
    const d = p.difference ?? 0;
    const x = d >= 0 ? zero : zero + d * scale;
    const tip = `${p.candidate} vs ${p.baseline} · ${p.scope}: ${d >= 0 ? "+" : ""}${(100 * d).toFixed(1)} pts, ${Math.round(confidence * 100)}% CI ${ciPts(p)} pts, h = ${p.cohensH === null ? "–" : p.cohensH.toFixed(2)}, b/c = ${p.table.b}/${p.table.c}, ${p.test} p = ${formatP(p.p)}, BH-adjusted ${formatP(p.pAdjusted)}`;
    marks += `<text x="${left - 8}" y="${y + 14}" class="ax" text-anchor="end">${esc(`${p.candidate} vs ${p.baseline} · ${p.scope.replace("_", " ")}`)}</text>`;
    marks += `<rect class="diff${p.significant ? " sig" : ""}"${attrs({ x, y: y + 3, width: Math.max(1, Math.abs(d) * scale), height: rowH - 6, "data-candidate": p.candidate, "data-baseline": p.baseline, "data-type": p.scope, "data-difference": p.difference, "data-p": p.p, "data-p-adjusted": p.pAdjusted, "data-test": p.test })}><title>${esc(tip)}</title></rect>`;
    if (p.differenceCi) {
      const xl = zero + p.differenceCi.lower * scale, xu = zero + p.differenceCi.upper * scale, ym = y + rowH / 2;
      marks += `<g class="dci"${attrs({ "data-candidate": p.candidate, "data-baseline": p.baseline, "data-type": p.scope, "data-ci-lower": p.differenceCi.lower, "data-ci-upper": p.differenceCi.upper })}><line x1="${xl}" x2="${xu}" y1="${ym}" y2="${ym}"/><line x1="${xl}" x2="${xl}" y1="${ym - 5}" y2="${ym + 5}"/><line x1="${xu}" x2="${xu}" y1="${ym - 5}" y2="${ym + 5}"/><title>${esc(tip)}</title></g>`;
    }
    marks += `<text x="${left + w + 8}" y="${y + 14}" class="ax">${esc(`p ${formatP(p.p)} · adj ${formatP(p.pAdjusted)}${p.significant ? " *" : ""}`)}</text>`;
  });
  const h = pairs.length * rowH;
  const ticks = [-maxAbs, -maxAbs / 2, 0, maxAbs / 2, maxAbs].map((t) => `<line x1="${zero + t * scale}" x2="${zero + t * scale}" y1="${top - 4}" y2="${top + h}" class="grid"/><text x="${zero + t * scale}" y="${top - 8}" class="ax" text-anchor="middle">${t >= 0 ? "+" : ""}${(100 * t).toFixed(0)}</text>`).join("");
  const width = left + w + 190, height = top + h + 16;
  return `<svg xmlns="http://www.w3.org/2000/svg" data-chart="paired-differences" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"><title>Paired differences in success rate (percentage points) with ${Math.round(confidence * 100)}% CI (Newcombe's hybrid score interval), McNemar p and BH-adjusted p</title>${ticks}<line x1="${zero}" x2="${zero}" y1="${top - 4}" y2="${top + h}" class="zero"/>${marks}</svg>`;
}

/** Histogram of response lengths (words) per variant, bars side by side within each bin. */
export function lengthsChart(a: Analysis): string {
  const left = 48, top = 20, h = 180;
  const bins = a.lengths[0]?.histogram.counts.length ?? 0;
  if (bins === 0) return `<p class="note">No responses.</p>`;
  const edges = a.lengths[0]!.histogram.edges;
  const binW = Math.max(36, a.lengths.length * 10 + 8);
  const w = bins * binW;
  const maxC = Math.max(1, ...a.lengths.flatMap((l) => l.histogram.counts));
  const barW = (binW - 6) / a.lengths.length;
  let marks = "";
  a.lengths.forEach((l, vi) => {
    l.histogram.counts.forEach((c, b) => {
      const x = left + b * binW + 3 + vi * barW;
      const bh = (h * c) / maxC;
      marks += `<rect class="hist"${attrs({ x, y: top + h - bh, width: barW - 1, height: bh, fill: COLORS[vi % COLORS.length]!, "data-variant": l.variant, "data-bin-from": edges[b]!, "data-bin-to": edges[b + 1]!, "data-count": c })}><title>${esc(`${l.variant}: ${c} responses of ${edges[b]}–${edges[b + 1]! - 1} words`)}</title></rect>`;
    });
  });
  const labels = edges.map((e, b) => `<text x="${left + b * binW}" y="${top + h + 14}" class="ax" text-anchor="middle">${e}</text>`).join("");
  // Counts are whole numbers: tick at 0, about half, and the maximum.
  const yTicks = [...new Set([0, Math.round(maxC / 2), maxC])].map((c) => {
    const y = top + h - (h * c) / maxC;
    return `<line x1="${left}" x2="${left + w}" y1="${y}" y2="${y}" class="grid"/><text x="${left - 6}" y="${y + 4}" class="ax" text-anchor="end">${c}</text>`;
  }).join("");
  const width = left + w + 20, height = top + h + 56;
  return `<svg xmlns="http://www.w3.org/2000/svg" data-chart="response-lengths" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"><title>Response length distribution (words) per variant</title>${yTicks}${marks}${labels}<text x="${left + w / 2}" y="${top + h + 30}" class="ax" text-anchor="middle">words</text>${legend(a.lengths.map((l) => l.variant), left, top + h + 40)}</svg>`;
}

function table(head: string[], rows: (string | number)[][], name?: string): string {
  return `<table${name ? attrs({ "data-table": name }) : ""}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

/** IFEval's four metrics per variant, then instruction-level accuracy per id (strict / loose). */
function ifevalSection(v: IfevalVariantMetrics[]): string {
  const four = v.map(({ variant, metrics: m }) => [variant, m.prompts, m.instructions, pct(m.promptLevel.strict), pct(m.instructionLevel.strict), pct(m.promptLevel.loose), pct(m.instructionLevel.loose)]);
  const ids = [...new Set(v.flatMap((x) => x.metrics.byInstruction.map((r) => r.id)))].sort();
  const perId = ids.map((id) => [id, v[0]!.metrics.byInstruction.find((r) => r.id === id)?.n ?? 0, ...v.map((x) => {
    const r = x.metrics.byInstruction.find((y) => y.id === id);
    return r ? `${pct(r.strict)} / ${pct(r.loose)}` : "–";
  })]);
  return `<h2>IFEval</h2>
<div data-section="ifeval"><p class="note">IFEval's four metrics (its evaluation_lib): accuracy per prompt (all of a prompt's instructions followed) and per instruction, strict and loose (loose also accepts the response with its first and/or last line removed and/or <code>*</code> removed).</p>
${table(["variant", "prompts", "instructions", "prompt-level strict", "instruction-level strict", "prompt-level loose", "instruction-level loose"], four, "ifeval-metrics")}
<h3>Instruction-level accuracy per instruction id</h3>
${table(["instruction id", "n", ...v.map((x) => `${x.variant} strict / loose`)], perId)}</div>
`;
}

/** Per type, a few instructions with every variant's response side by side and the checks each failed. */
export function examplesSection(ex: TypeExamples[], metric: string): string {
  if (ex.length === 0) return "";
  const cut = (omitted: number) => (omitted ? `<span class="trunc"${attrs({ "data-omitted": omitted })}>… [${omitted} more characters not shown]</span>` : "");
  const body = ex.map((t) => `<h3>${esc(t.type.replace("_", " "))}</h3>
${t.examples.map((e) => `<div class="example"${attrs({ "data-type": t.type, "data-id": e.id })}><p class="instr"><b>${esc(e.id)}</b>: <span class="instruction">${esc(e.instruction)}</span>${cut(e.instructionOmitted)}</p>
<div class="cols" style="grid-template-columns:repeat(${e.responses.length},minmax(0,1fr))">${e.responses.map((r) => {
    const ok = r.success[metric as "strict" | "loose"];
    const failed = r.failed.length ? `<ul class="failed">${r.failed.map((f) => `<li><code>${esc(f.instruction ?? f.type)}</code> ${esc(f.detail)}</li>`).join("")}</ul>` : `<p class="note">no check failed</p>`;
    return `<div class="resp"${attrs({ "data-variant": r.variant, "data-success": String(ok), "data-failed": r.failed.length })}><p><b>${esc(r.variant)}</b> <span class="${ok ? "pass" : "fail"}">${ok ? "success" : "failure"}</span></p><pre>${esc(r.text)}${cut(r.omitted)}</pre>${failed}</div>`;
  }).join("")}</div></div>`).join("\n")}`).join("\n");
  const k = Math.max(...ex.map((t) => t.examples.length));
  return `<h2>Examples</h2>
<div data-section="examples"><p class="note">Per type, the first ${k} test instruction${k === 1 ? "" : "s"} in test-set order; each variant's response (cut at a visible mark) and the checks it failed (${esc(metric)}).</p>
${body}</div>
`;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f5f5f5}td:first-child,td:nth-child(2){text-align:left}
svg{display:block;margin:8px 0;max-width:100%;height:auto}.grid{stroke:#e5e5e5}.zero{stroke:#555}.ax,.lg{font-size:11px;fill:#444}
.ci line{stroke:#222;stroke-width:1.2}.diff{fill:#9aa7b4}.diff.sig{fill:#2f6f3e}.note{color:#666}.pass{color:#2f6f3e;font-weight:600}.fail{color:#b22;font-weight:600}
code{font-size:12px}.dci line{stroke:#111;stroke-width:1.2}h3{font-size:15px;margin:18px 0 6px}
.example{border:1px solid #e3e3e3;border-radius:4px;padding:6px 10px;margin:8px 0}.instr{margin:4px 0}.cols{display:grid;gap:8px}
.resp{min-width:0}.resp pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;border:1px solid #eee;padding:6px;margin:4px 0;font-size:12px;max-height:320px;overflow:auto}
.trunc{color:#b22;font-style:italic}.failed{margin:2px 0;padding-left:18px;font-size:12px;color:#733}`;

/** `examples` come from the responses files (not from results.json, which holds numbers only). */
export function renderReport(r: EvaluationResults, examples: TypeExamples[] = []): string {
  const a = r.analysis;
  const variants = r.variants.map((v) => v.name);
  // Every comparison's gate, in the configured order (results of older runs carry only `gate`).
  const gate = (a.gates ?? (a.gate ? [a.gate] : [])).map((g) => `<p class="gate"${attrs({ "data-candidate": g.candidate, "data-baseline": g.baseline, "data-passed": String(g.passed) })}>Gate <b>${esc(g.name)}</b>: <span class="${g.passed ? "pass" : "fail"}">${g.passed ? "PASS" : "FAIL"}</span> — ${esc(g.summary)}</p>`).join("\n");
  const prov = r.provenance;
  const rateRows = a.rates.map((x) => [x.variant, x.scope, x.n, x.strict.successes, pct(x.strict.rate), `${pct(x.strict.lower)} – ${pct(x.strict.upper)}`, x.loose.successes, pct(x.loose.rate), x.tokenLimitHits]);
  const pairRows = a.pairs.map((p) => [`${p.candidate} vs ${p.baseline}`, p.scope, p.n, `${p.table.a}/${p.table.b}/${p.table.c}/${p.table.d}`, p.difference === null ? "–" : `${(100 * p.difference).toFixed(1)}`, ciPts(p), p.cohensH === null ? "–" : p.cohensH.toFixed(3), p.test, p.statistic === null ? "–" : p.statistic.toFixed(3), formatP(p.p), formatP(p.pAdjusted), p.significant ? "yes" : "no"]);
  const variantRows = r.variants.flatMap((v) => [[v.name, "model", v.model.path, v.model.sha256.slice(0, 16), "", `${v.generated} generated, ${v.cached} cached`], ...v.adapters.map((ad) => [v.name, "adapter", ad.path, ad.sha256.slice(0, 16), `x${ad.scale}`, ""])]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>selftune evaluation${prov ? ` — ${esc(prov.runId)}` : ""}</title><style>${CSS}</style></head>
<body>
<h1>selftune evaluation</h1>
<p>${r.testSet.items} held-out test instructions (${esc(Object.entries(r.testSet.byType).map(([t, n]) => `${t} ${n}`).join(", "))}); greedy decoding, max ${r.decode.maxTokens} tokens; metric <b>${a.metric}</b>; Wilson ${Math.round(a.confidence * 100)}% CIs; McNemar with continuity correction (exact binomial when b + c &lt; ${a.exactThreshold}); Benjamini–Hochberg across types; α = ${a.alpha}.</p>
${gate}
<h2>Success rate by type</h2>
${successChart(a, variants)}
${table(["variant", "type", "n", "strict ✓", "strict rate", "95% CI", "loose ✓", "loose rate", "token-limit hits"], rateRows)}
<h2>Paired differences</h2>
${differencesChart(a.pairs, a.confidence)}
${a.pairs.length ? `<p class="note">Difference = candidate − baseline in percentage points; ${Math.round(a.confidence * 100)}% CI: ${esc(a.differenceCiMethod ?? "none")}. a/b/c/d: both succeed / candidate only / baseline only / neither.</p>` : ""}
${a.pairs.length ? table(["pair", "type", "n", "a/b/c/d", "diff (pts)", `${Math.round(a.confidence * 100)}% CI (pts)`, "Cohen's h", "test", "χ²", "p", "p (BH)", "significant"], pairRows) : ""}
${r.ifeval?.length ? ifevalSection(r.ifeval) : ""}${r.selfJudge ? selfJudgeSection(r.selfJudge, esc) : ""}${examplesSection(examples, a.metric)}<h2>Response lengths</h2>
${lengthsChart(a)}
${table(["variant", "n", "mean", "min", "Q1", "median", "Q3", "max"], a.lengths.map((l) => [l.variant, l.n, l.mean.toFixed(1), l.min, num(l.q1), num(l.median), num(l.q3), l.max]))}
<h2>Provenance</h2>
${table(["variant", "file", "path", "sha256", "scale", ""], variantRows)}
<p>Test set sha256 <code>${esc(r.testSet.sha256 ?? "unknown")}</code>. Prompt format <code>${esc(JSON.stringify(r.prompt))}</code>.${prov ? ` Run <code>${esc(prov.runId)}</code>, stage <code>${esc(prov.stage)}</code>, ${esc(prov.plugin)}@${esc(prov.pluginVersion)}, config <code>${esc(prov.configHash.slice(0, 16))}</code>, git <code>${esc(prov.git.commit ?? "none")}</code>${prov.git.dirty ? " (dirty)" : ""}.` : ""} Generated ${esc(r.createdAt)}.</p>
</body></html>
`;
}
