// TextGenerator bound to the addon's batched generator (native/generate.ts).
import { generate, type AdapterUse, type Context, type Model } from "../../native/index.ts";
import type { GenerateOptions, GenerationRequest, GenerationResult, TextGenerator } from "./generation.ts";

export interface NativeGeneratorOptions {
  /** Common prompt prefixes shorter than this are recomputed rather than shared (default 16). */
  minSharedPrefix?: number;
  /** LoRA adapters applied to every call of this generator (e.g. the SFT model = base + its adapter). */
  adapters?: AdapterUse[];
}

export function nativeGenerator(target: Model | Context, options: NativeGeneratorOptions = {}): TextGenerator {
  return {
    async generate(requests: GenerationRequest[], opts: GenerateOptions = {}): Promise<GenerationResult[]> {
      if (requests.length === 0) return [];
      const out = await generate(
        target,
        requests.map((r) => ({ prompt: r.prompt, sampling: { ...r.sampling } })),
        {
          signal: opts.signal,
          ...(options.minSharedPrefix !== undefined && { minSharedPrefix: options.minSharedPrefix }),
          ...(options.adapters?.length && { adapters: options.adapters }),
          onProgress: opts.onProgress ? (p) => opts.onProgress!(p.done, p.total) : undefined,
        },
      );
      return out.results.map((r) => ({ text: r.text, tokens: r.tokens, stop: r.stop, stopString: r.stopString, stopToken: r.stopToken }));
    },
  };
}
