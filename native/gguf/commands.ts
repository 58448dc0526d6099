// What `selftune model synth` and `selftune model info` do, as functions returning data; the
// CLI (core/cli.ts) imports this module dynamically and owns argument parsing and printing.

import { describeGguf, formatGgufDescription, type GgufDescription } from "./describe.ts";
import { synthesizeModel, type SynthOptions } from "./synth.ts";

export interface ModelSynthResult {
  path: string;
  description: GgufDescription;
  seconds: number;
}

/**
 * Synthesizes a model and describes the result. Quantized outputs (q8_0, q4_k) are a second
 * step through the native addon's quantize(), chained by the caller on `path`.
 */
export async function modelSynth(options: SynthOptions): Promise<ModelSynthResult> {
  const started = performance.now();
  const path = await synthesizeModel(options);
  return { path, description: describeGguf(path), seconds: (performance.now() - started) / 1000 };
}

/** The summary of a GGUF file, as text for a terminal or as a JSON string. */
export function modelInfo(path: string, format: "text" | "json" = "text"): string {
  const description = describeGguf(path);
  return format === "json" ? JSON.stringify(description, null, 2) : formatGgufDescription(description);
}
