// The A/B critic (SPEC §4): the base model judges by the log-probs of two labels after
// `Answer:` (" A" = accept, " B" = reject by default); nothing is sampled.
//
// margin = logp(accept) − logp(reject) at the answer position; accepted iff
// margin ≥ threshold (default 1.0). One forward pass per item through the addon's
// score(); items go in batches, and the rubric header (identical for every item) is
// shared through the KV cache by the scorer's prefix reuse.
//
// Which labels, and how they are read, depends on the tokenizer (chooseCriticLabels):
// the first pair of CRITIC_LABEL_PAIRS whose labels are each one token after `Answer:`
// is read as two candidate next tokens of the prompt (`candidates`, empty continuation);
// where no pair is, the default pair's multi-token labels are scored as two continuations
// of the prompt, each label's log-prob the sum over its tokens (the scorer decodes the
// shared prompt once). The choice goes into the stages' provenance.
//
// Prompts come from plugins/prompts (instructionCriticPrompt, pairCriticPrompt, given the
// labels) and are tokenized and checked by the contamination guard before they are sent.
import type { Context, Model, ScoreItem, ScoreOutput, ScoreProgress } from "../../native/index.ts";
import type { ContaminationGuard } from "../loader/guard.ts";
import { CRITIC_CHOICES, CRITIC_LABEL_PAIRS, criticVerdict, instructionCriticPrompt, pairCriticPrompt, type CriticLabels } from "../prompts/prompts.ts";
import type { CriticVerdict } from "../shared/kinds.ts";

export const DEFAULT_THRESHOLD = 1.0;

export class CriticError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CriticError";
  }
}

/** Anything that scores: a Model (its default context) or a Context. */
export interface Scorer {
  score(items: ScoreItem[], opts?: { signal?: AbortSignal; onProgress?: (p: ScoreProgress) => void }): Promise<ScoreOutput>;
}

/** single-token: each label is one token, read as a candidate next token; summed-log-probs: each label's tokens scored as a continuation, log-probs summed. */
export type CriticMethod = "single-token" | "summed-log-probs";

/** How the critic reads its labels for one tokenizer: what the stages record in provenance. */
export interface CriticChoice {
  labels: CriticLabels;
  method: CriticMethod;
  /** Each label's token ids where it follows `Answer:` (one each for single-token). */
  tokens: { accept: number[]; reject: number[] };
  /** Why this choice (the pairs passed over and why). */
  reason: string;
}

/** What precedes the label in every critic prompt (specs/prompts.md §6). */
export const ANSWER_CONTEXT = "\nAnswer:";

/**
 * A label's token ids as it follows `Answer:` in a critic prompt, measured in context:
 * SentencePiece tokenizers add a dummy-prefix space to text on its own, so " A" alone may
 * be two tokens while "Answer: A" ends in one. A string is why the label is unusable.
 */
export function labelTokens(model: Pick<Model, "tokenize">, label: string, guard?: Pick<ContaminationGuard, "findSpecial">): number[] | string {
  const tok = (t: string) => model.tokenize(t, { addSpecial: false, parseSpecial: false });
  const base = tok(ANSWER_CONTEXT);
  const ids = tok(ANSWER_CONTEXT + label);
  if (ids.length <= base.length || base.some((id, i) => ids[i] !== id)) {
    return `${JSON.stringify(ANSWER_CONTEXT + label)} -> ${ids.join(" ")} does not extend ${JSON.stringify(ANSWER_CONTEXT)} -> ${base.join(" ")}`;
  }
  const extra = ids.slice(base.length);
  const special = guard?.findSpecial(extra);
  if (special) return `${JSON.stringify(label)} holds special token ${special.token.id}`;
  return extra;
}

const q = (s: string) => JSON.stringify(s);

/** A pair's labels measured in context: token ids, or why a label cannot be read. */
interface Measured {
  labels: CriticLabels;
  accept: number[] | string;
  reject: number[] | string;
}

/** Why a measured pair is not two single tokens, or null when it is. */
function notSingle(m: Measured): string | null {
  if (typeof m.accept === "string") return m.accept;
  if (typeof m.reject === "string") return m.reject;
  const long = (["accept", "reject"] as const).filter((k) => (m[k] as number[]).length !== 1);
  if (long.length) return long.map((k) => `${q(m.labels[k])} is ${(m[k] as number[]).length} tokens`).join(", ");
  if (m.accept[0] === m.reject[0]) return `${q(m.labels.accept)} and ${q(m.labels.reject)} are the same token`;
  return null;
}

/** Why a measured pair cannot be scored even as multi-token labels, or null when it can. */
function notScorable(m: Measured): string | null {
  if (typeof m.accept === "string") return m.accept;
  if (typeof m.reject === "string") return m.reject;
  if (m.accept.join() === m.reject.join()) return `${q(m.labels.accept)} and ${q(m.labels.reject)} tokenize alike`;
  return null;
}

/**
 * The critic's labels for this tokenizer: the first pair of CRITIC_LABEL_PAIRS whose two
 * labels are single, distinct, non-special tokens after `Answer:`; else (or with `method:
 * "summed-log-probs"`) the first pair whose labels tokenize cleanly and differ, scored by
 * summed log-probs. Throws a CriticError when no pair can be read at all.
 */
export function chooseCriticLabels(model: Pick<Model, "tokenize">, guard?: Pick<ContaminationGuard, "findSpecial">, opts: { method?: "auto" | CriticMethod } = {}): CriticChoice {
  const method = opts.method ?? "auto";
  const measured: Measured[] = CRITIC_LABEL_PAIRS.map((labels) => ({ labels, accept: labelTokens(model, labels.accept, guard), reject: labelTokens(model, labels.reject, guard) }));
  const tokens = (m: Measured) => ({ accept: m.accept as number[], reject: m.reject as number[] });
  const passedOver: string[] = [];
  if (method !== "summed-log-probs") {
    for (const m of measured) {
      const why = notSingle(m);
      if (why === null) {
        const reason = passedOver.length ? `the first pair of single tokens in the list; passed over: ${passedOver.join("; ")}` : "single tokens";
        return { labels: m.labels, method: "single-token", tokens: tokens(m), reason };
      }
      passedOver.push(why);
    }
    if (method === "single-token") throw new CriticError(`critic: no label pair is two single tokens after ${q(ANSWER_CONTEXT)} for this tokenizer (${passedOver.join("; ")})`);
  }
  const pick = measured.find((m) => notScorable(m) === null);
  if (!pick) throw new CriticError(`critic: no label pair can be read after ${q(ANSWER_CONTEXT)} for this tokenizer (${measured.map(notScorable).join("; ")})`);
  const reason = method === "summed-log-probs" ? "configured (summed-log-probs)" : `no single-token pair (${passedOver.join("; ")})`;
  return { labels: pick.labels, method: "summed-log-probs", tokens: tokens(pick), reason };
}

/** The choice in one line, for logs and the sentinel. */
export function describeCriticChoice(c: CriticChoice): string {
  return `${q(c.labels.accept)} / ${q(c.labels.reject)} = tokens [${c.tokens.accept.join(" ")}] / [${c.tokens.reject.join(" ")}], ${c.method}: ${c.reason}`;
}

/** One judged item: the verdict (the record field) plus the two log-probs behind it. */
export interface CriticScore {
  verdict: CriticVerdict;
  /** logp of the accept label (" A" by default) and of the reject label (" B"). */
  logpA: number;
  logpB: number;
  promptTokens: number;
}

export interface CriticRunOptions {
  threshold?: number;
  /** Items per score() call (default 64): a progress and cancellation point. */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface InstructionItem {
  /** Names the prompt in guard errors, e.g. the instruction id. */
  id: string;
  text: string;
}

export interface PairItem {
  id: string;
  instruction: string;
  response: string;
}

export interface CriticOptions {
  /** auto (default): single tokens where a pair has them, else summed log-probs; or one method forced. */
  method?: "auto" | CriticMethod;
}

export class Critic {
  /** The labels and how they are read (chooseCriticLabels). */
  readonly choice: CriticChoice;

  constructor(
    private readonly scorer: Scorer,
    private readonly guard: ContaminationGuard,
    model: Pick<Model, "tokenize">,
    opts: CriticOptions = {},
  ) {
    this.choice = chooseCriticLabels(model, guard, opts);
  }

  /** A critic on a model's default context (or `context` when given). */
  static forModel(model: Model, guard: ContaminationGuard, context?: Context): Critic {
    return new Critic(context ?? model, guard, model);
  }

  /** Instruction critic: A = clear, self-contained, answerable; B = not. */
  scoreInstructions(items: readonly InstructionItem[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
    return this.run(items.map((it) => ({ name: `instruction-critic:${it.id}`, text: instructionCriticPrompt(it.text, this.choice.labels) })), opts);
  }

  /** Pair critic: A = the response fulfils the instruction; B = it does not. */
  scorePairs(items: readonly PairItem[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
    return this.run(items.map((it) => ({ name: `pair-critic:${it.id}`, text: pairCriticPrompt(it.instruction, it.response, this.choice.labels) })), opts);
  }

  /** Score prompts that end at the answer position (built by plugins/prompts with this critic's labels). */
  async run(prompts: readonly { name: string; text: string }[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
    const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
    if (!Number.isFinite(threshold)) throw new CriticError(`critic threshold must be finite, got ${threshold}`);
    const batch = opts.batchSize ?? 64;
    // Tokenize and guard everything first: a bad prompt fails before any work is done.
    const tokens = prompts.map((p) => this.guard.tokenizePrompt(p.text, p.name));
    const out: CriticScore[] = [];
    for (let i = 0; i < tokens.length; i += batch) {
      opts.signal?.throwIfAborted();
      const chunk = tokens.slice(i, i + batch);
      const logps = await this.labelLogProbs(chunk, opts.signal);
      logps.forEach(({ accept: logpA, reject: logpB, promptTokens }, j) => {
        if (logpA === undefined || logpB === undefined) throw new CriticError(`critic: the scorer returned no label log-probs for ${prompts[i + j]!.name}`);
        const v = criticVerdict(logpA, logpB, threshold);
        out.push({ verdict: { margin: v.margin, threshold: v.threshold, accepted: v.accepted }, logpA, logpB, promptTokens });
      });
      opts.onProgress?.(Math.min(i + batch, tokens.length), tokens.length);
    }
    return out;
  }

  /** logp(accept) and logp(reject) after each prompt: one score() call for the chunk. */
  private async labelLogProbs(prompts: number[][], signal?: AbortSignal): Promise<{ accept?: number; reject?: number; promptTokens: number }[]> {
    const { accept, reject } = this.choice.tokens;
    if (this.choice.method === "single-token") {
      const res = await this.scorer.score(prompts.map((prompt) => ({ prompt, continuation: [], candidates: [accept[0]!, reject[0]!] })), { signal });
      return res.items.map((it) => ({ accept: it.candidates?.[0], reject: it.candidates?.[1], promptTokens: it.promptTokenCount }));
    }
    // Two continuations per prompt, side by side: the scorer decodes the common prompt once.
    const res = await this.scorer.score(prompts.flatMap((prompt) => [{ prompt, continuation: accept }, { prompt, continuation: reject }]), { signal });
    return prompts.map((_, j) => {
      const a = res.items[2 * j], r = res.items[2 * j + 1];
      const whole = (it: typeof a, want: number[]) => (it && it.logprobs.length === want.length ? it.sum : undefined);
      return { accept: whole(a, accept), reject: whole(r, reject), promptTokens: a?.promptTokenCount ?? 0 };
    });
  }
}

/** The critic's choice as a provenance record (null-free, JSON). */
export function criticProvenance(c: CriticChoice): Record<string, unknown> {
  return { labels: { accept: c.labels.accept, reject: c.labels.reject }, method: c.method, tokens: c.tokens, reason: c.reason, default: c.labels === CRITIC_CHOICES };
}

/** What a stage records before any item is judged: the choice for this model, or why there is none. */
export function criticChoiceRecord(model: Pick<Model, "tokenize">, guard?: Pick<ContaminationGuard, "findSpecial">): Record<string, unknown> {
  try {
    return criticProvenance(chooseCriticLabels(model, guard));
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Function API: judge instructions with a model's default context. */
export function scoreInstructions(model: Model, guard: ContaminationGuard, items: readonly InstructionItem[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
  return Critic.forModel(model, guard).scoreInstructions(items, opts);
}

/** Function API: judge (instruction, response) pairs with a model's default context. */
export function scorePairs(model: Model, guard: ContaminationGuard, items: readonly PairItem[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
  return Critic.forModel(model, guard).scorePairs(items, opts);
}
