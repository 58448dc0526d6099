// The human-readable QC summary (qc-summary.txt and the log).
import type { QcReport } from "../shared/kinds.ts";
import { pct } from "./metrics.ts";

const num = (x: number) => String(+x.toFixed(2));

function counts(map: Record<string, number>, total: number): string {
  const parts = Object.entries(map)
    .filter(([, c]) => c > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, c]) => `${k} ${c} (${pct(total ? c / total : null)})`);
  return parts.join(", ") || "none";
}

export function formatSummary(r: QcReport): string {
  const enabled = r.gates.filter((g) => g.threshold !== null);
  const failed = r.gates.filter((g) => !g.passed);
  const lines = [`QC over ${r.records} sft-example records: ${r.passed ? "PASS" : "FAIL"} (${enabled.length - failed.length} of ${enabled.length} gates passed)`, ""];
  for (const g of r.gates) lines.push(`  ${g.passed ? (g.threshold === null ? "  -" : " ok") : "FAIL"}  ${g.name.padEnd(24)} ${g.summary}`);
  lines.push("");
  lines.push(`stop reasons: ${counts(r.stopReasons, r.records)}`);
  lines.push(`token-limit hits: ${r.tokenLimit.count} (${pct(r.tokenLimit.rate)}); empty responses: ${r.emptyResponses.count}; trainable: ${r.trainable.count} (${pct(r.trainable.rate)})`);
  const lb = r.leakage.byDelimiter;
  lines.push(`leakage: ${r.leakage.count} responses (Instruction: ${lb["Instruction:"]}, Response: ${lb["Response:"]}, END ${lb.END}); chat markup: ${r.chatMarkup.count} responses`);
  const t = r.responseTokens;
  lines.push(t ? `response tokens: min ${num(t.min)}, p10 ${num(t.p10)}, median ${num(t.median)}, mean ${num(t.mean)}, p90 ${num(t.p90)}, max ${num(t.max)}` : "response tokens: n/a");
  const m = r.margins;
  lines.push(`critic: accepted ${r.criticAcceptance.count}/${r.criticAcceptance.total} (${pct(r.criticAcceptance.rate)})` + (m ? `; margins min ${num(m.min)}, p10 ${num(m.p10)}, median ${num(m.median)}, mean ${num(m.mean)}, p90 ${num(m.p90)}, max ${num(m.max)}` : ""));
  const d = r.duplicates;
  lines.push(`duplicates: instructions ${d.instructionExact} exact + ${d.instructionNear} near (${pct(d.instructionRate)}); responses ${d.responseExact} exact (${pct(d.responseRate)})`);
  lines.push(`type mix: ${counts(r.typeMix, r.records)}`);
  lines.push("", "response length histogram (tokens):");
  const peak = Math.max(1, ...r.histogram.counts);
  r.histogram.edges.forEach((lo, i) => {
    const hi = r.histogram.edges[i + 1];
    const label = hi === undefined ? `[${lo}, ∞)` : `[${lo}, ${hi})`;
    const c = r.histogram.counts[i]!;
    lines.push(`  ${label.padEnd(10)} ${"#".repeat(Math.round((40 * c) / peak)).padEnd(40)} ${c}`);
  });
  return lines.join("\n") + "\n";
}
