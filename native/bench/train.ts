// `bun run bench:train`: training throughput of the training engine (native/train.ts) on
// synthesized models (real shapes, random weights, real vocabulary), and optionally of the
// PyTorch + PEFT peer on the same shapes (native/bench/peft_train.py).
//
//   bun run bench:train [--backend cpu|cuda|auto] [--storage dense|stored]
//       [--presets 0.5b,1.5b,7b] [--types f16,q4_k] [--shape-config 8x512] [--data random|sft]
//       [--steps N] [--warmup N] [--micro-batch N] [--threads N] [--peer] [--python python3]
//       [--checkpoint-activations] [--json FILE]
//   bun run bench:train --score [--backend ...] [--storage ...] [--presets 1.5b,7b] [--types f16]
//       [--shape-config 64x400] [--steps N] [--warmup N] [--micro-batch N] [--peer] [--json FILE]
//
// Workloads:
//   random  (default on a GPU) the peer's: batch x seq random tokens, loss on the second half of
//           every sequence, one optimizer step per batch (split into micro-batches only with
//           --micro-batch), LoRA r 16 / alpha 32 / dropout 0 on all seven projections.
//           --shape-config defaults to 8x512, and 4x512 for 7b.
//   sft     (default on the CPU) SFT-shaped texts of 30-90 tokens, micro-batch 4 x accumulation 2,
//           dropout 0.05: what the sft stage trains on.
//
// Reported: tokens/s (every unpadded token forward+backward, over the timed steps; --warmup
// steps run first and are not timed), loss tokens/s, seconds per step, peak device memory
// (the session's peakMemoryBytes where the backend reports it), and
// MFU = tokens/s * 4 * N / 989e12, N = the parameters of every matrix multiply a token goes
// through (all block linears + the output projection; not the input embedding lookup), the
// same N peft_train.py uses. --peer runs peft_train.py bench on each preset after all of our
// runs (never concurrently: both want the whole GPU) and prints the two side by side.
//
// --score: teacher-forced scoring throughput of the engine's forward through the scorer the
// pipeline uses (plugins/shared/scorer.ts EngineScorer, specs/training.md §14): batch x seq
// random tokens (default 64 x 400), every position after the first a target, no LoRA, one
// scorer call per step (--micro-batch sequences per forward; default the scorer's). tokens/s
// counts every token of every sequence, as peft_train.py score does; MFU uses 2 x N (forward
// only). --peer runs `peft_train.py score --shape <p> --batch B --seq S` after ours.
// Not a test: numbers depend on the machine.

import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cachedModel, type SynthPreset } from "../gguf/index.ts";
import { buildInfo, loadModel, physicalCores, quantize, type QuantType } from "../index.ts";
import { EngineScorer } from "../../plugins/shared/scorer.ts";
import { loadTrainModel, lossMask, packExamples, trainBackends, type TrainBackendKind, type TrainData, type TrainExample, type TrainModel, type TrainModelInfo, type TrainSession } from "../train.ts";
import { mulberry32 } from "../gguf/random.ts";

// ---- shared with train_parity.ts -------------------------------------------------------------

// SFT-shaped texts (SPEC §3 training format), varied lengths: 30-90 tokens.
const SUBJECTS = ["the moon", "a river", "bread", "prime numbers", "the ocean", "a violin", "glaciers", "honeybees", "volcanoes", "libraries"];
const VERBS = ["Describe", "Explain", "Write two sentences about", "List three facts about", "Summarize what you know about"];
export function sftTexts(n: number): { text: string; loss: { start: number; end: number } }[] {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = SUBJECTS[i % SUBJECTS.length]!;
    const instruction = `${VERBS[i % VERBS.length]} ${s}.`;
    const sentences = 1 + (i % 4);
    const response = Array.from({ length: sentences }, (_, k) => `Sentence ${k + 1} is about ${s} and how it changes over time.`).join(" ");
    const head = `Instruction: ${instruction}\nResponse:`;
    const text = `${head} ${response}\nEND`;
    out.push({ text, loss: { start: Buffer.byteLength(head), end: Buffer.byteLength(text) } });
  }
  return out;
}

/** Tokenized SFT texts with their response-only masks (the model file's own tokenizer). */
export async function sftExamples(modelPath: string, n: number): Promise<TrainExample[]> {
  const tok = await loadModel(modelPath, { vocabOnly: true });
  try {
    return sftTexts(n).map(({ text, loss }) => {
      const m = lossMask(tok, text, loss);
      return { tokens: m.tokens, loss: m.loss };
    });
  } finally {
    tok.dispose();
  }
}

/** `count` sequences of `seq` random ids in [0, vocab), loss on the second half (the peer's labels). */
export function randomExamples(count: number, seq: number, vocab: number, seed: number): TrainData {
  const rand = mulberry32(seed);
  const tokens = new Int32Array(count * seq);
  const loss = new Uint8Array(count * seq);
  const offsets = new Float64Array(count + 1);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < seq; j++) {
      tokens[i * seq + j] = Math.floor(rand() * vocab);
      loss[i * seq + j] = j >= seq >> 1 ? 1 : 0;
    }
    offsets[i + 1] = (i + 1) * seq;
  }
  return { tokens, loss, offsets };
}

/** Parameters of every matrix multiply a token goes through (see the header); peft_train.py counts the same. */
export function matmulParameters(m: TrainModelInfo): number {
  const q = m.headDim * m.headCount;
  const kv = m.headDim * m.headCountKv;
  const D = m.embeddingSize;
  return m.layerCount * (D * q + 2 * D * kv + q * D + 3 * D * m.feedForwardSize) + m.vocabSize * D;
}

export const PEAK_FLOPS = 989e12;

export type BackendChoice = TrainBackendKind;
export type StorageChoice = "dense" | "stored";
export interface LoadTrainOptions {
  backend?: BackendChoice;
  storage?: StorageChoice;
}

/** Loads for training on the chosen backend (unset options keep the engine's defaults). */
export function loadFor(path: string, opts: LoadTrainOptions): Promise<TrainModel> {
  const clean: LoadTrainOptions = {};
  if (opts.backend) clean.backend = opts.backend;
  if (opts.storage) clean.storage = opts.storage;
  return loadTrainModel(path, clean);
}

/** Throws when the engine ran on another backend or storage than asked, so a CPU run is never reported as a CUDA one. */
export function checkBackend(session: TrainSession, wanted: BackendChoice | undefined, storage: StorageChoice | undefined): void {
  const got = session.model.info.backend;
  if (wanted && wanted !== "auto" && got !== wanted) throw new Error(`asked for backend ${wanted}, the session runs on ${got} (${session.info.device})`);
  const s = session.model.info.storage;
  if (storage && s !== storage) throw new Error(`asked for storage ${storage}, the model reports ${s}`);
}

/** Peak device memory in bytes, read now (after the work); null on the CPU, which reports 0. */
export function peakMemoryBytes(session: TrainSession): number | null {
  const peak = session.memory().peakMemoryBytes;
  return peak > 0 ? peak : null;
}

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");
export const PEFT_SCRIPT = join(REPO_ROOT, "native", "bench", "peft_train.py");

/** Whether python can import torch + transformers + peft (the peer's requirements). */
export function peerAvailable(python: string): { ok: boolean; why: string } {
  const p = Bun.spawnSync([python, "-c", "import torch, transformers, peft; print(torch.__version__)"], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode === 0) return { ok: true, why: "" };
  const err = p.stderr.toString().trim().split("\n").at(-1) ?? "";
  return { ok: false, why: err || `${python} exited ${p.exitCode}` };
}

// ---- the benchmark ----------------------------------------------------------------------------

const TYPES = ["f32", "f16", "bf16", "q8_0", "q4_k", "q6_k"] as const;
type BaseType = (typeof TYPES)[number];
const SYNTH_TYPES = new Set<BaseType>(["f32", "f16", "bf16"]);

/** The cached synthesized file; quantized types are made from the f16 one by llama.cpp and cached beside it. */
async function modelFile(preset: SynthPreset, type: BaseType): Promise<string> {
  if (SYNTH_TYPES.has(type)) return cachedModel(preset, { arch: "qwen2", type: type as "f32" | "f16" | "bf16" });
  const f16 = await cachedModel(preset, { arch: "qwen2", type: "f16" });
  const out = f16.replace(/\.gguf$/, `.${type}.gguf`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  const t0 = performance.now();
  try {
    await quantize(f16, tmp, type as QuantType);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  console.error(`quantized ${preset} to ${type} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

interface Row {
  preset: string;
  type: string;
  arch: string;
  weights: string;
  backend: string;
  device: string;
  storage: string | null;
  parameters: number;
  matmulParameters: number;
  loraParameters: number;
  data: "random" | "sft";
  batch: number;
  seq: number | null;
  microBatch: number;
  gradAccum: number;
  warmupSteps: number;
  steps: number;
  tokens: number;
  lossTokens: number;
  seconds: number;
  tokensPerSecond: number;
  lossTokensPerSecond: number;
  secondsPerStep: number;
  loadSeconds: number;
  peakMemoryBytes: number | null;
  peakGiB: number | null;
  mfu: number;
  lastLoss: number;
}

interface PeerRow {
  shape: string;
  batch: number;
  seq: number;
  tokensPerSecond: number;
  peakGiB: number;
  mfu: number;
  matmulParameters: number;
  [k: string]: unknown;
}

interface Config {
  backend: BackendChoice;
  storage?: StorageChoice;
  data: "random" | "sft";
  batch: number;
  seq: number;
  microBatch: number;
  steps: number;
  warmup: number;
  threads: number;
  checkpointActivations: boolean;
}

async function bench(preset: SynthPreset, type: BaseType, c: Config): Promise<Row> {
  const path = await modelFile(preset, type);
  const t1 = performance.now();
  const model = await loadFor(path, { backend: c.backend, storage: c.storage });
  const loadSeconds = (performance.now() - t1) / 1000;
  const random = c.data === "random";
  const session = model.createSession({ rank: 16, alpha: 32, dropout: random ? 0 : 0.05, threads: c.threads, checkpointActivations: c.checkpointActivations });
  try {
    checkBackend(session, c.backend, c.storage);
    const microBatch = random ? c.microBatch : 4;
    const gradAccum = random ? c.batch / c.microBatch : 2;
    const perStep = microBatch * gradAccum;
    const total = c.warmup + c.steps;
    const data = random ? randomExamples(total * perStep, c.seq, model.info.vocabSize, 1) : packExamples(await sftExamples(path, Math.max(64, total * perStep)));
    const res = await session.train(data, {
      epochs: 1,
      microBatch,
      gradAccum,
      bucketWindow: random ? 1 : 8,
      maxLength: random ? c.seq : 1024,
      lr: 2e-4,
      warmupSteps: 0,
      seed: 1,
      dataSeed: 1,
      maxSteps: total,
    });
    const timed = res.records.slice(c.warmup);
    if (timed.length === 0) throw new Error(`${preset}: no timed steps (plan had ${res.records.length})`);
    const seconds = timed.reduce((s, r) => s + r.seconds, 0);
    const tokens = timed.reduce((s, r) => s + r.tokens, 0);
    const lossTokens = timed.reduce((s, r) => s + r.lossTokens, 0);
    const mm = matmulParameters(model.info);
    const peak = peakMemoryBytes(session);
    const storage = model.info.storage;
    return {
      preset,
      type,
      arch: model.info.architecture,
      weights: model.info.weightType,
      backend: session.info.backend,
      device: session.info.device,
      storage,
      parameters: model.info.parameterCount,
      matmulParameters: mm,
      loraParameters: session.info.parameterCount,
      data: c.data,
      batch: perStep,
      seq: random ? c.seq : null,
      microBatch,
      gradAccum,
      warmupSteps: c.warmup,
      steps: timed.length,
      tokens,
      lossTokens,
      seconds,
      tokensPerSecond: tokens / seconds,
      lossTokensPerSecond: lossTokens / seconds,
      secondsPerStep: seconds / timed.length,
      loadSeconds,
      peakMemoryBytes: peak,
      peakGiB: peak === null ? null : peak / 2 ** 30,
      mfu: ((tokens / seconds) * 4 * mm) / PEAK_FLOPS,
      lastLoss: timed.at(-1)!.loss,
    };
  } finally {
    session.dispose();
    model.dispose();
  }
}

function runPeer(python: string, preset: string, batch: number, seq: number, steps: number, warmup: number, mode: "bench" | "score" = "bench"): PeerRow | { error: string } {
  const dir = mkdtempSync(join(tmpdir(), "peft-bench-"));
  const out = join(dir, "peer.json");
  try {
    const args = [PEFT_SCRIPT, mode, "--shape", preset, "--batch", String(batch), "--seq", String(seq), "--steps", String(steps), "--warmup", String(warmup), "--json", out];
    console.error(`peer: ${python} ${args.join(" ")}`);
    const p = Bun.spawnSync([python, ...args], { stdout: "ignore", stderr: "inherit", cwd: REPO_ROOT });
    if (p.exitCode !== 0 || !existsSync(out)) return { error: `peft_train.py exited ${p.exitCode}` };
    return JSON.parse(readFileSync(out, "utf8")) as PeerRow;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- scoring (--score) ------------------------------------------------------------------------

interface ScoreRow {
  mode: "score";
  preset: string;
  type: string;
  arch: string;
  weights: string;
  backend: string;
  device: string;
  storage: string;
  parameters: number;
  matmulParameters: number;
  batch: number;
  seq: number;
  microBatch: number;
  warmupSteps: number;
  steps: number;
  tokens: number;
  scoredTokens: number;
  seconds: number;
  tokensPerSecond: number;
  loadSeconds: number;
  peakMemoryBytes: number | null;
  peakGiB: number | null;
  mfu: number;
  meanLogprob: number;
}

async function benchScore(preset: SynthPreset, type: BaseType, c: { backend: BackendChoice; storage?: StorageChoice; batch: number; seq: number; microBatch?: number; steps: number; warmup: number; threads: number }): Promise<ScoreRow> {
  const path = await modelFile(preset, type);
  const t1 = performance.now();
  const model = await loadFor(path, { backend: c.backend, storage: c.storage });
  const loadSeconds = (performance.now() - t1) / 1000;
  const scorer = new EngineScorer(model, { microBatch: c.microBatch, chunk: c.batch, threads: c.threads });
  try {
    if (c.backend !== "auto" && model.info.backend !== c.backend) throw new Error(`asked for backend ${c.backend}, the model is on ${model.info.backend}`);
    if (c.storage && model.info.storage !== c.storage) throw new Error(`asked for storage ${c.storage}, the model reports ${model.info.storage}`);
    // Every step's items are made before the clock starts; each step gets fresh tokens, as the peer's.
    const rand = mulberry32(1);
    const V = model.info.vocabSize;
    const steps = Array.from({ length: c.warmup + c.steps }, () =>
      Array.from({ length: c.batch }, () => {
        const ids = Array.from({ length: c.seq }, () => Math.floor(rand() * V));
        return { prompt: ids.slice(0, 1), continuation: ids.slice(1) };
      }),
    );
    let sum = 0, scored = 0, seconds = 0;
    for (const [k, items] of steps.entries()) {
      const t0 = performance.now();
      const out = await scorer.score(items);
      const dt = (performance.now() - t0) / 1000;
      if (k < c.warmup) continue;
      seconds += dt;
      for (const it of out.items) {
        sum += it.sum;
        scored += it.logprobs.length;
      }
    }
    const tokens = c.steps * c.batch * c.seq;
    const mm = matmulParameters(model.info);
    const peak = scorer.peakMemoryBytes() || null;
    return {
      mode: "score",
      preset,
      type,
      arch: model.info.architecture,
      weights: model.info.weightType,
      backend: model.info.backend,
      device: model.info.device,
      storage: model.info.storage,
      parameters: model.info.parameterCount,
      matmulParameters: mm,
      batch: c.batch,
      seq: c.seq,
      microBatch: c.microBatch ?? (model.info.backend === "cuda" ? 16 : 4),
      warmupSteps: c.warmup,
      steps: c.steps,
      tokens,
      scoredTokens: scored,
      seconds,
      tokensPerSecond: tokens / seconds,
      loadSeconds,
      peakMemoryBytes: peak,
      peakGiB: peak === null ? null : peak / 2 ** 30,
      mfu: ((tokens / seconds) * 2 * mm) / PEAK_FLOPS,
      meanLogprob: sum / scored,
    };
  } finally {
    scorer.dispose();
    model.dispose();
  }
}

async function scoreMain(o: { backend: BackendChoice; storage?: StorageChoice; onGpu: boolean; presets?: string; types: BaseType[]; shape?: string; steps?: string; warmup?: string; microBatch?: string; threads: number; peer: boolean; python: string; json?: string }): Promise<void> {
  const presets = (o.presets ?? (o.onGpu ? "1.5b,7b" : "tiny")).split(",").map((s) => s.trim() as SynthPreset);
  const shape = o.shape ? parseShape(o.shape) : { batch: 64, seq: 400 };
  const steps = o.steps ? Number(o.steps) : o.onGpu ? 5 : 1;
  const warmup = o.warmup ? Number(o.warmup) : 1;
  const microBatch = o.microBatch ? Number(o.microBatch) : undefined;
  const rows: (ScoreRow & { peer: PeerRow | { error: string } | null; ratioTokensPerSecond: number | null })[] = [];
  for (const preset of presets) {
    for (const type of o.types) {
      const r = await benchScore(preset, type, { backend: o.backend, storage: o.storage, ...shape, microBatch, steps, warmup, threads: o.threads });
      rows.push({ ...r, peer: null, ratioTokensPerSecond: null });
      console.log(
        `score ${r.preset.padEnd(5)} ${r.type.padEnd(5)} ${r.arch} ${r.weights} on ${r.backend} (${r.device}) ${r.storage}  ${(r.parameters / 1e6).toFixed(0)}M params  ` +
          `${r.steps} steps x ${r.batch}x${r.seq} (micro-batch ${r.microBatch}): ${fmt(r.tokensPerSecond, 1)} tokens/s, peak ${r.peakGiB === null ? "n/a" : `${r.peakGiB.toFixed(1)} GiB`}, ` +
          `MFU ${pct(r.mfu)}; load ${r.loadSeconds.toFixed(1)} s; mean log p ${r.meanLogprob.toFixed(4)}`,
      );
    }
  }
  if (o.peer) {
    const avail = peerAvailable(o.python);
    if (!avail.ok) console.log(`peer unavailable (${o.python}: ${avail.why}); ours only`);
    else {
      const peers = new Map<string, PeerRow | { error: string }>();
      // After all of ours, one at a time: both want the whole GPU.
      for (const preset of presets) peers.set(preset, runPeer(o.python, preset, shape.batch, shape.seq, steps, warmup, "score"));
      for (const r of rows) {
        const p = peers.get(r.preset) ?? null;
        r.peer = p;
        r.ratioTokensPerSecond = p && !("error" in p) ? r.tokensPerSecond / p.tokensPerSecond : null;
      }
    }
    console.log("\n| shape | base | ours tok/s | ours peak GiB | ours MFU | PyTorch tok/s | PyTorch peak GiB | PyTorch MFU | tok/s ratio |");
    console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of rows) {
      const p = r.peer && !("error" in r.peer) ? r.peer : null;
      console.log(
        `| ${r.preset} ${r.batch}x${r.seq} | ${r.weights} | ${fmt(r.tokensPerSecond)} | ${fmt(r.peakGiB, 1)} | ${pct(r.mfu)} | ${p ? fmt(p.tokensPerSecond) : r.peer ? "error" : "-"} | ` +
          `${p ? fmt(p.peakGiB, 1) : "-"} | ${p ? pct(p.mfu) : "-"} | ${r.ratioTokensPerSecond === null ? "-" : `${r.ratioTokensPerSecond.toFixed(2)}x`} |`,
      );
    }
    console.log("tokens/s: every token of every sequence; MFU = tokens/s * 2 * N / 989e12 (forward only); PyTorch runs bf16 whatever our base type.");
  }
  if (o.json) {
    await Bun.write(o.json, JSON.stringify({ options: { mode: "score", backend: o.backend, storage: o.storage ?? null, presets, types: o.types, ...shape, steps, warmup }, rows }, null, 2) + "\n");
    console.log(`wrote ${o.json}`);
  }
}

function parseShape(s: string): { batch: number; seq: number } {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--shape-config wants BATCHxSEQ (e.g. 8x512), got "${s}"`);
  return { batch: Number(m[1]), seq: Number(m[2]) };
}

const fmt = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? "-" : `${(x * 100).toFixed(1)}%`);

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      backend: { type: "string", default: "auto" },
      storage: { type: "string" },
      presets: { type: "string" },
      types: { type: "string", default: "f16" },
      "shape-config": { type: "string" },
      data: { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string" },
      "micro-batch": { type: "string" },
      threads: { type: "string" },
      peer: { type: "boolean", default: false },
      "checkpoint-activations": { type: "boolean", default: false },
      python: { type: "string", default: "python3" },
      json: { type: "string" },
      score: { type: "boolean", default: false },
    },
  });
  const backend = args.backend as BackendChoice;
  if (!["cpu", "cuda", "auto"].includes(backend)) throw new Error(`--backend cpu|cuda|auto, got ${backend}`);
  const storage = args.storage as StorageChoice | undefined;
  if (storage !== undefined && storage !== "dense" && storage !== "stored") throw new Error(`--storage dense|stored, got ${storage}`);
  const info = buildInfo();
  // "auto" runs where the engine will: its CUDA backend when usable.
  const onGpu = backend === "cuda" || (backend === "auto" && trainBackends().cudaUsable);
  const data = (args.data ?? (onGpu ? "random" : "sft")) as "random" | "sft";
  if (data !== "random" && data !== "sft") throw new Error(`--data random|sft, got ${data}`);
  const presets = (args.presets ?? (onGpu ? "0.5b,1.5b,7b" : "tiny,0.5b")).split(",").map((s) => s.trim() as SynthPreset);
  const types = args.types!.split(",").map((s) => s.trim() as BaseType);
  for (const t of types) if (!TYPES.includes(t)) throw new Error(`--types: ${t} is not one of ${TYPES.join(", ")}`);
  const threads = args.threads ? Number(args.threads) : physicalCores();
  const python = args.python!;
  if (args.score) {
    if (args.data) throw new Error("--score scores random tokens; drop --data");
    return scoreMain({ backend, storage, onGpu, presets: args.presets, types, shape: args["shape-config"], steps: args.steps, warmup: args.warmup, microBatch: args["micro-batch"], threads, peer: args.peer!, python, json: args.json });
  }
  if (args.peer && data !== "random") throw new Error("--peer compares the random workload (the peer's); drop --data sft");

  interface Done {
    preset: SynthPreset;
    batch: number;
    seq: number;
    steps: number;
    warmup: number;
  }
  const rows: Row[] = [];
  const shapes = new Map<SynthPreset, Done>();
  for (const preset of presets) {
    const shape = args["shape-config"] ? parseShape(args["shape-config"]) : { batch: preset === "7b" ? 4 : 8, seq: 512 };
    const microBatch = args["micro-batch"] ? Number(args["micro-batch"]) : shape.batch;
    if (!(microBatch >= 1 && shape.batch % microBatch === 0)) throw new Error(`--micro-batch ${microBatch} must divide the batch ${shape.batch}`);
    const steps = args.steps ? Number(args.steps) : onGpu ? 10 : preset === "tiny" ? 8 : 2;
    const warmup = args.warmup ? Number(args.warmup) : onGpu ? 2 : 0;
    shapes.set(preset, { preset, ...shape, steps, warmup });
    for (const type of types) {
      const r = await bench(preset, type, { backend, storage, data, batch: shape.batch, seq: shape.seq, microBatch, steps, warmup, threads, checkpointActivations: args["checkpoint-activations"]! });
      rows.push(r);
      console.log(
        `${r.preset.padEnd(5)} ${r.type.padEnd(5)} ${r.arch} ${r.weights} on ${r.backend} (${r.device})${r.storage ? ` ${r.storage}` : ""}  ` +
          `${(r.parameters / 1e6).toFixed(0)}M params, LoRA r16 ${(r.loraParameters / 1e6).toFixed(2)}M  ` +
          `${r.steps} steps x ${r.microBatch}x${r.gradAccum} seqs${r.seq ? ` of ${r.seq}` : ""}: ${fmt(r.tokensPerSecond, 1)} tokens/s ` +
          `(${fmt(r.lossTokensPerSecond, 1)} loss tokens/s), ${r.secondsPerStep.toFixed(3)} s/step, peak ${r.peakGiB === null ? "n/a" : `${r.peakGiB.toFixed(1)} GiB`}, ` +
          `MFU ${pct(r.mfu)}; load ${r.loadSeconds.toFixed(1)} s; last loss ${r.lastLoss.toFixed(4)}`,
      );
    }
  }

  const peers = new Map<string, PeerRow | { error: string }>();
  if (args.peer) {
    const avail = peerAvailable(python);
    if (!avail.ok) {
      console.log(`peer unavailable (${python}: ${avail.why}); ours only`);
    } else {
      for (const s of shapes.values()) {
        // The peer wants the GPU to itself: ours is disposed by now, and shapes run one by one.
        peers.set(s.preset, runPeer(python, s.preset, s.batch, s.seq, s.steps, s.warmup));
      }
    }
  }

  const combined = rows.map((r) => {
    const p = peers.get(r.preset);
    const peer = p && !("error" in p) ? p : null;
    return {
      ...r,
      peer: p ?? null,
      ratioTokensPerSecond: peer ? r.tokensPerSecond / peer.tokensPerSecond : null,
      ratioMemory: peer && r.peakGiB !== null ? r.peakGiB / peer.peakGiB : null,
    };
  });

  if (args.peer) {
    console.log("\n| shape | base | ours tok/s | ours peak GiB | ours MFU | PEFT tok/s | PEFT peak GiB | PEFT MFU | tok/s ratio | memory ratio |");
    console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const c of combined) {
      const p = c.peer && !("error" in c.peer) ? c.peer : null;
      const shape = `${c.preset} ${c.batch}x${c.seq ?? "?"}`;
      console.log(
        `| ${shape} | ${c.weights} | ${fmt(c.tokensPerSecond)} | ${fmt(c.peakGiB, 1)} | ${pct(c.mfu)} | ${p ? fmt(p.tokensPerSecond) : c.peer ? "error" : "-"} | ` +
          `${p ? fmt(p.peakGiB, 1) : "-"} | ${p ? pct(p.mfu) : "-"} | ${c.ratioTokensPerSecond === null ? "-" : `${c.ratioTokensPerSecond.toFixed(2)}x`} | ` +
          `${c.ratioMemory === null ? "-" : `${c.ratioMemory.toFixed(2)}x`} |`,
      );
    }
    console.log("MFU = tokens/s * 4 * N / 989e12, N = block linears + output projection (embedding lookup and attention scores not counted); PEFT runs bf16 whatever our base type.");
  }

  const machine = { cpu: cpus()[0]?.model ?? "?", logicalCpus: cpus().length, threads, build: { backend: info.backend, cudaArch: info.cudaArch, devices: info.devices } };
  console.log(`machine: ${machine.cpu}, ${machine.logicalCpus} logical CPUs, ${threads} threads; build ${info.backend}${info.devices.length ? ` (${info.devices.map((d) => d.description || d.name).join(", ")})` : ""}`);
  if (args.json) {
    await Bun.write(args.json, JSON.stringify({ machine, options: { backend, storage: storage ?? null, data, presets, types }, rows: combined }, null, 2) + "\n");
    console.log(`wrote ${args.json}`);
  }
}

if (import.meta.main) await main();
