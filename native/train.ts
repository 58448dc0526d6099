// The typed TypeScript face of the training engine (native/src/train): LoRA training of
// llama/qwen2 models from GGUF weights on our own engine: a CPU reference backend and a
// CUDA backend behind one contract (native/src/train/backend.h). See specs/training.md.
//
//   loadTrainModel(path, {backend})       the frozen base, loaded by the chosen backend
//   model.createSession({rank, alpha, ...})  LoRA parameters + optimizer state
//   session.train(data, opts)             the training loop (off the JS thread), with
//                                         progress, cancellation, checkpoints, resume
//   session.evaluate(data)                per-example response loss (no dropout)
//   session.referenceLogprobs(pairs)      DPO's reference sums; train(pairs, {objective: "dpo"})
//   session.saveAdapter(path)             llama.cpp's GGUF LoRA format
//   lossMask(tokenizer, text, span)       the response-only mask from character offsets
//
// The tokenizer is the inference addon's (native/index.ts); training data reaches the
// engine as token ids plus a 0/1 loss mask per token.

import { decode, encode } from "@msgpack/msgpack";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { trainingAddon, withSignal, type Model } from "./index.ts";

// ---- the raw bindings ----------------------------------------------------------------

type Handle = { readonly __brand: unique symbol };
interface NativeCancelSource {
  cancel(): void;
}
interface TrainAddon {
  CancelSource: new () => NativeCancelSource;
  trainLoadModel(path: string, opts: LoadTrainModelOptions): Promise<Handle>;
  trainBackends(): TrainBackends;
  trainModelInfo(h: Handle): TrainModelInfo;
  trainModelDispose(h: Handle): void;
  trainCreateSession(h: Handle, opts: object): Handle;
  trainSessionInfo(s: Handle): SessionInfo;
  trainSessionDispose(s: Handle): void;
  trainGetParams(s: Handle): Float32Array;
  trainSetParams(s: Handle, p: Float32Array): void;
  trainSaveAdapter(s: Handle, path: string, meta: Record<string, string>): Promise<void>;
  trainRun(s: Handle, data: TrainData, opts: object, onProgress?: (p: TrainProgress) => void, cancel?: NativeCancelSource): Promise<TrainResult>;
  trainEvaluate(s: Handle, data: TrainData, opts: object, cancel?: NativeCancelSource): Promise<EvalResult>;
  trainReferenceLogprobs(s: Handle, data: TrainData, opts: object, cancel?: NativeCancelSource): Promise<Float64Array>;
  trainLogits(s: Handle, tokens: Int32Array, opts: object): Promise<Float32Array>;
  trainGreedy(s: Handle, prompt: Int32Array, opts: object, cancel?: NativeCancelSource): Promise<Int32Array>;
  trainSelfCheck(opts: object): Promise<SelfCheckResult[]>;
  trainPlan(data: TrainData, opts: object): TrainPlan;
}

function addon(): TrainAddon {
  return trainingAddon() as TrainAddon;
}


// ---- types ---------------------------------------------------------------------------

export const LORA_TARGETS = ["q", "k", "v", "o", "gate", "up", "down"] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** Which training backend loads and computes: "auto" = cuda when built with it and a GPU is present. */
export type TrainBackendKind = "auto" | "cpu" | "cuda";

export interface LoadTrainModelOptions {
  /** Default "auto". */
  backend?: TrainBackendKind;
  /**
   * How the CUDA backend holds the frozen base: "dense" (bf16) or "stored" (the GGUF's own
   * blocks, e.g. q4_K kept quantized in GPU memory and dequantized per use: the GGUF
   * analogue of QLoRA). The CPU backend always holds f32. Default "dense".
   */
  storage?: "dense" | "stored";
  /** CUDA device ordinal. Default 0. */
  device?: number;
}

export interface TrainBackends {
  /** The addon was compiled with the CUDA training backend. */
  cudaBuilt: boolean;
  /** A CUDA device can be used now. */
  cudaUsable: boolean;
  /** Why not, when cudaUsable is false. */
  cudaReason?: string;
}

export interface TrainModelInfo {
  path: string;
  /** The backend that holds this base: "cpu" or "cuda". */
  backend: "cpu" | "cuda";
  device: string;
  storage: "dense" | "stored";
  /** Bytes the base takes where it lives (host for cpu, device for cuda). */
  baseBytes: number;
  architecture: "llama" | "qwen2";
  /** ggml type of the attention weights as stored, e.g. "f16", "q4_K" (training uses them dequantized). */
  weightType: string;
  parameterCount: number;
  vocabSize: number;
  embeddingSize: number;
  layerCount: number;
  headCount: number;
  headCountKv: number;
  headDim: number;
  feedForwardSize: number;
  /** norm: adjacent pairs (llama); neox: halves (qwen2). */
  rope: "norm" | "neox";
  ropeBase: number;
  rmsEpsilon: number;
  qkvBias: boolean;
  tiedOutput: boolean;
}

export interface SessionOptions {
  /** Default 16. */
  rank?: number;
  /** Default 32: the adapter scales B·A by alpha/rank. */
  alpha?: number;
  /** On the LoRA input, training only. Default 0.05. */
  dropout?: number;
  /** Default all seven. */
  targets?: LoraTarget[];
  /** Seeds the LoRA init (A uniform ±1/sqrt(n_in), B zero). Default 0. */
  seed?: number;
  /** Default: physical cores. */
  threads?: number;
  /** Start from this adapter (its rank, alpha and targets) instead of a fresh init. */
  adapter?: string;
  /** Keep only each layer's input and recompute the rest in backward (less memory, ~1/3 more compute). Default false. */
  checkpointActivations?: boolean;
}

export interface SessionInfo {
  parameterCount: number;
  rank: number;
  alpha: number;
  dropout: number;
  scale: number;
  targets: LoraTarget[];
  seed: number;
  backend: string;
  device: string;
  /** CPU worker threads of the session (the CPU backend computes with them). */
  threads: number;
  /** The frozen base's bytes where it lives. */
  baseBytes: number;
  /** Device memory high-water mark of the backend (0 on the CPU backend). */
  peakMemoryBytes: number;
}

/** Examples stored flat: example i is tokens[offsets[i]..offsets[i+1]); loss[j] = 1 marks a target token. */
export interface TrainData {
  tokens: Int32Array;
  loss: Uint8Array;
  offsets: Int32Array | Float64Array;
}

export interface TrainExample {
  tokens: ArrayLike<number>;
  /** One entry per token: truthy = this token is a loss target. */
  loss: ArrayLike<number | boolean>;
}

export interface TrainOptions {
  epochs?: number;
  microBatch?: number;
  gradAccum?: number;
  /** Steps per length-bucketing window (1: no bucketing across steps). Default 8. */
  bucketWindow?: number;
  /** Longer examples are cut (counted in the result). Default 1024. */
  maxLength?: number;
  /** Any valid id; padded positions are never computed. Default 0. */
  padId?: number;
  /** Orders the data. Default 0. */
  dataSeed?: number;
  /** Dropout masks. Default 0. */
  seed?: number;
  lr?: number;
  /** Floor of the decay, as a fraction of lr. Default 0. */
  minLrRatio?: number;
  /** Explicit warm-up steps; otherwise ceil(warmupRatio * total). */
  warmupSteps?: number;
  /** Default 0.03. */
  warmupRatio?: number;
  schedule?: "cosine" | "linear" | "constant";
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Global-norm clipping; 0 turns it off. Default 1. */
  maxGradNorm?: number;
  /** Where checkpoints go (written atomically): every checkpointEvery steps and on stop/cancel. */
  checkpointPath?: string;
  checkpointEvery?: number;
  /** Stop after this many steps of this call (a checkpoint is written; resume later). */
  stopAfterSteps?: number;
  /** Cap the plan at this many steps; the schedule spans the cap (smoke runs). */
  maxSteps?: number;
  /** Continue a run from its checkpoint (same data and configuration, checked). */
  resumeFrom?: string;
  /**
   * "sft" (default): token-mean cross-entropy. "dpo": preference pairs (packPairs: examples
   * 2i chosen, 2i+1 rejected) against `reference`; the data plan then orders pairs, microBatch
   * counts pairs, and the session's LoRA dropout is off (specs/training.md §15).
   */
  objective?: "sft" | "dpo";
  /** dpo: default 0.1. */
  beta?: number;
  /** dpo: "sigmoid" (DPO, default) or "ipo" (on per-token mean log-probs). */
  loss?: "sigmoid" | "ipo";
  /** dpo: per-example summed target log-probs of the frozen starting policy (session.referenceLogprobs), in the run's identity. */
  reference?: Float64Array;
  /** Order the data as pairs (2i, 2i+1 together). Default: true for dpo, else false. */
  pairs?: boolean;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

/** DPO's per-step metrics, means over the step's pairs (TRL's names). */
export interface DpoMetrics {
  /** beta x (policy - reference) summed log-prob of the chosen responses (IPO: per-token means). */
  "rewards/chosen": number;
  "rewards/rejected": number;
  /** chosen - rejected. */
  "rewards/margins": number;
  /** Fraction of pairs whose margin is > 0. */
  "rewards/accuracies": number;
}

export interface ReferenceOptions {
  /** Default true: the session's adapter (DPO after SFT); false: the bare base (the DPO-only baseline). */
  useLora?: boolean;
  /** Sequences per forward. Default 8. */
  microBatch?: number;
  /** Must equal training's maxLength (both score the same cut sequences). Default 1024. */
  maxLength?: number;
  signal?: AbortSignal;
}

export interface StepRecord {
  step: number;
  epoch: number;
  /** The objective's step loss: SFT the mean over its loss tokens, DPO the mean over its pairs (NaN for a step without any). */
  loss: number;
  lossTokens: number;
  tokens: number;
  lr: number;
  /** Before clipping. */
  gradNorm: number;
  seconds: number;
  /** The objective's extra values (DPO: DpoMetrics); absent for SFT. */
  metrics?: Record<string, number>;
}

export interface TrainProgress extends StepRecord {
  totalSteps: number;
  elapsed: number;
  tokensPerSecond: number;
  /** Seconds to the end of the plan at this call's pace. */
  eta: number;
  /** A checkpoint holding this step (and all before it) was just written. */
  checkpointed: boolean;
}

export interface TrainResult {
  /** The steps run by this call. */
  records: StepRecord[];
  /** Every step of the run so far, resumed parts included (carried in checkpoints). */
  history: StepRecord[];
  startStep: number;
  endStep: number;
  totalSteps: number;
  warmupSteps: number;
  completed: boolean;
  tokensSeen: number;
  lossTokensSeen: number;
  seconds: number;
  truncatedExamples: number;
  checkpoint: string | null;
  /** Identity of the run (data + configuration) that a checkpoint is bound to. */
  fingerprint: string;
}

export interface EvalOptions {
  /** Default true: the session's adapter; false: the base model. */
  useLora?: boolean;
  microBatch?: number;
  maxLength?: number;
  /** Also return log p of every loss token. */
  logprobs?: boolean;
  signal?: AbortSignal;
}

export interface EvalResult {
  lossSum: number;
  lossTokens: number;
  exampleLossSum: Float64Array;
  exampleLossTokens: Int32Array;
  logprobs?: Float64Array;
  logprobOffsets?: Float64Array;
}

export interface SelfCheckResult {
  group: "op" | "kernel" | "model";
  name: string;
  maxAbsErr: number;
  maxRelErr: number;
  checked: number;
  tolerance: number;
  passed: boolean;
}

// ---- models and sessions -----------------------------------------------------------------

/** The frozen base, loaded for training by one backend (CPU: f32; CUDA: bf16 or as stored). */
export class TrainModel {
  #h: Handle | null;
  readonly info: TrainModelInfo;

  /** @internal use loadTrainModel() */
  constructor(h: Handle) {
    this.#h = h;
    this.info = addon().trainModelInfo(h);
  }

  private get live(): Handle {
    if (!this.#h) throw new Error("training model is disposed");
    return this.#h;
  }

  createSession(opts: SessionOptions = {}): TrainSession {
    return new TrainSession(addon().trainCreateSession(this.live, opts), this);
  }

  /** Frees the weights once no session uses them. Idempotent. */
  dispose(): void {
    if (this.#h) addon().trainModelDispose(this.#h);
    this.#h = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export async function loadTrainModel(path: string, opts: LoadTrainModelOptions = {}): Promise<TrainModel> {
  return new TrainModel(await addon().trainLoadModel(path, opts));
}

/** Which training backends this build and machine offer. */
export function trainBackends(): TrainBackends {
  return addon().trainBackends();
}

/** LoRA parameters and optimizer state over a TrainModel. One job at a time. */
export class TrainSession {
  #s: Handle | null;
  readonly model: TrainModel;
  readonly info: SessionInfo;

  /** @internal use model.createSession() */
  constructor(s: Handle, model: TrainModel) {
    this.#s = s;
    this.model = model;
    this.info = addon().trainSessionInfo(s);
  }

  private get live(): Handle {
    if (!this.#s) throw new Error("training session is disposed");
    return this.#s;
  }

  /** Memory now: the base's bytes and the backend's device high-water mark (info holds the values at creation). */
  memory(): { baseBytes: number; peakMemoryBytes: number } {
    const i = addon().trainSessionInfo(this.live);
    return { baseBytes: i.baseBytes, peakMemoryBytes: i.peakMemoryBytes };
  }

  /** Runs the training plan (or the rest of it, when resuming). Rejects with AbortError on cancel, after writing a checkpoint if checkpointPath is set. */
  train(data: TrainData, opts: TrainOptions = {}): Promise<TrainResult> {
    const s = this.live;
    const { onProgress, signal, ...rest } = opts;
    return withSignal(signal, (cancel) => addon().trainRun(s, data, rest, onProgress, cancel));
  }

  evaluate(data: TrainData, opts: EvalOptions = {}): Promise<EvalResult> {
    const s = this.live;
    const { signal, ...rest } = opts;
    return withSignal(signal, (cancel) => addon().trainEvaluate(s, data, rest, cancel));
  }

  /**
   * DPO's reference: each example's summed target log-probs under the session as it is now
   * (no dropout), by the engine's own forward. Call before training moves the parameters;
   * pass the result as train({objective: "dpo", reference}).
   */
  referenceLogprobs(data: TrainData, opts: ReferenceOptions = {}): Promise<Float64Array> {
    const s = this.live;
    const { signal, ...rest } = opts;
    return withSignal(signal, (cancel) => addon().trainReferenceLogprobs(s, data, rest, cancel));
  }

  /**
   * Logits of every position ([n x vocab]), or of the last one. llamaParity (parity tests
   * only): round where llama.cpp's CPU path rounds with flash attention off: q, k, v and
   * attention probabilities to f16 (its f16 KV cache), each matmul input to the type its
   * weight type multiplies with (f16, bf16, q8_0, q8_K).
   */
  logits(tokens: ArrayLike<number>, opts: { useLora?: boolean; lastOnly?: boolean; llamaParity?: boolean } = {}): Promise<Float32Array> {
    return addon().trainLogits(this.live, Int32Array.from(tokens), opts);
  }

  /** Greedy decoding by full recomputation (small models, tests); stops after a stop token. */
  greedy(prompt: ArrayLike<number>, opts: { maxTokens?: number; stop?: number[]; useLora?: boolean; signal?: AbortSignal } = {}): Promise<number[]> {
    const s = this.live;
    const { signal, ...rest } = opts;
    return withSignal(signal, (cancel) => addon().trainGreedy(s, Int32Array.from(prompt), rest, cancel)).then((a) => Array.from(a));
  }

  /** Writes the adapter in llama.cpp's GGUF LoRA format; `meta` adds string keys (not general.* / adapter.*). */
  saveAdapter(path: string, meta: Record<string, string> = {}): Promise<void> {
    return addon().trainSaveAdapter(this.live, path, meta);
  }

  /** A copy of the LoRA parameters (flat, the engine's layout). */
  getParams(): Float32Array {
    return addon().trainGetParams(this.live);
  }

  setParams(p: Float32Array): void {
    addon().trainSetParams(this.live, p);
  }

  dispose(): void {
    if (this.#s) addon().trainSessionDispose(this.#s);
    this.#s = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface TrainPlan {
  stepsPerEpoch: number;
  totalSteps: number;
  /** Examples longer than maxLength (cut). */
  truncated: number;
  /** steps[k][m] = example indices of micro-batch m of step k, in the order training uses. */
  steps: number[][][];
}

/** The order training visits the data in (specs/training.md, "Data order"), without training. */
export function planTraining(data: TrainData, opts: Pick<TrainOptions, "epochs" | "microBatch" | "gradAccum" | "bucketWindow" | "maxLength" | "dataSeed" | "maxSteps" | "pairs" | "objective"> = {}): TrainPlan {
  return addon().trainPlan(data, opts);
}

/**
 * Seconds the CPU backend would take for this plan, before training: every real token is a
 * forward and a backward (~4 x parameters FLOPs, the base frozen) at the rate the CPU
 * engine reaches per thread (~13 GFLOP/s, measured: 105 tokens/s on the 0.5b shape with
 * 16 threads of an H200 host). For the "this will take hours" warning, not a promise.
 */
export function estimateTrainingSeconds(model: TrainModel, session: TrainSession, data: TrainData, opts: Parameters<typeof planTraining>[1] = {}): number {
  const plan = planTraining(data, opts);
  const maxLength = opts.maxLength ?? 1024;
  const offsets = data.offsets;
  let tokens = 0;
  for (const step of plan.steps) {
    for (const micro of step) {
      for (const e of micro) tokens += Math.min(maxLength, Number(offsets[e + 1]) - Number(offsets[e]));
    }
  }
  return (4 * model.info.parameterCount * tokens) / (session.info.threads * CPU_FLOPS_PER_THREAD);
}
const CPU_FLOPS_PER_THREAD = 13e9;

/** Gradient checks of every op and the whole model, kernel checks (specs/training.md). */
export function selfCheck(opts: { seed?: number; threads?: number } = {}): Promise<SelfCheckResult[]> {
  return addon().trainSelfCheck(opts);
}

// ---- data --------------------------------------------------------------------------------

export function packExamples(examples: TrainExample[]): TrainData {
  let n = 0;
  for (const e of examples) {
    if (e.tokens.length !== e.loss.length) throw new Error("packExamples: tokens and loss differ in length");
    if (e.tokens.length === 0) throw new Error("packExamples: empty example");
    n += e.tokens.length;
  }
  const tokens = new Int32Array(n);
  const loss = new Uint8Array(n);
  const offsets = new Float64Array(examples.length + 1);
  let o = 0;
  examples.forEach((e, i) => {
    for (let j = 0; j < e.tokens.length; j++) {
      tokens[o + j] = e.tokens[j]!;
      loss[o + j] = e.loss[j] ? 1 : 0;
    }
    o += e.tokens.length;
    offsets[i + 1] = o;
  });
  return { tokens, loss, offsets };
}

/** Preference pairs as DPO's data: pair i becomes examples 2i (chosen) and 2i+1 (rejected). */
export function packPairs(pairs: { chosen: TrainExample; rejected: TrainExample }[]): TrainData {
  return packExamples(pairs.flatMap((p) => [p.chosen, p.rejected]));
}

// ---- the reference cache -----------------------------------------------------------------

/** What a reference cache holds: the sums and the key they were computed under. */
export interface ReferenceCache {
  /** Whatever identifies the reference (data, model, adapter, useLora, maxLength): the caller's key. */
  fingerprint: string;
  sums: Float64Array;
}

const REFERENCE_CACHE_VERSION = 1;

/**
 * Writes the reference sums beside a run (MessagePack, atomically), so that a resumed run
 * reuses them instead of recomputing them under a policy that has already moved. The sums
 * travel as their little-endian bytes: msgpack has no float64-array type, and bytes keep
 * every bit (a step-0 loss of exactly log 2 depends on it).
 */
export function writeReferenceCache(path: string, cache: ReferenceCache): void {
  const le = new Uint8Array(cache.sums.length * 8);
  const view = new DataView(le.buffer);
  cache.sums.forEach((v, i) => view.setFloat64(i * 8, v, true));
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, encode({ version: REFERENCE_CACHE_VERSION, fingerprint: cache.fingerprint, count: cache.sums.length, sums: le }));
  renameSync(tmp, path);
}

/** The cached sums when `path` holds a cache for `fingerprint`; null when absent or for another key. Throws on a damaged file. */
export function readReferenceCache(path: string, fingerprint: string): Float64Array | null {
  if (!existsSync(path)) return null;
  const rec = decode(readFileSync(path)) as { version?: unknown; fingerprint?: unknown; count?: unknown; sums?: unknown };
  if (rec?.version !== REFERENCE_CACHE_VERSION || typeof rec.fingerprint !== "string" || typeof rec.count !== "number" ||
      !(rec.sums instanceof Uint8Array) || rec.sums.length !== rec.count * 8) {
    throw new Error(`${path}: not a reference cache (version ${REFERENCE_CACHE_VERSION})`);
  }
  if (rec.fingerprint !== fingerprint) return null;
  const view = new DataView(rec.sums.buffer, rec.sums.byteOffset, rec.sums.byteLength);
  const sums = new Float64Array(rec.count);
  for (let i = 0; i < rec.count; i++) sums[i] = view.getFloat64(i * 8, true);
  return sums;
}

/** What lossMask needs of a tokenizer: the inference addon's Model (a vocabOnly load is enough). */
export type Tokenizer = Pick<Model, "tokenize" | "tokenBytes">;

export interface LossMask {
  tokens: number[];
  /** 1 = loss token. */
  loss: number[];
  /** Byte span [start, end) of each token in the text's UTF-8 (clamped to the text). */
  spans: [number, number][];
  /** Bytes of the loss span not covered by loss tokens (a token straddling its start). */
  uncoveredBytes: number;
}

const utf8 = new TextEncoder();

/**
 * Tokenizes `text` whole (no BOS/EOS, no special parsing: the contamination guard's
 * defaults) and marks the tokens of the loss span `lossBytes` (a UTF-8 byte range of
 * `text`, e.g. trainingText().lossBytes).
 *
 * Each token's byte span comes from concatenating the tokens' bytes. The rule:
 * a token is a loss token iff its first byte lies inside the loss span. A token that
 * straddles the start of the span (begins in the prompt, ends in the response) is NOT a
 * loss token: its first bytes are prompt text the model is given at inference, and at
 * inference the prompt ends before the span anyway. A token that would straddle the end
 * is a loss token (the span ends the text, so this does not arise for training texts).
 *
 * SentencePiece vocabularies add a space before the first word; the concatenated pieces
 * then read " " + text, and spans are shifted back by that one byte. Anything else that
 * does not reproduce the text byte for byte is an error, never a guess.
 */
export function lossMask(tok: Tokenizer, text: string, lossBytes: { start: number; end: number }): LossMask {
  const bytes = utf8.encode(text);
  if (!(lossBytes.start >= 0 && lossBytes.start <= lossBytes.end && lossBytes.end <= bytes.length)) {
    throw new Error(`lossMask: span [${lossBytes.start}, ${lossBytes.end}) is outside the text (${bytes.length} bytes)`);
  }
  const tokens = tok.tokenize(text);
  const pieces = tokens.map((t) => tok.tokenBytes(t));
  const total = pieces.reduce((n, p) => n + p.length, 0);
  let shift = 0;
  if (total === bytes.length + 1 && pieces.length > 0 && pieces[0]![0] === 0x20) shift = 1;
  else if (total !== bytes.length) throw new Error(`lossMask: the tokens' bytes (${total}) do not reproduce the text (${bytes.length} bytes)`);
  const concat = new Uint8Array(total);
  let o = 0;
  for (const p of pieces) {
    concat.set(p, o);
    o += p.length;
  }
  for (let i = 0; i < bytes.length; i++) {
    if (concat[i + shift] !== bytes[i]) throw new Error(`lossMask: the tokens' bytes differ from the text at byte ${i}`);
  }
  const loss: number[] = [];
  const spans: [number, number][] = [];
  let pos = -shift;
  let covered = 0;
  for (const p of pieces) {
    const start = Math.max(0, pos);
    const end = pos + p.length;
    spans.push([start, end]);
    const isLoss = start >= lossBytes.start && start < lossBytes.end ? 1 : 0;
    loss.push(isLoss);
    if (isLoss) covered += Math.min(end, lossBytes.end) - start;
    pos = end;
  }
  return { tokens, loss, spans, uncoveredBytes: lossBytes.end - lossBytes.start - covered };
}
