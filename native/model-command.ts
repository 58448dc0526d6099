// `selftune model synth|info|quantize`: GGUF model tools behind the CLI.
// Synthesis writes f32/f16 in TypeScript; quantized types are made from that
// f16 file by llama.cpp's own quantizer through the addon.
import { rmSync } from "node:fs";
import { modelSynth } from "./gguf/commands.ts";
import { describeGguf, formatGgufDescription, type GgufDescription } from "./gguf/describe.ts";
import { checkGguf, nativeAvailable, type GgufVerdict } from "./index.ts";

export interface ModelCommandArgs {
  action: "synth" | "info" | "quantize";
  args?: (string | number)[];
  arch: "qwen2" | "llama";
  preset: "tiny" | "0.5b" | "1.5b" | "7b";
  vocab?: string;
  type: "f32" | "f16" | "q8_0" | "q4_k" | "q6_k";
  seed: number;
  out?: string;
  json?: boolean;
}

const QUANTIZED = new Set(["q8_0", "q4_k", "q6_k"]);

/** The loaders' verdict on a file: valid null when the addon is not built (nothing to ask). */
export type ModelFileVerdict = { valid: true; kind: GgufVerdict["kind"] } | { valid: false; problem: string } | { valid: null; problem: string };

export interface ModelFileReport {
  path: string;
  /** The header summary; null when the verdict already says the header is unreadable. */
  description: GgufDescription | null;
  check: ModelFileVerdict;
}

/**
 * What `model info` prints: the header summary and the verdict of the checks every loader
 * runs (the native checkGguf, the same code loadModel, loadAdapter and the training engine
 * call), so that info and the loaders never disagree on what is broken.
 */
export function modelFileReport(path: string): ModelFileReport {
  let check: ModelFileVerdict;
  if (!nativeAvailable()) {
    check = { valid: null, problem: "not checked: the native addon is not built (bun run build:native)" };
  } else {
    try {
      check = { valid: true, kind: checkGguf(path).kind };
    } catch (e) {
      check = { valid: false, problem: (e as Error).message };
    }
  }
  let description: GgufDescription | null = null;
  try {
    description = describeGguf(path);
  } catch (e) {
    // The TypeScript reader refusing a file the loaders accept would be a bug in one of them.
    if (check.valid !== false) throw e;
  }
  return { path, description, check };
}

function formatReport(r: ModelFileReport): string {
  const verdict =
    r.check.valid === true ? `ok (${r.check.kind === "vocabulary" ? "vocabulary only: loads with vocabOnly" : r.check.kind})` : r.check.valid === false ? `REJECTED: ${r.check.problem}` : r.check.problem;
  return `${r.description ? formatGgufDescription(r.description) : r.path}\n  check         ${verdict}`;
}

export async function modelCommand(a: ModelCommandArgs): Promise<number> {
  const positional = (a.args ?? []).map(String);
  if (a.action === "info") {
    const path = positional[0];
    if (!path) throw new Error("usage: selftune model info <model.gguf> [--json]");
    const report = modelFileReport(path);
    console.log(a.json ? JSON.stringify({ ...report.description, path, check: report.check }, null, 2) : formatReport(report));
    return report.check.valid === false ? 1 : 0;
  }
  if (a.action === "quantize") {
    const [input, output] = positional;
    if (!input || !output) throw new Error("usage: selftune model quantize <in.gguf> <out.gguf> --type q8_0|q4_k|q6_k|f16");
    const { quantize } = await import("./index.ts");
    const t0 = performance.now();
    await quantize(input, output, a.type);
    console.log(`${output}: ${a.type}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  }
  const out = a.out ?? `${a.arch}-${a.preset}-${a.type}.gguf`;
  const quantized = QUANTIZED.has(a.type);
  const base = quantized ? `${out}.f16-tmp.gguf` : out;
  const t0 = performance.now();
  const synth = await modelSynth({ arch: a.arch, preset: a.preset, type: quantized ? "f16" : (a.type as "f32" | "f16"), out: base, seed: a.seed, vocab: a.vocab });
  if (quantized) {
    const { quantize } = await import("./index.ts");
    try {
      await quantize(base, out, a.type as "q8_0" | "q4_k" | "q6_k");
    } finally {
      rmSync(base, { force: true });
    }
  }
  const description = quantized ? describeGguf(out) : synth.description;
  if (a.json) console.log(JSON.stringify({ ...description, path: out, seconds: (performance.now() - t0) / 1000 }, null, 2));
  else console.log(`${out} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n${formatGgufDescription(description)}`);
  return 0;
}
