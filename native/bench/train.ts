// `bun run bench:train`: CPU training throughput of the training engine (native/train.ts)
// on synthesized models: the tiny preset and the 0.5b preset (Qwen2.5-0.5B's shape, f16,
// random weights, real vocabulary). A few optimizer steps each on SFT-shaped texts.
//
//   bun run bench:train [--presets tiny,0.5b] [--steps N] [--threads N] [--json]
//
// Reports real tokens/s (every unpadded token forward+backward), loss tokens/s, seconds per
// optimizer step, and the machine. Not a test: numbers depend on the machine.

import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { cachedModel, type SynthPreset } from "../gguf/index.ts";
import { loadModel, physicalCores } from "../index.ts";
import { loadTrainModel, lossMask, packExamples, type TrainExample } from "../train.ts";

const { values: args } = parseArgs({
  options: {
    presets: { type: "string", default: "tiny,0.5b" },
    steps: { type: "string" },
    threads: { type: "string" },
    json: { type: "boolean", default: false },
  },
});

// SFT-shaped texts (SPEC §3 training format), varied lengths: 30-90 tokens.
const SUBJECTS = ["the moon", "a river", "bread", "prime numbers", "the ocean", "a violin", "glaciers", "honeybees", "volcanoes", "libraries"];
const VERBS = ["Describe", "Explain", "Write two sentences about", "List three facts about", "Summarize what you know about"];
function texts(n: number): { text: string; loss: { start: number; end: number } }[] {
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

interface Row {
  preset: string;
  arch: string;
  weights: string;
  parameters: number;
  loraParameters: number;
  steps: number;
  microBatch: number;
  gradAccum: number;
  tokens: number;
  lossTokens: number;
  seconds: number;
  tokensPerSecond: number;
  lossTokensPerSecond: number;
  secondsPerStep: number;
  loadSeconds: number;
}

async function bench(preset: SynthPreset, steps: number, threads: number): Promise<Row> {
  const type = preset === "tiny" ? "f32" : "f16";
  const t0 = performance.now();
  const path = await cachedModel(preset, { arch: "qwen2", type });
  const tok = await loadModel(path, { vocabOnly: true });
  const examples: TrainExample[] = texts(64).map(({ text, loss }) => {
    const m = lossMask(tok, text, loss);
    return { tokens: m.tokens, loss: m.loss };
  });
  tok.dispose();
  const data = packExamples(examples);
  const t1 = performance.now();
  const model = await loadTrainModel(path);
  const loadSeconds = (performance.now() - t1) / 1000;
  const session = model.createSession({ rank: 16, alpha: 32, dropout: 0.05, threads });
  const microBatch = 4, gradAccum = 2;
  const res = await session.train(data, { epochs: 1, microBatch, gradAccum, lr: 2e-4, stopAfterSteps: steps, seed: 1, dataSeed: 1 });
  const seconds = res.records.reduce((s, r) => s + r.seconds, 0);
  const tokens = res.records.reduce((s, r) => s + r.tokens, 0);
  const lossTokens = res.records.reduce((s, r) => s + r.lossTokens, 0);
  const row: Row = {
    preset,
    arch: model.info.architecture,
    weights: model.info.weightType,
    parameters: model.info.parameterCount,
    loraParameters: session.info.parameterCount,
    steps: res.records.length,
    microBatch,
    gradAccum,
    tokens,
    lossTokens,
    seconds,
    tokensPerSecond: tokens / seconds,
    lossTokensPerSecond: lossTokens / seconds,
    secondsPerStep: seconds / res.records.length,
    loadSeconds,
  };
  session.dispose();
  model.dispose();
  void t0;
  return row;
}

const threads = args.threads ? Number(args.threads) : physicalCores();
const rows: Row[] = [];
for (const p of args.presets!.split(",")) {
  const preset = p.trim() as SynthPreset;
  const steps = args.steps ? Number(args.steps) : preset === "tiny" ? 8 : 2;
  rows.push(await bench(preset, steps, threads));
  if (!args.json) {
    const r = rows.at(-1)!;
    console.log(
      `${r.preset.padEnd(5)} ${r.arch} ${r.weights}  ${(r.parameters / 1e6).toFixed(0)}M params, LoRA r16 ${(r.loraParameters / 1e6).toFixed(2)}M  ` +
        `${r.steps} steps x ${r.microBatch}x${r.gradAccum} seqs: ${r.tokensPerSecond.toFixed(1)} tokens/s ` +
        `(${r.lossTokensPerSecond.toFixed(1)} loss tokens/s), ${r.secondsPerStep.toFixed(2)} s/step; load ${r.loadSeconds.toFixed(1)} s`,
    );
  }
}
const machine = { cpu: cpus()[0]?.model ?? "?", logicalCpus: cpus().length, threads };
if (args.json) console.log(JSON.stringify({ machine, rows }, null, 2));
else console.log(`machine: ${machine.cpu}, ${machine.logicalCpus} logical CPUs, ${threads} threads`);
