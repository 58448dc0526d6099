// The QC stage (SPEC §5): metrics over the sft-example records of a pilot (or
// of the merged scale run), one gate per metric, a qc-report record, a readable
// summary and the histogram data. A failed gate stops the pipeline (exit 3)
// unless the stage says `gate: report`.
import { definePlugin } from "../../core/plugin.ts";
import { QcReportKind, SftExampleKind, type SftExample } from "../shared/kinds.ts";
import { QcConfig } from "./config.ts";
import { computeQc } from "./metrics.ts";
import { formatSummary } from "./summary.ts";

export default definePlugin({
  name: "qc",
  version: "1.0.0",
  description: "QC metrics and gates over generated SFT examples (runaway, token limit, leakage, length, critic acceptance)",
  config: QcConfig,
  consumes: { examples: SftExampleKind },
  produces: { report: QcReportKind },
  async run(ctx) {
    const records: SftExample[] = [];
    for await (const r of ctx.inputs.examples) records.push(r);
    const report = computeQc(records, ctx.config);
    ctx.outputs.report.write(report);
    ctx.outputs.report.commit();
    const summary = formatSummary(report);
    await ctx.writeFile("qc-summary.txt", summary);
    await ctx.writeFile("qc-histogram.json", JSON.stringify({ histogram: report.histogram, responseTokens: records.map((r) => r.responseTokens), margins: records.map((r) => r.critic?.margin ?? null) }) + "\n");
    for (const g of report.gates) ctx.gate({ name: g.name, passed: g.passed, summary: g.summary, details: { value: g.value, op: g.op, threshold: g.threshold } });
    ctx.log.info(summary.trimEnd());
  },
});
