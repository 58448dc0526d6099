// The typed TypeScript face of the native addon (llama.cpp inside). This is the only
// module that loads the .node binary; everything else imports from here.
//
//   loadModel(path, opts)          -> Model (weights, tokenizer, and a default Context)
//   model.score(items, opts)       teacher-forced log-probs, batched, shared prefixes reused
//   loadAdapter(model, path)       llama.cpp GGUF LoRA, applied per call with a scale
//   quantize(in, out, type)        llama_model_quantize
//   buildInfo()                    llama.cpp commit/version, backend, CUDA arch (provenance)
//
// Heavy work runs on native threads; calls return Promises, report progress through
// `onProgress` and stop on `signal` (an AbortSignal) with an AbortError.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// ---- the binary --------------------------------------------------------------------

/** Where the addon is built (scripts/postinstall.ts); SELFTUNE_NATIVE_ADDON overrides. */
export const ADDON_PATH = process.env.SELFTUNE_NATIVE_ADDON ?? join(import.meta.dir, "build", "Release", "selftune_native.node");

interface NativeCancelSource {
  cancel(): void;
  readonly cancelled: boolean;
}
interface NativeModel {
  readonly info: ModelInfo;
  readonly path: string;
  readonly disposed: boolean;
  tokenize(text: string, opts?: TokenizeOptions): Int32Array;
  detokenize(ids: ArrayLike<number>, opts?: DetokenizeOptions): string;
  tokenPiece(id: number, opts?: { special?: boolean }): string;
  tokenBytes(id: number, opts?: { special?: boolean }): Uint8Array;
  dispose(): void;
}
interface NativeContext {
  readonly info: ContextInfo;
  readonly disposed: boolean;
  score(items: ScoreItem[], opts: object, onProgress?: (p: ScoreProgress) => void, cancel?: NativeCancelSource): Promise<ScoreOutput>;
  evalLogits(tokens: ArrayLike<number>, opts: object, cancel?: NativeCancelSource): Promise<Float32Array>;
  reset(): Promise<void>;
  dispose(): void;
}
interface NativeAdapter {
  readonly path: string;
  readonly alpha: number;
  readonly disposed: boolean;
  dispose(): void;
}
interface NativeAddon {
  CancelSource: new () => NativeCancelSource;
  buildInfo(): BuildInfo;
  setLogLevel(level: LogLevel): void;
  getLogLevel(): LogLevel;
  physicalCores(): number;
  loadModel(path: string, opts: object, onProgress?: (p: LoadProgress) => void, cancel?: NativeCancelSource): Promise<NativeModel>;
  createContext(model: NativeModel, opts: object): Promise<NativeContext>;
  loadAdapter(model: NativeModel, path: string): Promise<NativeAdapter>;
  quantize(inPath: string, outPath: string, type: QuantType, opts: object): Promise<void>;
  checkGguf(path: string): GgufVerdict;
}

let addon: NativeAddon | null = null;

function native(): NativeAddon {
  if (addon) return addon;
  if (!existsSync(ADDON_PATH)) {
    throw new Error(`selftune native addon not built (${ADDON_PATH} missing): run \`bun run build:native\``);
  }
  // Bun cannot `import` a .node file; require can.
  const require = createRequire(import.meta.url);
  addon = require(ADDON_PATH) as NativeAddon;
  const level = process.env.SELFTUNE_LLAMA_LOG;
  if (level) addon.setLogLevel(level as LogLevel);
  return addon;
}

/** True when the addon is built and loads. */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

// ---- build info, logging, threads --------------------------------------------------

export interface BuildInfo {
  /** Short commit of the llama.cpp tree the addon was built from. */
  llamaCommit: string;
  /** Commit count of that tree (the bundle from npm is one squashed commit: 1). */
  llamaBuildNumber: number;
  /** Release tag recorded by the npm package (e.g. "v0.5.0"), "" for a user tree. */
  llamaTag: string;
  /** "npm:node-llama-cpp@3.22.1", or "user:<dir>" when built from LLAMA_CPP_DIR. */
  llamaSource: string;
  llamaVersion: string;
  ggmlVersion: string;
  backend: "cpu" | "cuda";
  /** CUDA architectures compiled for ("" on CPU builds). */
  cudaArch: string;
  compiler: string;
  gpuOffload: boolean;
  /** ggml's CPU feature line (AVX2 = 1 | ...). */
  systemInfo: string;
  devices: { name: string; description: string; memoryTotal: number }[];
}

export function buildInfo(): BuildInfo {
  return native().buildInfo();
}

export type LogLevel = "none" | "error" | "warn" | "info" | "debug";

/** llama.cpp's log output at or above `level` goes to stderr. Default "error" (or SELFTUNE_LLAMA_LOG). */
export function setLogLevel(level: LogLevel): void {
  native().setLogLevel(level);
}

export function getLogLevel(): LogLevel {
  return native().getLogLevel();
}

/** Physical cores this process may use: the default thread count for llama.cpp. */
export function physicalCores(): number {
  return native().physicalCores();
}

// ---- cancellation ------------------------------------------------------------------

/** The AbortError a cancelled call rejects with (the signal's own reason when it is one). For native/*.ts. */
export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error && reason.name === "AbortError") return reason;
  const err = new Error("the operation was aborted");
  err.name = "AbortError";
  (err as Error & { code: string }).code = "ABORT_ERR";
  return err;
}

/** Runs `fn` with a native cancel handle wired to `signal`. For native/*.ts. */
export async function withSignal<T>(signal: AbortSignal | undefined, fn: (cancel?: NativeCancelSource) => Promise<T>): Promise<T> {
  if (!signal) return fn();
  if (signal.aborted) throw abortError(signal);
  const source = new (native().CancelSource)();
  const onAbort = () => source.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await fn(source);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

// ---- models ------------------------------------------------------------------------

export interface SpecialTokenInfo {
  id: number;
  text: string;
  /** From llama.cpp's token attributes: "control", "user_defined", "unknown", "unused", "byte", "normal", and "eog". */
  attributes: string[];
}

export interface ModelInfo {
  architecture: string;
  description: string;
  /** e.g. "F16", "Q4_K - Medium" ("" for a vocabulary-only load). */
  fileType: string;
  vocabType: string;
  tokenizerModel: string;
  tokenizerPre: string;
  parameterCount: number;
  sizeBytes: number;
  vocabSize: number;
  /** n_ctx_train */
  contextTrain: number;
  /** n_embd */
  embeddingSize: number;
  /** n_layer */
  layerCount: number;
  headCount: number;
  headCountKv: number;
  bos: number | null;
  eos: number | null;
  eot: number | null;
  sep: number | null;
  pad: number | null;
  newline: number | null;
  /** What the file asks for; our tokenize() adds nothing unless asked (addSpecial). */
  addBos: boolean;
  addEos: boolean;
  /** The file carries a chat template. It is never applied (SPEC §2). */
  chatTemplatePresent: boolean;
  vocabOnly: boolean;
  /** Control, user-defined, unknown and end-of-generation tokens, and BOS/EOS/EOT/SEP/PAD. */
  specialTokens: SpecialTokenInfo[];
  specialTokenIds: number[];
  controlTokenIds: number[];
  eogTokenIds: number[];
}

export interface TokenizeOptions {
  /** Add BOS/EOS if the model asks for them. Default false. */
  addSpecial?: boolean;
  /** Turn special-token text (e.g. "<|im_start|>") into special token ids. Default false: it stays text. */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /** Drop a leading BOS / trailing EOS when the model adds them. Default false. */
  removeSpecial?: boolean;
  /** Render control tokens as their text. Default false (they render as nothing). */
  unparseSpecial?: boolean;
}

export interface ContextOptions {
  /** KV cells shared by all parallel sequences. Default min(4096, n_ctx_train). */
  contextSize?: number;
  /** Parallel sequences (items scored / requests generated at once). Default 8. */
  parallel?: number;
  /** Tokens per llama_decode. Default 2048. */
  batchSize?: number;
  /** Tokens per compute graph. Default 512. */
  ubatchSize?: number;
  /** Logit rows per llama_decode; bounds host memory (rows x vocab x 4 bytes). Default 512. */
  outputsMax?: number;
  /** Default: physical cores. */
  threads?: number;
  flashAttention?: "auto" | "on" | "off";
  /** K/V cache element type. Default f16; f32 (with flashAttention "off") makes batched == alone to ~1e-6. */
  kvType?: "f16" | "f32" | "bf16" | "q8_0";
  /**
   * One KV cache for all sequences (default): a shared prefix is stored once and copying
   * it to a sequence is free. false gives each sequence contextSize/(parallel+1) cells of
   * its own, and then no prefixes are shared.
   */
  kvUnified?: boolean;
  /**
   * Let llama.cpp run large-batch matmuls of CPU-resident layers (gpuLayers < all) on a GPU
   * (default true). With gpuLayers 0 and opOffload false a CUDA build computes on the CPU
   * alone, with the CPU build's numerics (specs/inference.md).
   */
  opOffload?: boolean;
}

export interface LoadModelOptions extends ContextOptions {
  /** Layers offloaded to the GPU; -1 (default) all of them. Ignored on CPU builds. */
  gpuLayers?: number;
  /** Load only the tokenizer: no weights, no context, no scoring. */
  vocabOnly?: boolean;
  /** Memory-map the file (default true). */
  mmap?: boolean;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export interface LoadProgress {
  stage: "load";
  fraction: number;
}

export interface ContextInfo {
  contextSize: number;
  /** Cells one sequence may use: contextSize when kvUnified. */
  sequenceContextSize: number;
  batchSize: number;
  ubatchSize: number;
  parallel: number;
  outputsMax: number;
  threads: number;
}

// ---- scoring -----------------------------------------------------------------------

export interface ScoreItem {
  /** Token ids, or text (tokenized with no BOS/EOS and no special-token parsing). Not empty. */
  prompt: ArrayLike<number> | string;
  /** Scored given the prompt, teacher-forced. Text is tokenized on its own, not joined to the prompt. */
  continuation: ArrayLike<number> | string;
  /** Token ids whose log-probs at the last prompt position are wanted (e.g. " A", " B"). */
  candidates?: ArrayLike<number>;
}

export interface ScoredItem {
  /** log p(continuation[i] | prompt, continuation[<i]), natural log. */
  logprobs: number[];
  sum: number;
  /** The continuation's ids (its tokenization when given as text). */
  continuationTokens: number[];
  promptTokenCount: number;
  /** log p(candidate | prompt), present when candidates were given. */
  candidates?: number[];
}

export interface ScoreStats {
  items: number;
  /** Positions the items needed evaluated. */
  tokens: number;
  /** Positions actually run through the model (shared prefixes count once). */
  tokensDecoded: number;
  /** Positions taken from the prefix cache instead of computed. */
  tokensReused: number;
  /** Of tokensDecoded, those decoded into the prefix cache. */
  prefixTokens: number;
  decodeCalls: number;
  outputs: number;
  seconds: number;
}

export interface ScoreOutput {
  items: ScoredItem[];
  stats: ScoreStats;
}

export interface ScoreProgress {
  stage: "score";
  done: number;
  total: number;
  tokensDecoded: number;
}

export interface AdapterUse {
  adapter: Adapter;
  /** Multiplies the adapter's alpha/rank. Default 1. */
  scale?: number;
}

export interface ScoreOptions {
  /** LoRA adapters applied for this call. */
  adapters?: AdapterUse[];
  /** Common prefixes shorter than this are recomputed rather than shared. Default 16. */
  minSharedPrefix?: number;
  /** Share common prefixes through the KV cache. Default true. */
  reusePrefix?: boolean;
  /**
   * Where each logit row is log-softmaxed. "graph": inside the decode graph, on the
   * model's device, so a few floats per scored position come back instead of the
   * vocabulary-sized row. "host": the row is copied and reduced on the CPU (the reference
   * path). "auto" (default): the graph when the logits live on a GPU (on an H100, 1.5b
   * q4_k: 23.5k against 19.5k tokens/s), else the host, whose vectorised loop beats
   * ggml's generic CPU ops. The graph path makes llama.cpp keep a larger pinned output
   * buffer (four vocabulary-sized arrays per output row, ~1.2 GB at 512 rows of Qwen),
   * grown once per context.
   */
  logSoftmax?: "auto" | "graph" | "host";
  onProgress?: (p: ScoreProgress) => void;
  signal?: AbortSignal;
}

function adapterArgs(adapters: AdapterUse[] | undefined): { adapter: NativeAdapter; scale: number }[] | undefined {
  return adapters?.map((u) => ({ adapter: u.adapter.native, scale: u.scale ?? 1 }));
}

/** A llama.cpp context over a model: KV cache, batch limits, threads. Jobs on it run one at a time. */
export class Context {
  #ctx: NativeContext | null;

  /** @internal use model.createContext() */
  constructor(ctx: NativeContext) {
    this.#ctx = ctx;
  }

  private get live(): NativeContext {
    if (!this.#ctx) throw new Error("context is disposed");
    return this.#ctx;
  }

  /** @internal the native handle, for other native-facing modules (e.g. the generator). */
  get native(): NativeContext {
    return this.live;
  }

  get info(): ContextInfo {
    return this.live.info;
  }

  get disposed(): boolean {
    return this.#ctx === null;
  }

  /**
   * Teacher-forced log-probs of each item's continuation given its prompt, plus the
   * log-probs of candidate tokens at the last prompt position. One forward pass per item;
   * items run in parallel sequences and share common prefixes through the KV cache.
   */
  score(items: ScoreItem[], opts: ScoreOptions = {}): Promise<ScoreOutput> {
    const ctx = this.live;
    const { onProgress, signal, adapters, ...rest } = opts;
    return withSignal(signal, (cancel) => ctx.score(items, { ...rest, adapters: adapterArgs(adapters) }, onProgress, cancel));
  }

  /**
   * Logits at every position of one sequence (tokens.length x vocabSize, row-major),
   * decoded plainly: no batching across items, no prefix reuse. The reference path.
   */
  evalLogits(tokens: ArrayLike<number>, opts: { adapters?: AdapterUse[]; signal?: AbortSignal } = {}): Promise<Float32Array> {
    const ctx = this.live;
    return withSignal(opts.signal, (cancel) => ctx.evalLogits(tokens, { adapters: adapterArgs(opts.adapters) }, cancel));
  }

  /**
   * Back to the state of a context just created: an empty, zeroed KV cache and no held
   * prefix (after any call still running on it). A kept context reset before each batch
   * computes what a new one would, without allocating its buffers again.
   */
  reset(): Promise<void> {
    return this.live.reset();
  }

  /** Frees the context once no job is using it. Idempotent. */
  dispose(): void {
    this.#ctx?.dispose();
    this.#ctx = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A loaded GGUF model: tokenizer, info, and (unless vocabOnly) a default context. */
export class Model {
  #model: NativeModel | null;
  #context: Context | null;
  readonly info: ModelInfo;
  readonly path: string;

  /** @internal use loadModel() */
  constructor(model: NativeModel, context: Context | null) {
    this.#model = model;
    this.#context = context;
    this.info = model.info;
    this.path = model.path;
  }

  private get live(): NativeModel {
    if (!this.#model) throw new Error("model is disposed");
    return this.#model;
  }

  /** @internal the native handle, for other native-facing modules. */
  get native(): NativeModel {
    return this.live;
  }

  get disposed(): boolean {
    return this.#model === null;
  }

  /** The context created at load (null for vocabOnly). */
  get context(): Context {
    this.live;
    if (!this.#context) throw new Error("the model was loaded vocabOnly: it has no context");
    return this.#context;
  }

  /** No BOS/EOS and no special-token parsing unless asked: "<|im_start|>" stays text. */
  tokenize(text: string, opts: TokenizeOptions = {}): number[] {
    return Array.from(this.live.tokenize(text, opts));
  }

  detokenize(ids: ArrayLike<number>, opts: DetokenizeOptions = {}): string {
    return this.live.detokenize(Array.isArray(ids) || ids instanceof Int32Array ? ids : Array.from(ids), opts);
  }

  /** The token's text (special tokens rendered). Byte tokens may be partial UTF-8: see tokenBytes. */
  tokenPiece(id: number): string {
    return this.live.tokenPiece(id);
  }

  /** The token's exact bytes. */
  tokenBytes(id: number): Uint8Array {
    return this.live.tokenBytes(id);
  }

  /** Scores on the default context; see Context.score. */
  score(items: ScoreItem[], opts: ScoreOptions = {}): Promise<ScoreOutput> {
    return this.context.score(items, opts);
  }

  /** Reference logits on the default context; see Context.evalLogits. */
  evalLogits(tokens: ArrayLike<number>, opts: { adapters?: AdapterUse[]; signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.context.evalLogits(tokens, opts);
  }

  /** Another context over the same weights. */
  async createContext(opts: ContextOptions = {}): Promise<Context> {
    return new Context(await native().createContext(this.live, opts));
  }

  loadAdapter(path: string): Promise<Adapter> {
    return loadAdapter(this, path);
  }

  /** Frees the default context and the model (once no context, adapter or job needs it). Idempotent. */
  dispose(): void {
    this.#context?.dispose();
    this.#context = null;
    this.#model?.dispose();
    this.#model = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<Model> {
  const { onProgress, signal, gpuLayers, vocabOnly, mmap, ...contextOpts } = opts;
  const n = native();
  const model = await withSignal(signal, (cancel) => n.loadModel(path, { gpuLayers, vocabOnly, mmap }, onProgress, cancel));
  if (vocabOnly) return new Model(model, null);
  try {
    signal?.throwIfAborted();
    return new Model(model, new Context(await n.createContext(model, contextOpts)));
  } catch (e) {
    model.dispose();
    throw e;
  }
}

// ---- adapters ----------------------------------------------------------------------

/** A llama.cpp GGUF LoRA adapter loaded for one model; applied per call via `adapters`. */
export class Adapter {
  #adapter: NativeAdapter | null;
  readonly path: string;
  /** adapter.lora.alpha (0 when absent: then the scale applies as is). */
  readonly alpha: number;

  /** @internal use loadAdapter() */
  constructor(adapter: NativeAdapter) {
    this.#adapter = adapter;
    this.path = adapter.path;
    this.alpha = adapter.alpha;
  }

  /** @internal */
  get native(): NativeAdapter {
    if (!this.#adapter) throw new Error("adapter is disposed");
    return this.#adapter;
  }

  get disposed(): boolean {
    return this.#adapter === null;
  }

  /** Frees the adapter once no context has it applied. Idempotent. */
  dispose(): void {
    this.#adapter?.dispose();
    this.#adapter = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Loads a llama.cpp GGUF LoRA adapter; its general.architecture must match the model's. */
export async function loadAdapter(model: Model, path: string): Promise<Adapter> {
  return new Adapter(await native().loadAdapter(model.native, path));
}

// ---- quantization ------------------------------------------------------------------

export type QuantType = "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_k" | "q4_k_s" | "q4_k_m" | "q5_k_m" | "q6_k";

/** llama_model_quantize. q4_k means Q4_K_M (llama.cpp's usual mix of Q4_K and Q6_K). */
export async function quantize(inPath: string, outPath: string, type: QuantType, opts: { threads?: number } = {}): Promise<void> {
  await native().quantize(inPath, outPath, type, opts);
}

// ---- file checks -------------------------------------------------------------------

/** What checkGguf found a file to be. */
export interface GgufVerdict {
  /** "vocabulary": no tensors, loads only with vocabOnly. */
  kind: "model" | "adapter" | "vocabulary";
  architecture: string;
  tensorCount: number;
}

/**
 * The checks every loader runs before llama.cpp or the training engine sees a file
 * (header, model settings against the architecture and tensor table, vocabulary, adapter
 * alpha and shapes; specs/inference.md "Bad files"), without loading it. Throws the Error
 * loadModel / loadAdapter / loadTrainModel would throw, naming the file and the key or
 * tensor. An adapter is checked alone: whether it fits a model is loadAdapter's check.
 */
export function checkGguf(path: string): GgufVerdict {
  return native().checkGguf(path);
}

// ---- training engine hook (owned by native/train.ts) ---------------------------------
// The training engine's functions (train*) live in the same binary; native/train.ts types
// and wraps them. This is its only access to the loaded addon.

/** @internal the loaded addon, for native/train.ts only. */
export function trainingAddon(): unknown {
  return native();
}

// ---- generation (native/generate.ts) ----------------------------------------------------
// Batched generation lives in native/generate.ts and is re-exported here; this is its only
// access to the loaded addon.

/** @internal the loaded addon, for native/generate.ts only. */
export function generationAddon(): unknown {
  return native();
}

export { generate, generateStream, textWithStop } from "./generate.ts";
export type { GenerateOptions, GenerateOutput, GenerateProgress, GenerateRequest, GenerateResult, GenerateStats, GenerateTimings, SamplingOptions, StopReason, StopToken } from "./generate.ts";
