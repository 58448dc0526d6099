// The one seam between the evaluator and a language model. The evaluator never
// touches llama.cpp: it asks a Generator to load a variant (a GGUF model plus
// LoRA adapters), generates greedily, and disposes it before loading the next.
//
// Which Generator is used is injectable:
//   - config `generator: native` (default) -> nativeGenerator() below, the binding
//     point to the N-API addon (native/index.ts);
//   - config `generator: ./path/to/module.ts` -> that module's `createGenerator(options)`
//     (how tests plug in a deterministic scripted generator through the real CLI);
//   - registerGenerator(name, factory) for in-process use.
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";

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
  /** eos: end-of-generation token; length: maxTokens reached; stop: a stop string. */
  stop: "eos" | "length" | "stop";
}

export interface LoadedVariant {
  /** One continuation per prompt, in prompt order. */
  generate(prompts: string[], opts: DecodeOptions): Promise<Generation[]>;
  dispose(): Promise<void>;
  /** Facts for provenance (backend, device, llama.cpp version...). */
  info?: Record<string, unknown>;
}

export interface Generator {
  load(variant: Variant): Promise<LoadedVariant>;
}

export type GeneratorFactory = (options: Record<string, unknown>) => Generator | Promise<Generator>;

const registry = new Map<string, GeneratorFactory>();

/** Register a generator for `generator: <name>` in configs (in-process). */
export function registerGenerator(name: string, factory: GeneratorFactory): void {
  registry.set(name, factory);
}

export function unregisterGenerator(name: string): void {
  registry.delete(name);
}

/**
 * The binding point to the native addon. TO WIRE: implement with native/index.ts —
 * load(variant): load the model file with the contamination guard (no template, no
 * BOS/EOS, no special-token parsing), apply each adapter at its scale, and return an
 * object whose generate() runs batched greedy decoding (temperature 0) up to
 * opts.maxTokens, reporting per prompt the text, the token count and why it stopped;
 * dispose() frees the model and context. The evaluator guarantees it never holds two
 * loaded variants at once.
 */
export async function nativeGenerator(_options: Record<string, unknown>): Promise<Generator> {
  throw new Error("the native generator is not wired to the addon yet (plugins/evaluator/generator.ts: nativeGenerator); use `generator: ./module.ts` for now");
}

registerGenerator("native", nativeGenerator);

/** Resolve the config's `generator` reference. Module paths are relative to `baseDir`. */
export async function resolveGenerator(ref: string, options: Record<string, unknown>, baseDir: string): Promise<Generator> {
  const registered = registry.get(ref);
  if (registered) return registered(options);
  if (ref.startsWith(".") || isAbsolute(ref)) {
    const mod = (await import(resolve(baseDir, ref))) as { createGenerator?: GeneratorFactory };
    if (typeof mod.createGenerator !== "function") throw new Error(`${ref}: a generator module must export createGenerator(options)`);
    return mod.createGenerator(options);
  }
  throw new Error(`unknown generator '${ref}' (registered: ${[...registry.keys()].join(", ")}; or a module path)`);
}
