// The single-token A/B critic (SPEC §4): the base model judges by the log-probs of
// " A" and " B" as the next token after `Answer:`; nothing is sampled.
//
// margin = logp(" A") − logp(" B") at the answer position; accepted iff
// margin ≥ threshold (default 1.0). One forward pass per item through the
// addon's score() with `candidates` and an empty continuation; items go in
// batches, and the rubric header (identical for every item) is shared through
// the KV cache by the scorer's prefix reuse.
//
// Prompts come from plugins/prompts (instructionCriticPrompt, pairCriticPrompt)
// and are tokenized and checked by the contamination guard before they are sent.
import type { Context, Model, ScoreItem, ScoreOutput, ScoreProgress } from "../../native/index.ts";
import type { ContaminationGuard } from "../loader/guard.ts";
import { CRITIC_CHOICES, criticVerdict, instructionCriticPrompt, pairCriticPrompt } from "../prompts/prompts.ts";
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

export interface CriticChoices {
  accept: number;
  reject: number;
}

/**
 * The token ids of " A" and " B" for this tokenizer, as they follow `Answer:` in a critic
 * prompt (SentencePiece tokenizers add a dummy-prefix space to text on its own, so " A"
 * alone may be two tokens while "Answer: A" ends in one). Each must be exactly one token
 * there, the two must differ and not be special; otherwise the critic cannot work with
 * this model and this is a clear error.
 */
export function criticChoiceTokens(model: Pick<Model, "tokenize">, guard?: Pick<ContaminationGuard, "findSpecial">): CriticChoices {
  const tok = (t: string) => model.tokenize(t, { addSpecial: false, parseSpecial: false });
  const base = tok(ANSWER_CONTEXT);
  const one = (text: string): number => {
    const ids = tok(ANSWER_CONTEXT + text);
    const extra = ids.length - base.length;
    if (extra !== 1 || base.some((id, i) => ids[i] !== id)) {
      throw new CriticError(`critic: ${JSON.stringify(text)} after ${JSON.stringify(ANSWER_CONTEXT)} is not exactly one token for this tokenizer (${JSON.stringify(ANSWER_CONTEXT + text)} -> ${ids.join(" ")}, ${JSON.stringify(ANSWER_CONTEXT)} -> ${base.join(" ")}); the A/B critic needs one`);
    }
    const id = ids.at(-1)!;
    if (guard?.findSpecial([id])) throw new CriticError(`critic: ${JSON.stringify(text)} is a special token (${id}) for this tokenizer`);
    return id;
  };
  const accept = one(CRITIC_CHOICES.accept);
  const reject = one(CRITIC_CHOICES.reject);
  if (accept === reject) throw new CriticError(`critic: ${JSON.stringify(CRITIC_CHOICES.accept)} and ${JSON.stringify(CRITIC_CHOICES.reject)} are the same token ${accept}`);
  return { accept, reject };
}

/** What precedes the answer token in every critic prompt (specs/prompts.md §6). */
export const ANSWER_CONTEXT = "\nAnswer:";

/** One judged item: the verdict (the record field) plus the two log-probs behind it. */
export interface CriticScore {
  verdict: CriticVerdict;
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

export class Critic {
  readonly choices: CriticChoices;

  constructor(
    private readonly scorer: Scorer,
    private readonly guard: ContaminationGuard,
    model: Pick<Model, "tokenize">,
  ) {
    this.choices = criticChoiceTokens(model, guard);
  }

  /** A critic on a model's default context (or `context` when given). */
  static forModel(model: Model, guard: ContaminationGuard, context?: Context): Critic {
    return new Critic(context ?? model, guard, model);
  }

  /** Instruction critic: A = clear, self-contained, answerable; B = not. */
  scoreInstructions(items: readonly InstructionItem[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
    return this.run(items.map((it) => ({ name: `instruction-critic:${it.id}`, text: instructionCriticPrompt(it.text) })), opts);
  }

  /** Pair critic: A = the response fulfils the instruction; B = it does not. */
  scorePairs(items: readonly PairItem[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
    return this.run(items.map((it) => ({ name: `pair-critic:${it.id}`, text: pairCriticPrompt(it.instruction, it.response) })), opts);
  }

  /** Score prompts that end at the answer position (built by plugins/prompts). */
  async run(prompts: readonly { name: string; text: string }[], opts: CriticRunOptions = {}): Promise<CriticScore[]> {
    const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
    if (!Number.isFinite(threshold)) throw new CriticError(`critic threshold must be finite, got ${threshold}`);
    const batch = opts.batchSize ?? 64;
    const candidates = [this.choices.accept, this.choices.reject];
    // Tokenize and guard everything first: a bad prompt fails before any work is done.
    const tokens = prompts.map((p) => this.guard.tokenizePrompt(p.text, p.name));
    const out: CriticScore[] = [];
    for (let i = 0; i < tokens.length; i += batch) {
      opts.signal?.throwIfAborted();
      const chunk = tokens.slice(i, i + batch);
      const res = await this.scorer.score(
        chunk.map((prompt) => ({ prompt, continuation: [], candidates })),
        { signal: opts.signal },
      );
      res.items.forEach((item, j) => {
        const [logpA, logpB] = item.candidates ?? [];
        if (logpA === undefined || logpB === undefined) throw new CriticError(`critic: the scorer returned no candidate log-probs for ${prompts[i + j]!.name}`);
        const v = criticVerdict(logpA, logpB, threshold);
        out.push({ verdict: { margin: v.margin, threshold: v.threshold, accepted: v.accepted }, logpA, logpB, promptTokens: item.promptTokenCount });
      });
      opts.onProgress?.(Math.min(i + batch, tokens.length), tokens.length);
    }
    return out;
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
