// Best-of-N (SPEC §7): of N responses the SFT model wrote for one instruction, the one
// the pair critic likes most against the one it likes least, kept only when the critic's
// margin gap says the difference is real.
import { findChatMarkup, findLeakage } from "../prompts/clean.ts";
import type { StopReason } from "../shared/kinds.ts";
import { normalizeText } from "./text.ts";

export interface Candidate {
  id: string;
  response: string;
  stopReason: StopReason;
  seed: number;
  /** Pair-critic margin (base model). */
  margin: number;
}

/** May be the chosen side: what SFT would train on (plugins/qc/trainable.ts's content rules). */
export function fitToChoose(c: Pick<Candidate, "response" | "stopReason">): boolean {
  return c.response.trim() !== "" && c.stopReason !== "runaway" && findLeakage(c.response).length === 0 && findChatMarkup(c.response) === null;
}

/** May be the rejected side: any non-empty text without chat markup (a runaway is a fine negative). */
export function fitToReject(c: Pick<Candidate, "response">): boolean {
  return c.response.trim() !== "" && findChatMarkup(c.response) === null;
}

export type Ranked = { chosen: Candidate; rejected: Candidate; gap: number } | { skip: "too-few-candidates" | "identical" | "small-gap"; gap: number | null };

/**
 * The highest-margin fit-to-choose candidate against the lowest-margin other one. Ties:
 * first in order. `minMarginGap` ≥ 0, so the critic always prefers the chosen: a pair
 * whose only choosable response the critic ranks below a runaway is no pair.
 */
export function rankBestOfN(cands: readonly Candidate[], minMarginGap: number): Ranked {
  const choosable = cands.filter(fitToChoose);
  if (choosable.length === 0) return { skip: "too-few-candidates", gap: null };
  const chosen = choosable.reduce((a, b) => (b.margin > a.margin ? b : a));
  const others = cands.filter((c) => c !== chosen && fitToReject(c) && normalizeText(c.response) !== normalizeText(chosen.response));
  if (others.length === 0) return { skip: cands.filter(fitToReject).length > 1 ? "identical" : "too-few-candidates", gap: null };
  const rejected = others.reduce((a, b) => (b.margin < a.margin ? b : a));
  const gap = chosen.margin - rejected.margin;
  if (!(gap > minMarginGap)) return { skip: "small-gap", gap };
  return { chosen, rejected, gap };
}
