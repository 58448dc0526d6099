// The model service: owns model lifetimes for a run (ARCHITECTURE "Boundaries").
//
// One instance per pipeline run lives in `ctx.services` (disposed at the end of the
// run). A model is loaded once and shared by every stage that asks for the same
// file; asking for another file unloads the current one first, so two models are
// never resident together, unless the caller passes `keepOthers: true` and the
// memory estimate allows it (otherwise that is an error, not a silent swap).
//
// Each load records its provenance: the file's sha256 (hashed once, cached by
// path + size + mtime: plugins/shared/file-hash.ts), the tokenizer hash
// (plugins/shared/tokenizer-hash.ts), the native build (buildInfo()), backend and
// device. Loading never applies a chat template and the tokenizer adds no BOS/EOS
// and parses no special tokens (the addon's defaults; the loader plugin asserts them).
//
// Adapters (adapter()): a LoRA adapter is loaded once per (model, file) and kept with its
// model until that model unloads. It is applied per call (the `adapters` of a generate or
// score call), so one resident base serves the bare model and every adapter of a run, and
// switching between them reloads nothing (the SFT model of the pairs stage, the evaluator's
// base / SFT / DPO / DPO-only variants).
//
// Training (trainModel()): a training stage's copy of the base (the engine's weights, then
// its LoRA, optimizer state and activations) is a model too. Everything resident is unloaded
// before it loads, it is the only model while the stage trains, and it goes when the stage
// releases it or the service loads anything else.
//
// Scoring (scorer()): teacher-forced log-probs come from llama.cpp's scorer or from the
// training engine's forward (plugins/shared/scorer.ts). The engine's copy of the base is a
// model too, so the service owns it as well: it is kept next to the llama.cpp model only
// when the memory estimate allows both, and it goes when that model goes.
import { totalmem } from "node:os";
import { realpathSync, statSync } from "node:fs";
import type { Logger, Services } from "../../core/plugin.ts";
import { buildInfo, loadAdapter, loadModel, type Adapter, type BuildInfo, type Context, type ContextOptions, type LoadModelOptions, type Model } from "../../native/index.ts";
import { loadTrainModel, trainBackends, type LoadTrainModelOptions, type TrainBackendKind, type TrainBackends, type TrainModel } from "../../native/train.ts";
import { sha256FileCached } from "./file-hash.ts";
import { chooseScorer, EngineScorer, type ScorerChoice, type ScorerProvenance } from "./scorer.ts";
import { tokenizerSha256 } from "./tokenizer-hash.ts";

/** Load options a config may set (model-level and the default context's). */
export interface ModelLoadOptions {
  gpuLayers?: number;
  threads?: number;
  contextSize?: number;
  parallel?: number;
  batchSize?: number;
  ubatchSize?: number;
  kvType?: string;
  flashAttention?: "auto" | "on" | "off";
  /** false: one KV cache per sequence (specs/inference.md's exact path); work contexts are then kept across batches. */
  kvUnified?: boolean;
  mmap?: boolean;
}

/** What a load was: the facts every generating stage puts into its provenance. */
export interface ModelProvenance {
  /** The real path of the file loaded. */
  path: string;
  sha256: string;
  sizeBytes: number;
  tokenizerSha256: string;
  architecture: string;
  parameters: number;
  fileType: string;
  vocabSize: number;
  chatTemplate: "present, disabled" | "absent";
  backend: string;
  device: string;
  nativeBuild: { llamaCpp: string; backend: string; gpu: string | null };
  /** The addon's full buildInfo() (commit, source, compiler, CUDA archs, CPU features), devices left out. */
  buildInfo: Omit<BuildInfo, "devices">;
  loadOptions: ModelLoadOptions;
  loadSeconds: number;
}

export interface LoadedModel {
  /** The model; its default context is small (probes, one-off scoring). */
  model: Model;
  provenance: ModelProvenance;
  /**
   * A fresh context with the configured options (contextSize, parallel, batch sizes, KV
   * type, threads); the caller disposes it. A fresh context starts from an empty KV cache,
   * so what runs on it never depends on what ran before it in the process.
   */
  workContext(): Promise<Context>;
  /**
   * Run one batch of work on the model's work context: one context, created once and kept
   * for every batch of every stage until the model unloads, so its buffers are allocated
   * once. A batch must compute what it would on a new context, whatever ran before it (a
   * resumed or `--only` run writes the same bytes as a full one). With split KV caches
   * (`kvUnified: false`) nothing a call leaves behind can change a result: every sequence's
   * cells start at 0, no prefix is shared, a call leaves every cache empty. With the unified
   * cache (the default) a call leaves its shared prefix held and its cell layout behind, which
   * would move the next batch's logits in the last bits (specs/inference.md), so the context
   * is reset() before each batch: the shared prefix is decoded once per batch.
   */
  inWorkContext<T>(fn: (ctx: Context) => Promise<T>): Promise<T>;
  /** Work contexts created for this model so far, and resets before a batch (unified caches). */
  readonly contexts: { created: number; resets: number };
  /** Dispose the kept work context (the service does, before it unloads the model). */
  disposeContexts(): void;
}

/** The default context a model is loaded with: enough for the loader's probes. */
export const PROBE_CONTEXT = { contextSize: 1024, parallel: 4 } as const;

/** The context options of a load's work contexts. */
export function workContextOptions(o: ModelLoadOptions): ContextOptions {
  const out: Record<string, unknown> = {};
  for (const k of ["threads", "contextSize", "parallel", "batchSize", "ubatchSize", "kvType", "flashAttention", "kvUnified"] as const) if (o[k] !== undefined) out[k] = o[k];
  return out as ContextOptions;
}

export class ModelServiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelServiceError";
  }
}

/** llama.cpp version line for provenance: tag (or version) and commit. */
export function llamaCppVersion(b: BuildInfo): string {
  return `${b.llamaTag || b.llamaVersion} (${b.llamaCommit}, ggml ${b.ggmlVersion}, ${b.llamaSource})`;
}

function gpuDevice(b: BuildInfo): { index: number; name: string; memoryTotal: number } | null {
  const gpus = b.devices.filter((d) => d.name !== "CPU" && !/^cpu/i.test(d.name));
  const d = gpus[0];
  return d ? { index: 0, name: d.description || d.name, memoryTotal: d.memoryTotal } : null;
}

/** Backend and device actually used by a load with these options. */
export function describeDevice(b: BuildInfo, model: Model, opts: ModelLoadOptions): { backend: string; device: string; gpu: string | null } {
  const gpu = gpuDevice(b);
  const threads = model.info.vocabOnly ? undefined : model.context.info.threads;
  const offloaded = b.backend !== "cpu" && b.gpuOffload && gpu !== null && (opts.gpuLayers ?? -1) !== 0;
  if (offloaded) return { backend: b.backend, device: `${b.backend}:${gpu.index} ${gpu.name}`, gpu: gpu.name };
  return { backend: "cpu", device: `cpu (${threads ?? "?"} threads)`, gpu: null };
}

export async function loadWithProvenance(path: string, opts: ModelLoadOptions = {}, signal?: AbortSignal, log?: Logger): Promise<LoadedModel> {
  const real = realpathSync(path);
  const t0 = performance.now();
  const [sha256, tokSha] = await Promise.all([sha256FileCached(real), tokenizerSha256(real)]);
  // The default context only serves probes (one unified cache: they must fit whatever the
  // work contexts' layout); work runs in work contexts (workContext(), inWorkContext()).
  const { kvUnified: _split, ...probeOpts } = workContextOptions(opts);
  const probe = { ...probeOpts, contextSize: Math.min(opts.contextSize ?? PROBE_CONTEXT.contextSize, PROBE_CONTEXT.contextSize), parallel: Math.min(opts.parallel ?? PROBE_CONTEXT.parallel, PROBE_CONTEXT.parallel) };
  const model = await loadModel(real, { ...(probe as LoadModelOptions), gpuLayers: opts.gpuLayers, mmap: opts.mmap, signal });
  try {
    const b = buildInfo();
    const dev = describeDevice(b, model, opts);
    const info = model.info;
    const provenance: ModelProvenance = {
      path: real,
      sha256,
      sizeBytes: statSync(real).size,
      tokenizerSha256: tokSha,
      architecture: info.architecture,
      parameters: info.parameterCount,
      fileType: info.fileType || "unknown",
      vocabSize: info.vocabSize,
      chatTemplate: info.chatTemplatePresent ? "present, disabled" : "absent",
      backend: dev.backend,
      device: dev.device,
      nativeBuild: { llamaCpp: llamaCppVersion(b), backend: b.backend, gpu: dev.gpu },
      buildInfo: (({ devices: _d, ...rest }) => rest)(b),
      loadOptions: { ...opts },
      loadSeconds: (performance.now() - t0) / 1000,
    };
    const work = workContextOptions(opts);
    const contexts = { created: 0, resets: 0 };
    const split = opts.kvUnified === false;
    const create = () => {
      contexts.created++;
      return model.createContext(work);
    };
    let kept: Context | null = null;
    return {
      model,
      provenance,
      workContext: create,
      contexts,
      async inWorkContext(fn) {
        if (!kept || kept.disposed) {
          kept = await create();
          log?.info(`model service: work context for ${real} created, kept across batches (${split ? "split KV caches" : "unified KV cache, reset before each batch"})`);
        } else if (!split) {
          await kept.reset();
          contexts.resets++;
        }
        return fn(kept);
      },
      disposeContexts() {
        kept?.dispose();
        kept = null;
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export interface AcquireOptions {
  load?: ModelLoadOptions;
  /** Keep the models already loaded (a stage that needs two at once). Refused when memory does not allow. */
  keepOthers?: boolean;
  signal?: AbortSignal;
  log?: Logger;
}

/** Bytes a resident model is assumed to need: its file plus a margin for contexts. */
function estimateBytes(sizeBytes: number): number {
  return Math.ceil(sizeBytes * 1.2) + 256 * 2 ** 20;
}

/** How the engine scorer loads and runs (model service's scorer()). */
export interface EngineScorerLoad {
  /** Default "auto": cuda when usable, else cpu (only an explicit `scorer: engine` runs it on the CPU). */
  backend?: TrainBackendKind;
  storage?: "dense" | "stored";
  microBatch?: number;
  threads?: number;
}

export interface ScorerRequest {
  /** Default "auto". */
  scorer?: ScorerChoice;
  engine?: EngineScorerLoad;
  log?: Logger;
  /** What this build and machine offer (tests pass their own; default trainBackends()). */
  backends?: TrainBackends;
}

/**
 * The scorer a stage uses: llama.cpp's (`engine` null: score on the stage's own work
 * context, as before) or the engine's (shared by every caller for this file, owned by the
 * service). `provenance` says which, and why.
 */
export interface ScorerSelection {
  kind: "llama" | "engine";
  engine: EngineScorer | null;
  provenance: ScorerProvenance;
}

/** Bytes the engine's copy of a base takes where it lives, plus a margin for activations. */
export function estimateEngineBytes(backend: "cpu" | "cuda", storage: "dense" | "stored", parameters: number, fileBytes: number): number {
  if (backend === "cpu") return parameters * 4 + 512 * 2 ** 20;
  return (storage === "stored" ? fileBytes : parameters * 2) + 2 * 2 ** 30;
}

export class ModelService {
  static readonly KEY = "selftune.model-service";
  private readonly loaded = new Map<string, LoadedModel>();
  /** Adapters by the real path of their model, then of their file; freed before their model. */
  private readonly adapters = new Map<string, Map<string, Adapter>>();
  /** Engine scorers by real path + backend + storage. */
  private readonly engines = new Map<string, { path: string; scorer: EngineScorer; provenance: ScorerProvenance; bytes: number }>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Loads performed (tests check that a model is loaded once per run). */
  loads = 0;
  /** Adapter files loaded (tests check that switching adapters reloads nothing). */
  adapterLoads = 0;
  /** The training stage's copy of a base (trainModel()), while one is held. */
  private training: { path: string; model: TrainModel } | null = null;

  /** The run's service (created on first use, disposed with the run's services). */
  static async of(services: Services): Promise<ModelService> {
    return services.getOrCreate(ModelService.KEY, () => new ModelService(), (s) => s.dispose());
  }

  /**
   * Unload every model the run's service holds (if it has one), e.g. before a stage
   * loads weights outside the service (a user plugin), so that two models are never
   * resident together.
   */
  static async releaseAll(services: Services): Promise<void> {
    await services.get<ModelService>(ModelService.KEY)?.unload();
  }

  /** Models currently resident, in load order. */
  resident(): LoadedModel[] {
    return [...this.loaded.values()];
  }

  /** The loaded model for `path`, if resident. */
  get(path: string): LoadedModel | undefined {
    try {
      return this.loaded.get(realpathSync(path));
    } catch {
      return undefined;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * The model at `path`, loaded once per run. If another model is resident it is
   * unloaded first, unless `keepOthers` (then memory must allow both). A model that
   * is already loaded is returned as is, whatever `load` options are passed now.
   */
  acquire(path: string, opts: AcquireOptions = {}): Promise<LoadedModel> {
    return this.serial(async () => {
      const real = realpathSync(path);
      this.unloadTraining(opts.log);
      const hit = this.loaded.get(real);
      if (hit && !hit.model.disposed) return hit;
      if (hit) this.unloadNow(real); // disposed behind the service's back: forget it and its adapters
      // The engine's copies of other files go whatever keepOthers says: they are reloaded on demand.
      for (const [k, e] of this.engines) if (e.path !== real) this.unloadEngine(k);
      const others = this.resident();
      if (others.length && !opts.keepOthers) {
        for (const o of others) {
          opts.log?.info(`model service: unloading ${o.provenance.path} before loading ${real}`);
          this.unloadNow(o.provenance.path);
        }
      } else if (others.length) {
        this.checkMemory(real, others, opts.load ?? {});
      }
      const lm = await loadWithProvenance(real, opts.load ?? {}, opts.signal, opts.log);
      this.loads++;
      this.loaded.set(real, lm);
      opts.log?.info(`model service: loaded ${real} (${lm.provenance.architecture}, ${lm.provenance.fileType}, ${lm.provenance.device}) in ${lm.provenance.loadSeconds.toFixed(1)} s`);
      return lm;
    });
  }

  private checkMemory(path: string, others: LoadedModel[], load: ModelLoadOptions): void {
    const b = buildInfo();
    const gpu = gpuDevice(b);
    const onGpu = b.backend !== "cpu" && b.gpuOffload && gpu !== null && (load.gpuLayers ?? -1) !== 0;
    const need = estimateBytes(statSync(path).size);
    const used = others.reduce((s, o) => s + estimateBytes(o.provenance.sizeBytes), 0);
    // A budget, not a measurement: the device's memory (or 80 % of RAM) minus what the
    // resident models are estimated to take.
    const available = (onGpu ? gpu.memoryTotal : totalmem() * 0.8) - used;
    if (need > available) {
      throw new ModelServiceError(
        `model service: cannot keep ${others.map((o) => o.provenance.path).join(", ")} resident while loading ${path}: ` +
          `needs ~${(need / 2 ** 30).toFixed(1)} GiB, ~${(Math.max(0, available) / 2 ** 30).toFixed(1)} GiB left ${onGpu ? `on ${gpu.name}` : "of the memory budget (80 % of RAM)"}`,
      );
    }
  }

  /**
   * The LoRA adapter at `adapterPath` for the resident model at `modelPath` (acquire() it
   * first), loaded on first use and kept until that model unloads: apply it per call
   * (`adapters: [{ adapter, scale }]`); the caller never disposes it.
   */
  adapter(modelPath: string, adapterPath: string): Promise<Adapter> {
    return this.serial(async () => {
      const real = realpathSync(modelPath);
      const lm = this.loaded.get(real);
      if (!lm || lm.model.disposed) throw new ModelServiceError(`model service: adapter ${adapterPath} asked for ${real}, which is not loaded (acquire it first)`);
      const file = realpathSync(adapterPath);
      let byFile = this.adapters.get(real);
      if (!byFile) this.adapters.set(real, (byFile = new Map()));
      const hit = byFile.get(file);
      if (hit) return hit;
      const adapter = await loadAdapter(lm.model, file);
      this.adapterLoads++;
      byFile.set(file, adapter);
      return adapter;
    });
  }

  private unloadNow(path: string): void {
    const lm = this.loaded.get(path);
    this.loaded.delete(path);
    lm?.disposeContexts();
    for (const a of this.adapters.get(path)?.values() ?? []) a.dispose();
    this.adapters.delete(path);
    lm?.model.dispose();
    for (const [k, e] of this.engines) if (e.path === path) this.unloadEngine(k);
  }

  private unloadEngine(key: string): void {
    const e = this.engines.get(key);
    this.engines.delete(key);
    if (!e) return;
    e.scorer.dispose();
    e.scorer.model.dispose();
  }

  /** Engine scorers resident (their provenance), in load order. */
  residentEngines(): ScorerProvenance[] {
    return [...this.engines.values()].map((e) => e.provenance);
  }

  /**
   * The scorer for the model at `path` (acquire() it first: its tokenizer serves text items
   * and its provenance the llama.cpp choice). "auto" takes the engine when its CUDA backend
   * is usable and the memory estimate allows its copy of the base next to the resident
   * llama.cpp model, else llama.cpp (the reason goes into provenance); "engine" takes it
   * or fails; "llama" never loads it.
   */
  scorer(path: string, req: ScorerRequest = {}): Promise<ScorerSelection> {
    return this.serial(async () => {
      const real = realpathSync(path);
      const requested = req.scorer ?? "auto";
      const lm = this.loaded.get(real);
      const llamaProvenance = (reason: string): ScorerSelection => ({
        kind: "llama",
        engine: null,
        provenance: { scorer: "llama.cpp", requested, reason, backend: lm?.provenance.backend ?? "unknown", device: lm?.provenance.device ?? "unknown" },
      });
      if (requested === "llama") return llamaProvenance(chooseScorer("llama", { cudaBuilt: false, cudaUsable: false }).reason);
      this.unloadTraining(req.log);
      const backends = req.backends ?? trainBackends();
      const wanted = req.engine?.backend ?? "auto";
      const backend: "cpu" | "cuda" = wanted === "auto" ? (backends.cudaUsable ? "cuda" : "cpu") : wanted;
      const storage = req.engine?.storage ?? "dense";
      const key = `${real}\0${backend}\0${storage}`;
      const hit = this.engines.get(key);
      if (hit) return { kind: "engine", engine: hit.scorer, provenance: { ...hit.provenance, requested } };
      const choice = chooseScorer(requested, backends, this.engineMemory(real, backend, storage, lm));
      if (choice.kind === "llama") {
        req.log?.info(`model service: scoring with llama.cpp: ${choice.reason}`);
        return llamaProvenance(choice.reason);
      }
      const t0 = performance.now();
      const tm = await loadTrainModel(real, { backend, storage });
      const scorer = new EngineScorer(tm, { tokenizer: lm?.model, microBatch: req.engine?.microBatch, threads: req.engine?.threads });
      const provenance: ScorerProvenance = { scorer: "engine", requested, reason: choice.reason, backend: tm.info.backend, device: tm.info.device, storage: tm.info.storage, weightType: tm.info.weightType };
      this.engines.set(key, { path: real, scorer, provenance, bytes: tm.info.baseBytes });
      req.log?.info(`model service: scoring with the training engine on ${tm.info.device} (${tm.info.storage}, ${(tm.info.baseBytes / 2 ** 30).toFixed(1)} GiB base) loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${choice.reason}`);
      return { kind: "engine", engine: scorer, provenance };
    });
  }

  /** Whether the engine's copy of `path` fits next to what is resident (an estimate, as checkMemory's). */
  private engineMemory(path: string, backend: "cpu" | "cuda", storage: "dense" | "stored", lm: LoadedModel | undefined): { ok: boolean; why?: string } {
    const fileBytes = statSync(path).size;
    // Without the llama.cpp model's count, a 16-bit file's size is about 2 bytes a parameter.
    const parameters = lm?.provenance.parameters ?? fileBytes / 2;
    const need = estimateEngineBytes(backend, storage, parameters, fileBytes);
    const others = [...this.loaded.values()].filter((o) => (o.provenance.backend === "cpu") === (backend === "cpu"));
    const engines = [...this.engines.values()].filter((e) => (e.provenance.backend === "cpu") === (backend === "cpu"));
    const used = others.reduce((s, o) => s + estimateBytes(o.provenance.sizeBytes), 0) + engines.reduce((s, e) => s + e.bytes, 0);
    let capacity: number;
    let where: string;
    if (backend === "cuda") {
      const gpu = gpuDevice(buildInfo());
      // llama.cpp built without CUDA lists no device: then only the engine is on the GPU.
      if (!gpu) return { ok: true };
      capacity = gpu.memoryTotal;
      where = `on ${gpu.name}`;
    } else {
      capacity = totalmem() * 0.8;
      where = "of the memory budget (80 % of RAM)";
    }
    if (need <= capacity - used) return { ok: true };
    return { ok: false, why: `the engine's copy of ${path} needs ~${(need / 2 ** 30).toFixed(1)} GiB and ~${(Math.max(0, capacity - used) / 2 ** 30).toFixed(1)} GiB are left ${where} next to the resident models` };
  }

  /**
   * The training engine's copy of the model at `path` for a training stage: every model,
   * engine copy and earlier training copy is unloaded first, so it is the only model
   * resident while the stage trains. `release()` when the stage is done (also on error or
   * interrupt); anything else the service loads releases it first.
   */
  trainModel(path: string, opts: LoadTrainModelOptions = {}, log?: Logger): Promise<{ model: TrainModel; release(): Promise<void> }> {
    return this.serial(async () => {
      const real = realpathSync(path);
      this.unloadTraining(log);
      for (const o of this.resident()) {
        log?.info(`model service: unloading ${o.provenance.path} before loading ${real} for training`);
        this.unloadNow(o.provenance.path);
      }
      for (const k of [...this.engines.keys()]) this.unloadEngine(k);
      const t0 = performance.now();
      const model = await loadTrainModel(real, opts);
      log?.info(`model service: loaded ${real} for training (${model.info.backend}, ${model.info.storage}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const held = { path: real, model };
      this.training = held;
      const release = () => this.serial(async () => (this.training === held ? this.unloadTraining() : undefined));
      return { model, release };
    });
  }

  /** The training copy held now (its path), if any. */
  trainingResident(): string | null {
    return this.training?.path ?? null;
  }

  private unloadTraining(log?: Logger): void {
    const t = this.training;
    this.training = null;
    if (!t) return;
    log?.info(`model service: releasing the training copy of ${t.path}`);
    t.model.dispose();
  }

  /** Unload one model (or all when no path is given), with the engine's copies of it. */
  unload(path?: string): Promise<void> {
    return this.serial(async () => {
      if (path === undefined) {
        for (const p of [...this.loaded.keys()]) this.unloadNow(p);
        for (const k of [...this.engines.keys()]) this.unloadEngine(k);
        this.unloadTraining();
      } else this.unloadNow(realpathSync(path));
    });
  }

  dispose(): Promise<void> {
    return this.unload();
  }
}
