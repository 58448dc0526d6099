// The one seam between the evaluator and a language model. The evaluator never
// touches llama.cpp: it asks a Generator to load a variant (a GGUF model plus
// LoRA adapters), generates greedily, and disposes it before loading the next. The
// native one loads through the run's model service, like every other stage.
//
// Which Generator is used is injectable:
//   - config `generator: native` (default) -> nativeGenerator() below, the binding
//     point to the N-API addon (native/index.ts);
//   - config `generator: ./path/to/module.ts` -> that module's `createGenerator(options)`
//     (how tests plug in a deterministic scripted generator through the real CLI);
//   - registerGenerator(name, factory) for in-process use.
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import type { Logger, Services } from "../../core/plugin.ts";
import { buildInfo, generate, textWithStop, type AdapterUse, type StopReason } from "../../native/index.ts";
import { ModelService, workContextOptions, type ModelLoadOptions } from "../shared/model-service.ts";

export const AdapterRef = z.strictObject({
  /** GGUF LoRA adapter in llama.cpp's format. */
  path: z.string().min(1),
  scale: z.number().default(1),
});
export type AdapterRef = z.output<typeof AdapterRef>;

export const Variant = z.strictObject({
  /** Names the variant in results and its responses file: `<name>.responses.jsonl`. */
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only"),
  /** Base model GGUF. */
  model: z.string().min(1),
  adapters: z.array(AdapterRef).default([]),
});
export type Variant = z.output<typeof Variant>;

/** Decoding is greedy by construction: there is no temperature to set. */
export interface DecodeOptions {
  maxTokens: number;
  /** Strings that end generation early (the cleaner cuts at them anyway). */
  stop: string[];
}

export interface Generation {
  /** The raw continuation, before cleaning. */
  text: string;
  /** Generated tokens. */
  tokens: number;
  /** eos: end-of-generation token; control: another control token; length: maxTokens reached; stop: a stop string. */
  stop: StopReason;
}

export interface LoadedVariant {
  /** One continuation per prompt, in prompt order. */
  generate(prompts: string[], opts: DecodeOptions): Promise<Generation[]>;
  dispose(): Promise<void>;
  /** Facts for provenance (backend, device, llama.cpp version...). */
  info?: Record<string, unknown>;
}

/** A variant as the evaluator resolved it: the run's own ones also say how their model loads. */
export interface LoadableVariant extends Variant {
  /** The loader's load options (the run's model); absent: the generator's own. */
  load?: ModelLoadOptions;
}

export interface Generator {
  load(variant: LoadableVariant): Promise<LoadedVariant>;
}

/** What a factory gets besides its options: the run, for generators that load models. */
export interface GeneratorEnv {
  /** The run's services: the native generator loads through their model service. Absent (a
   *  test, a script): it uses a service of its own, unloaded when each variant is disposed. */
  services?: Services;
  signal?: AbortSignal;
  log?: Logger;
}

export type GeneratorFactory = (options: Record<string, unknown>, env?: GeneratorEnv) => Generator | Promise<Generator>;

const registry = new Map<string, GeneratorFactory>();

/** Register a generator for `generator: <name>` in configs (in-process). */
export function registerGenerator(name: string, factory: GeneratorFactory): void {
  registry.set(name, factory);
}

export function unregisterGenerator(name: string): void {
  registry.delete(name);
}

/** `generatorOptions` of the native generator: how the model is loaded. */
export const NativeGeneratorOptions = z.strictObject({
  /** KV cells shared by the parallel sequences (default min(4096, the model's training context)). */
  contextSize: z.number().int().min(16).optional(),
  /** Prompts generated at once (default 8). */
  parallel: z.number().int().min(1).optional(),
  /** Tokens per decode step (default 2048). */
  batchSize: z.number().int().min(1).optional(),
  /** CPU threads (default: physical cores). */
  threads: z.number().int().min(1).optional(),
  /** Layers offloaded to the GPU (default all). */
  gpuLayers: z.number().int().min(-1).optional(),
  flashAttention: z.enum(["auto", "on", "off"]).optional(),
});
export type NativeGeneratorOptions = z.output<typeof NativeGeneratorOptions>;

/**
 * The binding point to the native addon (native/index.ts), through the model service
 * (plugins/shared/model-service.ts): load(variant) acquires the variant's model (loaded once
 * per run, with the contamination guard's defaults: no template, prompts tokenized with no
 * BOS/EOS and no special-token parsing; another model is unloaded first) and its adapters
 * (loaded once, kept with the model), which are applied per generate call — so base, SFT,
 * DPO and DPO-only on one file are one load. generate() runs batched greedy decoding
 * (temperature 0) with the stop strings on the model's work context (LoadedModel.inWorkContext:
 * kept across batches only where that cannot change a result) and returns the raw text with the matched stop string put
 * back (the cleaner cuts at it). `variant.load` (the run's own model: the loader's options)
 * overrides `generatorOptions`.
 */
export async function nativeGenerator(options: Record<string, unknown>, env: GeneratorEnv = {}): Promise<Generator> {
  const parsed = NativeGeneratorOptions.safeParse(options);
  if (!parsed.success) throw new Error(`generatorOptions for the native generator: ${z.prettifyError(parsed.error)}`);
  const { gpuLayers, ...contextOpts } = parsed.data;
  const loadOpts: ModelLoadOptions = { ...contextOpts, ...(gpuLayers !== undefined && { gpuLayers }) };
  const own = env.services ? null : new ModelService();
  const service = own ?? (await ModelService.of(env.services!));
  return {
    async load(variant: LoadableVariant): Promise<LoadedVariant> {
      const lm = await service.acquire(variant.model, { load: variant.load ?? loadOpts, signal: env.signal, log: env.log });
      const adapters: AdapterUse[] = [];
      try {
        for (const a of variant.adapters) adapters.push({ adapter: await service.adapter(lm.provenance.path, a.path), scale: a.scale });
      } catch (e) {
        await own?.unload();
        throw e;
      }
      const build = buildInfo();
      return {
        info: {
          backend: lm.provenance.backend,
          device: lm.provenance.device,
          devices: build.devices.map((d) => d.description || d.name),
          llamaVersion: build.llamaVersion,
          llamaCommit: build.llamaCommit,
          llamaSource: build.llamaSource,
          architecture: lm.model.info.architecture,
          fileType: lm.model.info.fileType,
          context: workContextOptions(variant.load ?? loadOpts),
        },
        async generate(prompts: string[], opts: DecodeOptions): Promise<Generation[]> {
          return lm.inWorkContext(async (wc) => {
            const out = await generate(wc, prompts.map((prompt) => ({ prompt })), { sampling: { temperature: 0, maxTokens: opts.maxTokens, stop: opts.stop }, adapters, signal: env.signal });
            return out.results.map((r) => ({ text: textWithStop(r), tokens: r.nTokens, stop: r.stop }));
          });
        },
        // The run's service keeps the model and its adapters for the next variant or stage.
        async dispose(): Promise<void> {
          await own?.unload();
        },
      };
    },
  };
}

registerGenerator("native", nativeGenerator);

/** Resolve the config's `generator` reference. Module paths are relative to `baseDir`. */
export async function resolveGenerator(ref: string, options: Record<string, unknown>, baseDir: string, env: GeneratorEnv = {}): Promise<Generator> {
  const registered = registry.get(ref);
  if (registered) return registered(options, env);
  if (ref.startsWith(".") || isAbsolute(ref)) {
    const mod = (await import(resolve(baseDir, ref))) as { createGenerator?: GeneratorFactory };
    if (typeof mod.createGenerator !== "function") throw new Error(`${ref}: a generator module must export createGenerator(options)`);
    return mod.createGenerator(options, env);
  }
  throw new Error(`unknown generator '${ref}' (registered: ${[...registry.keys()].join(", ")}; or a module path)`);
}
