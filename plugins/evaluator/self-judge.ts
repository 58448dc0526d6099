// The self-judge, measured (issue 13 item 5): the pipeline keeps or drops data on the base
// model's A/B pair critic (SPEC §4); here the same critic judges every evaluated response
// that has verifiable checks, and its verdict is set against the checks' verdict. Accept =
// the critic's margin ≥ threshold; pass = the checks' success under the primary metric.
// Written per judged response to `self_judge.jsonl` (so `selftune report` rebuilds the
// numbers without a model) and summarized in the results' `selfJudge` field.
import { z } from "zod";
import { TEST_TYPES } from "./checks/spec.ts";
import type { Metric, Scope } from "./analysis.ts";

export const SELF_JUDGE_FILE = "self_judge.jsonl";

export const SelfJudgeConfig = z.strictObject({
  /** Judge the responses with the base model's pair critic wherever the run's model is wired. */
  enabled: z.boolean().default(true),
  /** Accept iff logp(accept) − logp(reject) ≥ threshold: SPEC §4's default, as the critic stage's. */
  threshold: z.number().default(1.0),
  /** Responses per score() call (the critic's rubric header is a prefix they share). */
  batch: z.number().int().min(1).default(64),
});
export type SelfJudgeConfig = z.output<typeof SelfJudgeConfig>;
export const SELF_JUDGE_DEFAULT: SelfJudgeConfig = { enabled: true, threshold: 1.0, batch: 64 };

/** One judged response: a line of self_judge.jsonl. */
export const Judgement = z.strictObject({
  variant: z.string(),
  id: z.string(),
  margin: z.number(),
  threshold: z.number(),
  accepted: z.boolean(),
});
export type Judgement = z.output<typeof Judgement>;

/** Critic (rows) against checks (columns): tp = accepted & passed, fp = accepted & failed, fn = rejected & passed, tn = rejected & failed. */
export interface AgreementTable {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/**
 * Cohen's kappa of two binary raters: (po − pe) / (1 − pe), po the observed agreement, pe
 * the agreement expected from the two raters' marginal rates alone. Null when undefined
 * (no items, or pe = 1: both raters gave one and the same answer to everything).
 */
export function cohensKappa(t: AgreementTable): number | null {
  const n = t.tp + t.fp + t.fn + t.tn;
  if (n === 0) return null;
  const po = (t.tp + t.tn) / n;
  const acceptRate = (t.tp + t.fp) / n;
  const passRate = (t.tp + t.fn) / n;
  const pe = acceptRate * passRate + (1 - acceptRate) * (1 - passRate);
  if (pe >= 1) return null;
  return (po - pe) / (1 - pe);
}

export interface SelfJudgeRow {
  variant: string;
  scope: Scope;
  /** Judged responses (those with verifiable checks). */
  n: number;
  table: AgreementTable;
  /** (tp + tn) / n. */
  agreement: number | null;
  /** Of the critic's accepts, the share the checks pass: tp / (tp + fp). */
  precision: number | null;
  /** Of the responses the checks pass, the share the critic accepts: tp / (tp + fn). */
  recall: number | null;
  kappa: number | null;
  /** Mean critic margin over responses the checks pass, and over those they fail. */
  meanMargin: { passed: number | null; failed: number | null };
}

export interface SelfJudge {
  /** The checks' verdict used: the analysis's primary metric. */
  metric: Metric;
  threshold: number;
  /** How the critic read its labels and which forward scored (provenance). */
  critic: Record<string, unknown>;
  /** Responses not judged: no verifiable checks, or an instruction the critic format cannot hold (several lines). */
  skipped: number;
  /** Per variant, per type then overall. */
  rows: SelfJudgeRow[];
}

/** What the summary needs of a response. */
export interface JudgedResponse {
  id: string;
  type: (typeof TEST_TYPES)[number];
  success: { strict: boolean; loose: boolean };
}

const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null);

export function selfJudgeRow(variant: string, scope: Scope, pairs: { accepted: boolean; passed: boolean; margin: number }[]): SelfJudgeRow {
  const table = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (const p of pairs) table[p.accepted ? (p.passed ? "tp" : "fp") : p.passed ? "fn" : "tn"]++;
  return {
    variant,
    scope,
    n: pairs.length,
    table,
    agreement: ratio(table.tp + table.tn, pairs.length),
    precision: ratio(table.tp, table.tp + table.fp),
    recall: ratio(table.tp, table.tp + table.fn),
    kappa: cohensKappa(table),
    meanMargin: { passed: mean(pairs.filter((p) => p.passed).map((p) => p.margin)), failed: mean(pairs.filter((p) => !p.passed).map((p) => p.margin)) },
  };
}

/** The rows of every variant that has judgements, each type present then overall. */
export function summarizeSelfJudge(variants: { name: string; responses: readonly JudgedResponse[] }[], judgements: readonly Judgement[], o: { metric: Metric; threshold: number; critic: Record<string, unknown>; skipped: number }): SelfJudge {
  const rows: SelfJudgeRow[] = [];
  for (const v of variants) {
    const byId = new Map(judgements.filter((j) => j.variant === v.name).map((j) => [j.id, j]));
    const joined = v.responses.flatMap((r) => {
      const j = byId.get(r.id);
      return j ? [{ type: r.type, accepted: j.accepted, passed: r.success[o.metric], margin: j.margin }] : [];
    });
    if (joined.length === 0) continue;
    for (const t of TEST_TYPES) {
      const part = joined.filter((x) => x.type === t);
      if (part.length) rows.push(selfJudgeRow(v.name, t, part));
    }
    rows.push(selfJudgeRow(v.name, "overall", joined));
  }
  return { metric: o.metric, threshold: o.threshold, critic: o.critic, skipped: o.skipped, rows };
}
