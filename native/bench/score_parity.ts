// The GPU machine's check of the engine scorer (specs/training.md §14): log-probs from the
// training engine's forward (plugins/shared/scorer.ts EngineScorer, CUDA backend by default)
// against llama.cpp's scorer on the same file and the same token ids, the llama.cpp model
// offloaded as a stage loads it (every layer, f16 KV cache).
//
//   bun native/bench/score_parity.ts [--backend cuda|cpu|auto] [--storage dense|stored]
//       [--models a.gguf,b.gguf] [--presets 0.5b,1.5b] [--types f16,q4_k] [--json FILE]
//
// Default models: ../shared/models/stories260K.gguf (real weights, when present), the tiny
// qwen2 and llama f32 models, and the synthesized 0.5b qwen2 preset as f16 and q4_k.
// Items: SFT-shaped texts split after `Response:` (every other one with two candidate
// tokens, as the critic asks) and random-token sequences (200-token prompt, 200-token
// continuation).
//
// Tolerance per target: |Δ log p| <= a + 2.5e-2 * max(1, |log p|), where a is the bound
// the CPU engine keeps to llama.cpp (§14: 0.1 for 16-bit and f32 files; 1.2 for quantized
// files, whose llama.cpp activations are rounded to q8 — twice §9's 0.6 logit bound) and
// 2.5e-2 relative is what train_cuda_parity holds the CUDA forward to against the CPU one
// (bf16 operands); and the log-probs' relative L2 error <= 2e-2 (quantized 5e-2).
// Exits 1 when a model fails. Not part of `bun run test` (needs the GPU to mean anything).

import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cachedModel, tinyModel, type SynthPreset } from "../gguf/index.ts";
import { loadModel, quantize, type ScoreItem, type ScoreOutput } from "../index.ts";
import { loadTrainModel, trainBackends, type TrainBackendKind } from "../train.ts";
import { EngineScorer } from "../../plugins/shared/scorer.ts";
import { REPO_ROOT, sftTexts } from "./train.ts";
import { mulberry32 } from "../gguf/random.ts";

const STORIES = join(REPO_ROOT, "..", "shared", "models", "stories260K.gguf");
const QUANTIZED = /q\d|iq\d/i;

async function presetFile(preset: SynthPreset, type: string): Promise<string> {
  if (type === "f32" || type === "f16" || type === "bf16") return cachedModel(preset, { arch: "qwen2", type });
  const f16 = await cachedModel(preset, { arch: "qwen2", type: "f16" });
  const out = f16.replace(/\.gguf$/, `.${type}.gguf`);
  if (!existsSync(out)) await quantize(f16, out, type as "q4_k");
  return out;
}

function items(vocab: number, cands: number[]): ScoreItem[] {
  const out: ScoreItem[] = [];
  sftTexts(16).forEach(({ text }, i) => {
    const k = text.indexOf("Response:") + "Response:".length;
    out.push({ prompt: text.slice(0, k), continuation: text.slice(k), ...(i % 2 === 0 ? { candidates: cands } : {}) });
  });
  const rand = mulberry32(7);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * vocab));
  for (let i = 0; i < 16; i++) out.push({ prompt: ids(200), continuation: ids(200) });
  return out;
}

interface Row {
  model: string;
  fileType: string;
  engine: string;
  targets: number;
  maxAbs: number;
  maxExcess: number;
  relL2: number;
  maxCandidate: number;
  meanAbs: number;
  abs: number;
  relL2Tol: number;
  passed: boolean;
}

function compare(name: string, fileType: string, engine: string, ref: ScoreOutput, got: ScoreOutput): Row {
  const quantized = QUANTIZED.test(fileType);
  const a = quantized ? 1.2 : 0.1;
  const relL2Tol = quantized ? 5e-2 : 2e-2;
  let maxAbs = 0, maxExcess = -Infinity, num = 0, den = 0, sumAbs = 0, n = 0, maxCandidate = 0;
  let ok = true;
  ref.items.forEach((x, i) => {
    const y = got.items[i]!;
    if (x.continuationTokens.join() !== y.continuationTokens.join() || x.logprobs.length !== y.logprobs.length) ok = false;
    const pairs: [number, number][] = x.logprobs.map((v, j) => [v, y.logprobs[j]!]);
    x.candidates?.forEach((v, j) => {
      pairs.push([v, y.candidates?.[j] ?? NaN]);
      maxCandidate = Math.max(maxCandidate, Math.abs(v - (y.candidates?.[j] ?? NaN)));
    });
    for (const [r, g] of pairs) {
      const d = Math.abs(r - g);
      if (!Number.isFinite(d)) ok = false;
      maxAbs = Math.max(maxAbs, d);
      maxExcess = Math.max(maxExcess, d - (a + 2.5e-2 * Math.max(1, Math.abs(r))));
      num += (r - g) ** 2;
      den += r * r;
      sumAbs += d;
      n++;
    }
  });
  const relL2 = Math.sqrt(num / den);
  return { model: name, fileType, engine, targets: n, maxAbs, maxExcess, relL2, maxCandidate, meanAbs: sumAbs / n, abs: a, relL2Tol, passed: ok && maxExcess <= 0 && relL2 <= relL2Tol };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      backend: { type: "string", default: "cuda" },
      storage: { type: "string", default: "dense" },
      models: { type: "string" },
      presets: { type: "string", default: "0.5b" },
      types: { type: "string", default: "f16,q4_k" },
      json: { type: "string" },
    },
  });
  const backend = args.backend as TrainBackendKind;
  const storage = args.storage as "dense" | "stored";
  console.log(`engine backends: ${JSON.stringify(trainBackends())}`);
  const files: string[] = [];
  if (args.models) files.push(...args.models.split(",").map((s) => s.trim()));
  else {
    if (existsSync(STORIES)) files.push(STORIES);
    else console.log(`${STORIES} absent: skipped`);
    files.push(await tinyModel({ arch: "qwen2", type: "f32" }), await tinyModel({ arch: "llama", type: "f32" }));
    for (const p of args.presets!.split(",")) for (const t of args.types!.split(",")) files.push(await presetFile(p.trim() as SynthPreset, t.trim()));
  }
  const rows: Row[] = [];
  for (const file of files) {
    const llama = await loadModel(file, { contextSize: 16384, parallel: 16 });
    const tm = await loadTrainModel(file, { backend, storage });
    const scorer = new EngineScorer(tm, { tokenizer: llama });
    try {
      const tok = (t: string) => llama.tokenize(t);
      const cands = [tok("\nAnswer: A").at(-1)!, tok("\nAnswer: B").at(-1)!];
      const its = items(llama.info.vocabSize, cands);
      const ctx = await llama.createContext({ contextSize: 16384, parallel: 16 });
      let ref: ScoreOutput;
      try {
        ref = await ctx.score(its);
      } finally {
        ctx.dispose();
      }
      const got = await scorer.score(its);
      const name = file.split("/").at(-1)!;
      const r = compare(name, llama.info.fileType, `${tm.info.backend} ${tm.info.storage} (${tm.info.device})`, ref, got);
      rows.push(r);
      console.log(
        `${r.passed ? "ok  " : "FAIL"} ${name} (${r.fileType}) engine ${r.engine}: ${r.targets} targets, max |Δ log p| ${r.maxAbs.toExponential(2)} ` +
          `(bound ${r.abs} + 2.5e-2 max(1,|log p|): worst excess ${r.maxExcess.toExponential(2)}), mean ${r.meanAbs.toExponential(2)}, rel L2 ${r.relL2.toExponential(2)} (<= ${r.relL2Tol}), candidates ${r.maxCandidate.toExponential(2)}; ` +
          `llama.cpp ${ref.stats.seconds.toFixed(2)} s, engine ${got.stats.seconds.toFixed(2)} s`,
      );
    } finally {
      scorer.dispose();
      tm.dispose();
      llama.dispose();
    }
  }
  if (args.json) await Bun.write(args.json, JSON.stringify({ backend, storage, rows }, null, 2) + "\n");
  const failed = rows.filter((r) => !r.passed);
  console.log(failed.length ? `${failed.length} of ${rows.length} failed` : `all ${rows.length} within tolerance`);
  if (failed.length) process.exit(1);
}

if (import.meta.main) await main();
