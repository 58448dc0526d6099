// Batched generation: the typed face of native/src/generator.cpp. Re-exported by
// native/index.ts, so callers import from there.
//
//   generate(modelOrContext, requests, opts)        -> Promise<{ results, stats }>
//   generateStream(modelOrContext, requests, opts)  -> AsyncIterable of results as they finish
//
// One call takes thousands of requests. They run with continuous batching over the
// context's `parallel` sequences, off the JS thread; requests whose prompts start with the
// same tokens (a few-shot header) decode that prefix once and share its KV cache. Each
// request samples with its own seeded llama.cpp sampler chain, so its output does not
// depend on what else runs with it; temperature 0 is greedy (argmax).

import { Context, Model, abortError, generationAddon, type AdapterUse } from "./index.ts";

// ---- the raw binding ---------------------------------------------------------------

interface NativeCancelSource {
  cancel(): void;
}
interface NativeResult {
  index: number;
  text: string;
  tokens: Int32Array;
  promptTokens: number;
  promptTokensReused: number;
  stop: StopReason;
  stopString: string | null;
  stopToken: StopToken | null;
  timings: GenerateTimings;
}
interface NativeEvent {
  results: NativeResult[];
  done: number;
  total: number;
  tokensGenerated: number;
  seconds: number;
}
/** GenerateStats less the rate, which is derived in TypeScript. */
type NativeStats = Omit<GenerateStats, "tokensPerSecond">;
interface GenerateAddon {
  CancelSource: new () => NativeCancelSource;
  generate(context: unknown, requests: object[], opts: object, onEvent: (e: NativeEvent) => void, cancel?: NativeCancelSource): Promise<NativeStats>;
}

function addon(): GenerateAddon {
  return generationAddon() as GenerateAddon;
}

// ---- types -------------------------------------------------------------------------

export interface SamplingOptions {
  /** 0 (default): greedy, the most likely token every step. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 (default) keeps all. */
  topK?: number;
  /** Nucleus sampling; 1 (default) is off. In (0, 1]. */
  topP?: number;
  /** Drop tokens below minP x the top token's probability; 0 (default) is off. */
  minP?: number;
  /** llama.cpp's repetition penalty (logit / p if positive, x p if not) on recently generated tokens; 1 (default) is off. */
  repetitionPenalty?: number;
  /** How many of the last generated tokens the penalty covers (default 64). The prompt is never penalised. */
  repetitionWindow?: number;
  /**
   * Seed of this request's sampler, an integer in [0, 2^32 - 2]. Unset: derived from the
   * call's `sampling.seed` (default 0) and the request's index, so equal prompts give
   * different samples, reproducibly.
   */
  seed?: number;
  /** Tokens to generate at most (default 256); also capped by the room left in the context. */
  maxTokens?: number;
  /** Generation ends when the text contains one of these (matched across token boundaries). */
  stop?: string[];
}

export interface GenerateRequest {
  /** Text (tokenized with no BOS/EOS and no special-token parsing) or token ids. */
  prompt: string | ArrayLike<number>;
  /**
   * Optional text or ids put before the prompt, tokenized on its own. Prefix sharing does
   * not depend on it: any common leading tokens are shared (see minSharedPrefix). Use it
   * to pin where a header's tokenization ends.
   */
  prefix?: string | ArrayLike<number>;
  /** Overrides the call's `sampling`, field by field. */
  sampling?: SamplingOptions;
}

/**
 * eos: the model emitted an end-of-generation token; control: it emitted another control
 * (or unknown) token — a BOS starting its next document, an end marker the file does not
 * flag as end-of-generation, chat markup; length: maxTokens (or the context) reached;
 * stop: a stop string matched.
 */
export type StopReason = "eos" | "control" | "length" | "stop";

/** The token that ended a generation with stop eos or control: never part of text or tokens. */
export interface StopToken {
  id: number;
  /** Its text, control tokens rendered (e.g. "</s>", "<|im_start|>"). */
  text: string;
}

export interface GenerateTimings {
  /** From the call's start until the request got a sequence. */
  queuedMs: number;
  /** From then until its first token was sampled (its prompt's prefill, batched with others). */
  promptMs: number;
  /** From its first token to its last. */
  generateMs: number;
}

export interface GenerateResult {
  /** Position of the request in the call's `requests`. */
  index: number;
  /**
   * The generated text, ending before the matched stop string. Never holds the text of a
   * control token: the model's first control or end-of-generation token ends the text
   * (see stop, stopToken).
   */
  text: string;
  /** The generated token ids, including those that produced a stop string; not the token that ended it (stopToken). */
  tokens: number[];
  nTokens: number;
  promptTokens: number;
  /** Prompt tokens taken from the shared-prefix cache instead of computed. */
  promptTokensReused: number;
  stop: StopReason;
  /** The stop string that matched (stop === "stop"), else null. */
  stopString: string | null;
  /** The end-of-generation or control token that ended it (stop eos or control), else null. */
  stopToken: StopToken | null;
  timings: GenerateTimings;
}

export interface GenerateProgress {
  stage: "generate";
  done: number;
  total: number;
  tokensGenerated: number;
  tokensPerSecond: number;
}

export interface GenerateStats {
  requests: number;
  /** Prompt positions the requests needed. */
  promptTokens: number;
  /** Of them, decoded in the requests' own sequences. */
  promptTokensDecoded: number;
  /** Of them, copied from the shared-prefix cache. */
  tokensReused: number;
  /** Positions decoded into the shared-prefix cache. */
  prefixTokens: number;
  tokensGenerated: number;
  decodeCalls: number;
  seconds: number;
  /** tokensGenerated / seconds. */
  tokensPerSecond: number;
}

export interface GenerateOptions {
  /** Defaults for every request (each request's `sampling` overrides them field by field). */
  sampling?: SamplingOptions;
  /** LoRA adapters applied for this call. */
  adapters?: AdapterUse[];
  /** Common prompt prefixes shorter than this are recomputed rather than shared. Default 16. */
  minSharedPrefix?: number;
  /** Share common prompt prefixes through the KV cache. Default true. */
  reusePrefix?: boolean;
  /**
   * Where greedy tokens are picked when every request of the call is greedy without a
   * repetition penalty. "graph": llama.cpp's argmax inside the decode graph, one id per
   * sequence comes back instead of the logit row. "host": from the copied row. Same
   * tokens either way. "auto" (default): the graph when the logits live on a GPU.
   * Sampling with a temperature always runs on the host.
   */
  greedy?: "auto" | "graph" | "host";
  /** Called on the JS thread as each request finishes (in finishing order). A throw stops the call and rejects it with that error. */
  onResult?: (result: GenerateResult) => void;
  onProgress?: (p: GenerateProgress) => void;
  signal?: AbortSignal;
}

export interface GenerateOutput {
  /** In request order. */
  results: GenerateResult[];
  stats: GenerateStats;
}

// ---- calls -------------------------------------------------------------------------

function nativeContext(target: Model | Context): unknown {
  if (target instanceof Model) return target.context.native;
  if (target instanceof Context) return target.native;
  throw new TypeError("generate: the target must be a Model or a Context");
}

// number[], Int32Array and Uint32Array cross as they are; other array-likes are copied.
function ids(v: unknown): unknown {
  if (typeof v === "string" || Array.isArray(v) || v instanceof Int32Array || v instanceof Uint32Array || v == null || typeof v !== "object") return v;
  return "length" in v ? Array.from(v as ArrayLike<number>) : v;
}

function toResult(r: NativeResult): GenerateResult {
  return {
    index: r.index,
    text: r.text,
    tokens: Array.from(r.tokens),
    nTokens: r.tokens.length,
    promptTokens: r.promptTokens,
    promptTokensReused: r.promptTokensReused,
    stop: r.stop,
    stopString: r.stopString,
    stopToken: r.stopToken,
    timings: r.timings,
  };
}

/**
 * Generates a continuation for every request. Resolves when all are done, with the
 * results in request order; `onResult` sees each as it finishes. Rejects with an
 * AbortError when `signal` aborts (the context stays usable), and with a TypeError or
 * RangeError naming the request on bad input, before any work starts.
 */
export async function generate(target: Model | Context, requests: readonly GenerateRequest[], opts: GenerateOptions = {}): Promise<GenerateOutput> {
  const ctx = nativeContext(target);
  if (!Array.isArray(requests)) throw new TypeError("generate: requests must be an array");
  const { onResult, onProgress, signal, adapters, ...rest } = opts;
  if (signal?.aborted) throw abortError(signal);
  const reqs = requests.map((r) => (r !== null && typeof r === "object" ? { ...r, prompt: ids(r.prompt), prefix: ids(r.prefix) } : r));
  const nativeOpts = { ...rest, adapters: adapters?.map((u) => ({ adapter: u.adapter.native, scale: u.scale ?? 1 })) };

  const n = addon();
  const cancel = new n.CancelSource();
  const onAbort = () => cancel.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  const results: GenerateResult[] = new Array(requests.length);
  let callbackError: { error: unknown } | null = null;
  const onEvent = (e: NativeEvent) => {
    if (callbackError) return;
    try {
      for (const raw of e.results) {
        const r = toResult(raw);
        results[r.index] = r;
        onResult?.(r);
      }
      onProgress?.({ stage: "generate", done: e.done, total: e.total, tokensGenerated: e.tokensGenerated, tokensPerSecond: e.seconds > 0 ? e.tokensGenerated / e.seconds : 0 });
    } catch (error) {
      callbackError = { error };
      cancel.cancel();
    }
  };
  try {
    const stats = await n.generate(ctx, reqs, nativeOpts, onEvent, cancel);
    if (callbackError) throw (callbackError as { error: unknown }).error;
    return { results, stats: { ...stats, tokensPerSecond: stats.seconds > 0 ? stats.tokensGenerated / stats.seconds : 0 } };
  } catch (e) {
    if (callbackError) throw (callbackError as { error: unknown }).error;
    if (signal?.aborted && e instanceof Error && e.name === "AbortError") throw abortError(signal);
    throw e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The results of generate() as an async iterable, each as soon as it finishes. Leaving
 * the loop early (break, throw) stops the generation and waits for the context to be free.
 */
export function generateStream(target: Model | Context, requests: readonly GenerateRequest[], opts: Omit<GenerateOptions, "onResult"> = {}): AsyncIterableIterator<GenerateResult> {
  const queue: GenerateResult[] = [];
  let head = 0;
  let wake: (() => void) | null = null;
  let outcome: { error?: unknown } | null = null;
  const stop = new AbortController();
  const outer = opts.signal;
  const onOuterAbort = () => stop.abort(outer?.reason);
  if (outer?.aborted) stop.abort(outer.reason);
  else outer?.addEventListener("abort", onOuterAbort, { once: true });

  const run = generate(target, requests, {
    ...opts,
    signal: stop.signal,
    onResult: (r) => {
      queue.push(r);
      wake?.();
    },
  }).then(
    () => {
      outcome = {};
    },
    (error) => {
      outcome = { error };
    },
  );
  void run.then(() => wake?.());

  return (async function* () {
    try {
      for (;;) {
        while (head < queue.length) {
          const r = queue[head]!;
          queue[head++] = undefined as never;
          yield r;
        }
        const o = outcome as { error?: unknown } | null;
        if (o) {
          if ("error" in o) throw o.error;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      outer?.removeEventListener("abort", onOuterAbort);
      if (!outcome) {
        stop.abort();
        await run;
      }
    }
  })();
}

/**
 * The text with the matched stop string put back: what a cleaner that cuts at delimiters
 * expects (plugins/prompts/clean.ts: "the raw text should include it").
 */
export function textWithStop(r: Pick<GenerateResult, "text" | "stopString">): string {
  return r.stopString === null ? r.text : r.text + r.stopString;
}
