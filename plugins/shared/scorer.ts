// Teacher-forced scoring on either forward: llama.cpp's scorer (Context.score) or the
// training engine's (native/train.ts), behind the one interface the critic already uses.
//
// The engine's forward is the fast path on a GPU (issue 10 item 4) and llama.cpp's is the
// path every CPU machine keeps. Both see the same token ids: text is tokenized exactly as
// the addon's scorer does (prompt and continuation each on their own, no BOS/EOS, no
// special-token parsing), so their log-probs differ only by the forward's arithmetic
// (specs/training.md §14 states the tolerance).
import type { AdapterUse, Model, ScoreItem, ScoreOptions, ScoreOutput, ScoredItem, ScoreProgress } from "../../native/index.ts";
import { type TrainBackends, type TrainModel, type TrainSession } from "../../native/train.ts";

/** Which forward scores: "auto" = the engine when its CUDA backend is usable, else llama.cpp. */
export type ScorerChoice = "auto" | "llama" | "engine";
export const SCORER_CHOICES = ["auto", "llama", "engine"] as const;

/** What a scoring stage needs: llama.cpp's Context / Model satisfy it, and so does EngineScorer. */
export interface Scorer {
  score(items: ScoreItem[], opts?: ScoreOptions): Promise<ScoreOutput>;
}

/** Which scorer produced a stage's numbers (into its provenance). */
export interface ScorerProvenance {
  scorer: "llama.cpp" | "engine";
  requested: ScorerChoice;
  /** Why this one (the fallback's reason included). */
  reason: string;
  backend: string;
  device: string;
  /** Engine only: how the base is held ("dense" bf16 / f32, or "stored" GGUF blocks). */
  storage?: string;
  /** Engine only: the base's weight type as stored. */
  weightType?: string;
}

/**
 * The choice for a request, given what this build and machine offer and whether memory
 * allows the engine's copy of the base next to what is resident. Pure: the selection
 * rule in one place, tested without a GPU.
 */
export function chooseScorer(requested: ScorerChoice, backends: TrainBackends, memory: { ok: boolean; why?: string } = { ok: true }): { kind: "llama" | "engine"; reason: string } {
  if (requested === "llama") return { kind: "llama", reason: "configured (scorer: llama)" };
  if (requested === "engine") {
    if (!memory.ok) throw new Error(`scorer: engine was asked for, but ${memory.why ?? "memory does not allow it"}`);
    return { kind: "engine", reason: "configured (scorer: engine)" };
  }
  if (!backends.cudaUsable) return { kind: "llama", reason: `auto: the engine's CUDA backend is not usable (${backends.cudaReason ?? "no reason given"})` };
  if (!memory.ok) return { kind: "llama", reason: `auto: CUDA is usable but ${memory.why ?? "memory does not allow the engine's copy"}` };
  return { kind: "engine", reason: "auto: the engine's CUDA backend is usable" };
}

export interface EngineScorerOptions {
  /** Tokenizes text items (the llama.cpp model of the same file, or a vocabOnly load of it). */
  tokenizer?: Pick<Model, "tokenize">;
  /** Sequences per forward. Default 16 on CUDA, 4 on the CPU. */
  microBatch?: number;
  /** Sequences per evaluate call: a progress and cancellation point. Default 64. */
  chunk?: number;
  /** CPU backend threads. Default: physical cores. */
  threads?: number;
}

/**
 * Scores on the training engine's forward. Continuations go through session.evaluate with
 * the loss mask on exactly the continuation tokens (the engine scores token j from
 * position j-1, as llama.cpp's scorer does); candidates come from the prompt's last logit
 * row, log-softmaxed here in double. No KV cache is involved, so a result depends only on
 * its items. Adapters: at most one per call, scale 1 (the session applies alpha/rank, as
 * llama.cpp does at scale 1); it is loaded into a session of its own, kept for later calls.
 */
export class EngineScorer implements Scorer {
  readonly kind = "engine";
  private readonly sessions = new Map<string, TrainSession>();
  private readonly microBatch: number;
  private readonly chunk: number;

  constructor(
    readonly model: TrainModel,
    private readonly opts: EngineScorerOptions = {},
  ) {
    this.microBatch = opts.microBatch ?? (model.info.backend === "cuda" ? 16 : 4);
    this.chunk = Math.max(this.microBatch, opts.chunk ?? 64);
  }

  /** The base with no LoRA is scored by a minimal session (its LoRA is never applied). */
  private session(adapter: string | null): TrainSession {
    const key = adapter ?? "";
    let s = this.sessions.get(key);
    if (!s) {
      const threads = this.opts.threads === undefined ? {} : { threads: this.opts.threads };
      s = adapter === null ? this.model.createSession({ rank: 1, targets: ["q"], dropout: 0, ...threads }) : this.model.createSession({ adapter, dropout: 0, ...threads });
      this.sessions.set(key, s);
    }
    return s;
  }

  private adapterOf(adapters: AdapterUse[] | undefined): string | null {
    if (!adapters || adapters.length === 0) return null;
    if (adapters.length > 1) throw new Error(`engine scorer: one adapter per call, got ${adapters.length}`);
    const u = adapters[0]!;
    if ((u.scale ?? 1) !== 1) throw new Error(`engine scorer: adapter scale ${u.scale} (only 1: the engine applies the adapter's own alpha/rank)`);
    return u.adapter.path;
  }

  private ids(x: ArrayLike<number> | string, what: string): number[] {
    if (typeof x !== "string") return Array.from(x);
    if (!this.opts.tokenizer) throw new Error(`engine scorer: the ${what} is text but no tokenizer was given`);
    return this.opts.tokenizer.tokenize(x, { addSpecial: false, parseSpecial: false });
  }

  async score(items: ScoreItem[], opts: ScoreOptions = {}): Promise<ScoreOutput> {
    const t0 = performance.now();
    const { signal, onProgress } = opts;
    const adapter = this.adapterOf(opts.adapters);
    const session = this.session(adapter);
    const useLora = adapter !== null;
    const norm = items.map((it, i) => {
      const prompt = this.ids(it.prompt, "prompt");
      if (prompt.length === 0) throw new RangeError(`engine scorer: item ${i} has an empty prompt`);
      return { prompt, cont: this.ids(it.continuation, "continuation"), cands: it.candidates === undefined ? undefined : Array.from(it.candidates) };
    });
    const out: ScoredItem[] = norm.map((n) => ({ logprobs: [], sum: 0, continuationTokens: n.cont, promptTokenCount: n.prompt.length, ...(n.cands ? { candidates: [] as number[] } : {}) }));
    const stats = { items: items.length, tokens: 0, tokensDecoded: 0, tokensReused: 0, prefixTokens: 0, decodeCalls: 0, outputs: 0, seconds: 0 };
    for (const n of norm) stats.tokens += n.prompt.length + n.cont.length;
    let done = 0;
    const progress = (k: number) => {
      if (k === 0) return;
      done += k;
      onProgress?.({ stage: "score", done, total: items.length, tokensDecoded: stats.tokensDecoded } satisfies ScoreProgress);
    };

    // Sorted by length so a micro-batch pads little (the CUDA backend pads to its longest).
    const order = norm.map((n, i) => ({ i, len: n.prompt.length + n.cont.length })).filter((s) => norm[s.i]!.cont.length > 0);
    order.sort((a, b) => a.len - b.len || a.i - b.i);
    // An item with neither continuation nor candidates needs no forward.
    progress(norm.filter((n) => n.cont.length === 0 && !n.cands).length);
    for (let c = 0; c < order.length; c += this.chunk) {
      signal?.throwIfAborted();
      const part = order.slice(c, c + this.chunk);
      let n = 0;
      for (const s of part) n += s.len;
      const tokens = new Int32Array(n);
      const loss = new Uint8Array(n);
      const offsets = new Float64Array(part.length + 1);
      let o = 0;
      part.forEach((s, k) => {
        const { prompt, cont } = norm[s.i]!;
        tokens.set(prompt, o);
        tokens.set(cont, o + prompt.length);
        loss.fill(1, o + prompt.length, o + s.len);
        o += s.len;
        offsets[k + 1] = o;
      });
      const maxLength = Math.max(2, part.at(-1)!.len);
      const r = await session.evaluate({ tokens, loss, offsets }, { useLora, logprobs: true, microBatch: this.microBatch, maxLength, signal });
      const lp = r.logprobs!, off = r.logprobOffsets!;
      part.forEach((s, k) => {
        const row = Array.from(lp.subarray(off[k]!, off[k + 1]!));
        const want = norm[s.i]!.cont.length;
        if (row.length !== want) throw new Error(`engine scorer: ${row.length} log-probs for a continuation of ${want} tokens`);
        const item = out[s.i]!;
        item.logprobs = row;
        item.sum = row.reduce((a, b) => a + b, 0);
      });
      stats.tokensDecoded += n;
      stats.outputs += off[part.length]!;
      stats.decodeCalls += Math.ceil(part.length / this.microBatch);
      progress(part.filter((s) => !norm[s.i]!.cands).length);
    }

    // Candidates: one forward of the prompt, the last row only.
    for (let i = 0; i < norm.length; i++) {
      const { prompt, cands } = norm[i]!;
      if (!cands) continue;
      signal?.throwIfAborted();
      const row = await session.logits(prompt, { useLora, lastOnly: true });
      const V = row.length;
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(row[v]! - max);
      const lse = max + Math.log(sum);
      out[i]!.candidates = cands.map((c) => {
        if (!(Number.isInteger(c) && c >= 0 && c < V)) throw new RangeError(`engine scorer: candidate ${c} is outside the vocabulary (${V})`);
        return row[c]! - lse;
      });
      stats.tokensDecoded += prompt.length;
      stats.outputs += 1;
      stats.decodeCalls += 1;
      progress(1);
    }
    stats.seconds = (performance.now() - t0) / 1000;
    return { items: out, stats };
  }

  /** The backend's device memory high-water mark over this scorer's sessions (0 on the CPU). */
  peakMemoryBytes(): number {
    let peak = 0;
    for (const s of this.sessions.values()) peak = Math.max(peak, s.memory().peakMemoryBytes);
    return peak;
  }

  /** Frees the sessions (the model is its owner's: the model service). */
  dispose(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
  }
}
