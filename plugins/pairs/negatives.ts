// Synthetic negatives (SPEC §7): how each kind is made by a deterministic edit, and the
// property every negative of that kind must have whoever made it (the base model or an
// edit). The stage keeps a model-made negative only when `checkNegative` passes, falls
// back to the edit otherwise, and drops the item when even the edit fails the check, so
// no pair's rejected side is merely different: it is worse in its kind.
import { findChatMarkup, findLeakage } from "../prompts/clean.ts";
import { REFUSAL_TEMPLATES, VERBOSE_FILLERS, isRefusal } from "../prompts/negatives.ts";
import { Rng } from "../prompts/rng.ts";
import type { NegativeKindName } from "./config.ts";
import { contentWords, coverage, overlap, sameSet, words } from "./text.ts";

/** An item a negative is made for: the instruction and its chosen (trainable) response. */
export interface Chosen {
  id: string;
  instruction: string;
  response: string;
}

export interface CheckOptions {
  /** Tokens of a text (the model's tokenizer in the stage; words in pure tests). */
  tokens: (text: string) => number;
  verboseRatio: number;
  offTopicMaxOverlap: number;
}

/** Why `rejected` is not a valid negative of `kind` for `c`, or null when it is. */
export function checkNegative(kind: NegativeKindName, c: Chosen, rejected: string, o: CheckOptions): string | null {
  if (rejected.trim() === "" || rejected !== rejected.trim()) return "empty or untrimmed";
  if (findChatMarkup(rejected) !== null) return "chat markup";
  if (kind !== "format-violation" && findLeakage(rejected).length) return "a delimiter (only format violations may hold one)";
  const chosenWords = contentWords(c.response);
  const rejWords = contentWords(rejected);
  switch (kind) {
    case "refusal":
      if (!isRefusal(rejected)) return "no refusal language";
      // A refusal that answers anyway is not a refusal: at most a fifth of the chosen's content.
      if (coverage(chosenWords, rejWords) > 0.2) return "repeats the chosen's content";
      return null;
    case "format-violation":
      if (findLeakage(c.response).length) return "the chosen breaks the format itself";
      if (findLeakage(rejected).length === 0) return "no delimiter: the format is intact";
      return null;
    case "incorrect":
      if (isRefusal(rejected) && !isRefusal(c.response)) return "a refusal, not an answer";
      if (!differsInContent(c.response, rejected)) return "same content as the chosen";
      // A wrong answer still answers this instruction: words in common with it or the chosen (random text has none).
      if (coverage(rejWords, new Set([...contentWords(c.instruction), ...chosenWords])) === 0) return "off topic, not an answer";
      return null;
    case "off-topic": {
      const ins = contentWords(c.instruction);
      if (overlap(rejWords, ins) > o.offTopicMaxOverlap) return "shares too much with the instruction";
      if (coverage(chosenWords, rejWords) > 0.5) return "repeats the chosen's content";
      return null;
    }
    case "verbose": {
      const allowed = new Set([...chosenWords, ...VERBOSE_FILLERS.flatMap((f) => [...contentWords(f)])]);
      if ([...rejWords].some((w) => !allowed.has(w))) return "adds content";
      if (o.tokens(rejected) < o.verboseRatio * o.tokens(c.response)) return `not ${o.verboseRatio}x the chosen's length`;
      return null;
    }
  }
}

/** Content (words, numbers, polarity) differs, not only spacing or case. */
export function differsInContent(a: string, b: string): boolean {
  const neg = (s: string) => words(s).filter((w) => w === "not" || w === "no" || w === "never" || w.endsWith("n't")).length;
  return !sameSet(contentWords(a), contentWords(b)) || neg(a) !== neg(b);
}

// ---------------------------------------------------------------- deterministic edits

/** A refusal from the fixed templates (the fallback when the model's is not one). */
export function refusalEdit(rng: Rng): string {
  return rng.pick(REFUSAL_TEMPLATES);
}

/**
 * The chosen running on into a new turn, as a base model does without END: the format
 * rule QC's leakage check enforces (no delimiter inside a response) is broken, while the
 * chosen's content is kept, so the pair differs in format alone.
 */
export function formatViolationEdit(c: Chosen, other: { instruction: string; response: string } | null, fallbackInstruction: string): string {
  return other ? `${c.response}\nInstruction: ${other.instruction}\nResponse: ${other.response}` : `${c.response}\nInstruction: ${fallbackInstruction}\nResponse:`;
}

/** The chosen restated with filler until it is at least `ratio` times as long (characters). */
export function verboseEdit(c: Chosen, rng: Rng, ratio: number): string {
  const fillers = rng.shuffle(VERBOSE_FILLERS);
  let out = c.response;
  // +1 on the ratio: tokens per character differ between filler and content; the check is in tokens.
  for (let i = 0; out.length < (ratio + 1) * c.response.length || i < 2; i++) out += ` ${fillers[i % fillers.length]} ${c.response}`;
  return out;
}

const SWAPS: Record<string, string> = { yes: "No", no: "Yes", true: "False", false: "True", always: "never", never: "always", more: "less", less: "more", larger: "smaller", smaller: "larger", hot: "cold", cold: "hot", before: "after", after: "before" };
const NEGATABLE = /\b(is|are|was|were|can|will|does|do|has|have)\b(?! not)/;

/**
 * A wrong version of the chosen: every number changed, polarity words swapped, and the
 * first auxiliary verb negated; content words of `donor` (another response) replace
 * some of the chosen's when nothing else changed it. Returns null when no edit applies.
 */
export function incorrectEdit(c: Chosen, rng: Rng, donor: string | null): string | null {
  let out = c.response.replace(/\d+(?:\.\d+)?/g, (n) => String(Number(n) + 1 + rng.int(9)));
  out = out.replace(/\b[A-Za-z]+\b/g, (w) => {
    const s = SWAPS[w.toLowerCase()];
    if (!s) return w;
    return w[0] === w[0]!.toUpperCase() ? s[0]!.toUpperCase() + s.slice(1) : s.toLowerCase();
  });
  if (!differsInContent(c.response, out)) out = out.replace(NEGATABLE, "$1 not");
  if (!differsInContent(c.response, out) && donor) {
    const give = [...contentWords(donor)].filter((w) => !contentWords(c.response).has(w) && /^\p{L}{3,}$/u.test(w));
    if (give.length) {
      const pool = rng.shuffle(give);
      let k = 0;
      out = out.replace(/\b\p{L}{4,}\b/gu, (w) => (k < pool.length && rng.next() < 0.5 ? pool[k++]! : w));
      if (k === 0) out = `${out.replace(/[.!?]*$/, "")} ${pool[0]}.`;
    }
  }
  return differsInContent(c.response, out) ? out.trim() : null;
}

/** Of `candidates`, the one sharing least with the instruction (ties: first). */
export function leastRelated<T extends { instruction: string; response: string }>(instruction: string, candidates: readonly T[]): T | null {
  const ins = contentWords(instruction);
  let best: T | null = null;
  let bestScore = Infinity;
  for (const cand of candidates) {
    const s = overlap(contentWords(cand.response), ins) + overlap(contentWords(cand.instruction), ins);
    if (s < bestScore) [best, bestScore] = [cand, s];
  }
  return best;
}
