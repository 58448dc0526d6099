// QC metrics and gates over sft-example records (SPEC §5): a pure function, so
// the arithmetic is tested on hand-made records. Definitions: specs/qc.md.
import { findChatMarkup, findLeakage } from "../prompts/clean.ts";
import { DuplicateIndex, normalizeInstruction } from "../prompts/dedupe.ts";
import { STOP_REASONS, type QcReport, type SftExample, type StopReason } from "../shared/kinds.ts";
import type { QcConfig } from "./config.ts";
import { isTrainable } from "./trainable.ts";
import { INSTRUCTION_TYPES, instructionType } from "./types.ts";

type Rate = QcReport["runaway"];
type Distribution = NonNullable<QcReport["responseTokens"]>;
type Gate = QcReport["gates"][number];

function rate(count: number, total: number): Rate {
  return { count, total, rate: total === 0 ? null : count / total };
}

/** Quantile by linear interpolation between order statistics (numpy's default). */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("quantile of nothing");
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function distribution(values: readonly number[]): Distribution | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { count: s.length, min: s[0]!, p10: quantile(s, 0.1), median: quantile(s, 0.5), mean: sum / s.length, p90: quantile(s, 0.9), max: s.at(-1)! };
}

/** Lower bin edges 0, w, 2w, ... below `max`, then `max` (its bin is open-ended). */
export function histogram(values: readonly number[], binWidth: number, max: number): QcReport["histogram"] {
  const edges: number[] = [];
  for (let e = 0; e < max; e += binWidth) edges.push(e);
  edges.push(max);
  const counts = new Array<number>(edges.length).fill(0);
  for (const v of values) {
    let i = edges.length - 1;
    while (i > 0 && v < edges[i]!) i--;
    counts[i]!++;
  }
  return { edges, counts };
}

export const pct = (x: number | null): string => (x === null ? "n/a" : `${(x * 100).toFixed(1)}%`);

/** One gate: `value op threshold` must hold; a null threshold turns the gate off
 *  (always passes); a null value (nothing to measure) fails an enabled gate. */
export function gate(name: string, value: number | null, op: Gate["op"], threshold: number | null, describe: (v: string) => string, asRate: boolean): Gate {
  const fmt = (x: number | null) => (x === null ? "n/a" : asRate ? pct(x) : String(+x.toFixed(2)));
  const ok = value !== null && threshold !== null && (op === "<" ? value < threshold : op === "<=" ? value <= threshold : value >= threshold);
  const passed = threshold === null || ok;
  const cond = threshold === null ? "(gate off)" : `${ok ? op : op === "<" ? ">=" : op === "<=" ? ">" : "<"} ${fmt(threshold)}`;
  const v = value === null ? "n/a (nothing to measure)" : describe(fmt(value));
  return { name, value, op, threshold, passed, summary: `${v} ${cond}`.trim() };
}

/** Compute every QC metric and gate decision over `records` (in file order). */
export function computeQc(records: readonly SftExample[], config: QcConfig): QcReport {
  const n = records.length;
  const stopReasons = Object.fromEntries(STOP_REASONS.map((r) => [r, 0])) as Record<StopReason, number>;
  const byDelimiter = { "Instruction:": 0, "Response:": 0, END: 0 };
  const typeMix = Object.fromEntries(INSTRUCTION_TYPES.map((t) => [t, 0])) as Record<string, number>;
  let runaway = 0, tokenLimit = 0, leaked = 0, markup = 0, empty = 0, trainable = 0, judged = 0, accepted = 0;
  let instructionExact = 0, instructionNear = 0, responseExact = 0;
  const margins: number[] = [];
  const lengths: number[] = [];
  const index = new DuplicateIndex({ threshold: config.nearDuplicateThreshold });
  const seenInstructionIds = new Set<string>();
  const seenResponses = new Set<string>();

  for (const r of records) {
    stopReasons[r.stopReason]++;
    if (r.stopReason === "runaway") runaway++;
    if (r.hitMaxTokens) tokenLimit++;
    const leak = findLeakage(r.response);
    if (leak.length) leaked++;
    for (const d of leak) byDelimiter[d]++;
    if (findChatMarkup(r.response) !== null) markup++;
    if (r.response.trim() === "") empty++;
    if (isTrainable(r)) trainable++;
    if (r.critic) {
      judged++;
      if (r.critic.accepted) accepted++;
      margins.push(r.critic.margin);
    }
    lengths.push(r.responseTokens);
    typeMix[instructionType(r.instruction)]!++;
    // A second response to the same instruction is not a duplicate instruction.
    if (!seenInstructionIds.has(r.instructionId)) {
      seenInstructionIds.add(r.instructionId);
      const v = index.add(r.instructionId, r.instruction);
      if (v.kind === "exact") instructionExact++;
      else if (v.kind === "near") instructionNear++;
    }
    const norm = normalizeInstruction(r.response);
    if (norm !== "") {
      if (seenResponses.has(norm)) responseExact++;
      else seenResponses.add(norm);
    }
  }

  const responseTokens = distribution(lengths);
  const acceptance = rate(accepted, judged);
  const dupRate = n === 0 ? null : (instructionExact + instructionNear) / n;
  const gates: Gate[] = [
    gate("records", n, ">=", config.minRecords, (v) => `${v} records`, false),
    gate("runaway-rate", n ? runaway / n : null, "<", config.maxRunawayRate, (v) => `runaway ${runaway}/${n} = ${v}`, true),
    gate("token-limit-rate", n ? tokenLimit / n : null, "<", config.maxTokenLimitRate, (v) => `token-limit hits ${tokenLimit}/${n} = ${v}`, true),
    gate("delimiter-leakage", n ? leaked : null, "<=", config.maxLeakage, (v) => `delimiters left in ${v}/${n} responses`, false),
    gate("chat-markup", n ? markup : null, "<=", config.maxChatMarkup, (v) => `chat markup in ${v}/${n} responses`, false),
    gate("median-response-tokens", responseTokens?.median ?? null, "<", config.maxMedianResponseTokens, (v) => `median response ${v} tokens`, false),
    gate("critic-acceptance", acceptance.rate, ">=", config.minCriticAcceptance, (v) => `critic accepted ${accepted}/${judged} = ${v}`, true),
    gate("duplicate-rate", dupRate, "<=", config.maxDuplicateRate, (v) => `duplicate instructions ${instructionExact + instructionNear}/${n} = ${v}`, true),
  ];

  return {
    records: n,
    passed: gates.every((g) => g.passed),
    gates,
    runaway: rate(runaway, n),
    tokenLimit: rate(tokenLimit, n),
    leakage: { ...rate(leaked, n), byDelimiter },
    chatMarkup: rate(markup, n),
    emptyResponses: rate(empty, n),
    trainable: rate(trainable, n),
    responseTokens,
    criticAcceptance: acceptance,
    margins: distribution(margins),
    duplicates: { instructionExact, instructionNear, instructionRate: dupRate, responseExact, responseRate: n === 0 ? null : responseExact / n },
    stopReasons,
    typeMix,
    histogram: histogram(lengths, config.histogramBinWidth, config.histogramMax),
    thresholds: {
      maxRunawayRate: config.maxRunawayRate,
      maxTokenLimitRate: config.maxTokenLimitRate,
      maxLeakage: config.maxLeakage,
      maxChatMarkup: config.maxChatMarkup,
      maxMedianResponseTokens: config.maxMedianResponseTokens,
      minCriticAcceptance: config.minCriticAcceptance,
      maxDuplicateRate: config.maxDuplicateRate,
      minRecords: config.minRecords,
      nearDuplicateThreshold: config.nearDuplicateThreshold,
    },
  };
}
