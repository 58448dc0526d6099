// Everything the evaluator writes, built the same way by the stage and by
// `selftune report <run-dir>` (which rebuilds from the responses files).
import { z } from "zod";
import { defineKind } from "../../core/plugin.ts";
import type { ProvenanceStamp } from "../../core/provenance.ts";
import { analyse, type AnalysisOptions, type Outcome } from "./analysis.ts";
import type { VariantIdentity } from "./cache.ts";
import { TestType } from "./checks/spec.ts";
import { renderReport } from "./report.ts";
import { REPORT_FILE, responsesFile, RESULTS_FILE, SUMMARY_FILE, summaryText, type EvaluationResults, type VariantRecord } from "./results.ts";
import type { ScoredItem } from "./evaluate.ts";
import { ifevalResults } from "./ifeval/metrics.ts";
import { summarizeSelfJudge, type Judgement, type SelfJudge } from "./self-judge.ts";
import { pickExamples } from "./examples.ts";

/** One line of `<variant>.responses.jsonl`. */
export const ResponseRecord = z.strictObject({
  variant: z.string(),
  variantHash: z.string(),
  id: z.string(),
  type: TestType,
  template: z.string().nullable(),
  instruction: z.string(),
  promptSha256: z.string(),
  raw: z.string(),
  response: z.string(),
  stopReason: z.string(),
  tokens: z.number().int().min(0),
  stop: z.enum(["eos", "control", "length", "stop"]),
  words: z.number().int().min(0),
  cached: z.boolean(),
  checks: z.array(z.strictObject({ type: z.string(), instruction: z.string().optional(), strict: z.boolean(), loose: z.boolean(), detail: z.string() })),
  success: z.strictObject({ strict: z.boolean(), loose: z.boolean() }),
});
export type ResponseRecord = z.output<typeof ResponseRecord>;
export const ResponseRecordKind = defineKind("evaluation-response", ResponseRecord);

/** The stage's own artifact: one record per variant and scope, for downstream stages. */
export const EvaluationRate = z.strictObject({
  variant: z.string(),
  scope: z.string(),
  metric: z.enum(["strict", "loose"]),
  n: z.number().int().min(0),
  successes: z.number().int().min(0),
  rate: z.number().min(0).max(1).nullable(),
  lower: z.number().min(0).max(1),
  upper: z.number().min(0).max(1),
});
export const EvaluationRateKind = defineKind("evaluation-rate", EvaluationRate);

export function toRecord(v: VariantIdentity, it: ScoredItem, template: string | null): ResponseRecord {
  return { variant: v.name, variantHash: v.hash, template, ...it };
}

export interface BuildInput {
  variants: { record: VariantRecord; responses: ResponseRecord[] }[];
  options: AnalysisOptions;
  decode: EvaluationResults["decode"];
  prompt: Record<string, unknown>;
  testSetSha256: string | null;
  provenance: ProvenanceStamp | null;
  createdAt?: string;
  /** The self-judge's verdicts (self_judge.jsonl) and how they were made, when there was a pass. */
  selfJudge?: { judgements: readonly Judgement[] } & Pick<SelfJudge, "threshold" | "skipped" | "critic">;
}

export interface BuiltOutputs {
  results: EvaluationResults;
  /** File name -> content, all in the stage directory. */
  files: Record<string, string>;
}

export function buildOutputs(input: BuildInput): BuiltOutputs {
  const outcomes = input.variants.map((v) => ({ name: v.record.name, items: v.responses.map((r): Outcome => ({ id: r.id, type: r.type, success: r.success, words: r.words, tokens: r.tokens, stop: r.stop })) }));
  const analysis = analyse(outcomes, input.options);
  const first = input.variants[0]?.responses ?? [];
  const byType: Record<string, number> = {};
  for (const r of first) byType[r.type] = (byType[r.type] ?? 0) + 1;
  const results: EvaluationResults = {
    schemaVersion: 1,
    createdAt: input.createdAt ?? new Date().toISOString(),
    analysis,
    variants: input.variants.map((v) => v.record),
    decode: input.decode,
    prompt: input.prompt,
    testSet: { items: first.length, sha256: input.testSetSha256, byType },
    provenance: input.provenance,
    ...ifevalResults(input.variants.map((v) => ({ variant: v.record.name, responses: v.responses }))),
    ...(input.selfJudge
      ? { selfJudge: summarizeSelfJudge(input.variants.map((v) => ({ name: v.record.name, responses: v.responses })), input.selfJudge.judgements, { metric: analysis.metric, threshold: input.selfJudge.threshold, critic: input.selfJudge.critic, skipped: input.selfJudge.skipped }) }
      : {}),
  };
  const files: Record<string, string> = {
    [RESULTS_FILE]: JSON.stringify(results, null, 2) + "\n",
    [SUMMARY_FILE]: summaryText(results),
    [REPORT_FILE]: renderReport(results, pickExamples(input.variants.map((v) => ({ name: v.record.name, responses: v.responses })), analysis.metric)),
  };
  return { results, files };
}

export function responsesJsonl(records: ResponseRecord[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : "");
}

export { responsesFile };
