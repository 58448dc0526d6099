// DPO on every backend: the same pairs, the same starting adapter and the same plan on the
// CPU reference and on the CUDA backend; per step the loss, reward margin and accuracy side
// by side. The objective is one piece of code above the backends, so what can differ is only
// the backends' forward/backward (bf16 on CUDA).
//
//   bun native/bench/dpo_parity.ts [--gguf tiny|0.5b|model.gguf] [--steps 8] [--beta 0.1]
//       [--loss sigmoid|ipo] [--backends cpu,cuda] [--tol 2e-2]
//
// Checks: at step 0 the reference is the starting policy, so the loss is log 2 and the margin
// 0 (exact on the CPU; within --tol on CUDA, whose reference and training batches may sum in
// another order); every step's loss within --tol relative of the CPU's. Exit 1 on a failure.
// Without a usable CUDA device it runs the CPU side only and says so.

import { parseArgs } from "node:util";
import { cachedModel, type SynthPreset } from "../gguf/index.ts";
import { loadModel } from "../index.ts";
import { loadTrainModel, lossMask, packPairs, trainBackends, type TrainData, type TrainExample, type TrainResult } from "../train.ts";
import { sftTexts } from "./train.ts";

const { values: args } = parseArgs({
  options: {
    gguf: { type: "string", default: "tiny" },
    steps: { type: "string", default: "8" },
    beta: { type: "string", default: "0.1" },
    loss: { type: "string", default: "sigmoid" },
    backends: { type: "string", default: "cpu,cuda" },
    tol: { type: "string", default: "2e-2" },
  },
});

const PRESETS = ["tiny", "0.5b", "1.5b", "7b"];
const path = PRESETS.includes(args.gguf!) ? await cachedModel(args.gguf as SynthPreset, { type: args.gguf === "tiny" ? "f32" : "f16" }) : args.gguf!;
const steps = Number(args.steps);
const tol = Number(args.tol);

// Chosen: a text's own response; rejected: the next text's response to the same instruction
// (fluent but off-topic), so a policy can learn to tell them apart.
async function pairs(n: number): Promise<TrainData> {
  const tok = await loadModel(path, { vocabOnly: true });
  try {
    const texts = sftTexts(n + 1);
    const example = (head: string, response: string): TrainExample => {
      const text = `${head} ${response}\nEND`;
      const m = lossMask(tok, text, { start: Buffer.byteLength(head), end: Buffer.byteLength(text) });
      return { tokens: m.tokens, loss: m.loss };
    };
    const split = (t: string) => {
      const at = t.indexOf("\nResponse:") + "\nResponse:".length;
      return { head: t.slice(0, at), response: t.slice(at + 1, t.lastIndexOf("\nEND")) };
    };
    return packPairs(Array.from({ length: n }, (_, k) => {
      const a = split(texts[k]!.text), b = split(texts[k + 1]!.text);
      return { chosen: example(a.head, a.response), rejected: example(a.head, b.response) };
    }));
  } finally {
    tok.dispose();
  }
}

async function run(backend: "cpu" | "cuda", data: TrainData, start: Float32Array | null): Promise<{ res: TrainResult; params: Float32Array }> {
  const model = await loadTrainModel(path, { backend });
  const s = model.createSession({ rank: 8, alpha: 16, dropout: 0, seed: 3 });
  try {
    // A non-zero adapter (B != 0) as the starting policy, the same bits on both backends.
    const p = start ?? s.getParams().map((v, i) => v + 0.02 * Math.sin(i * 12.9898));
    s.setParams(p);
    const reference = await s.referenceLogprobs(data, { useLora: true, microBatch: 4 });
    const res = await s.train(data, { objective: "dpo", beta: Number(args.beta), loss: args.loss as "sigmoid" | "ipo", reference, epochs: 100, maxSteps: steps, microBatch: 2, gradAccum: 2, lr: 1e-3, warmupSteps: 0, schedule: "constant", seed: 1, dataSeed: 2 });
    return { res, params: p };
  } finally {
    s.dispose();
    model.dispose();
  }
}

const data = await pairs(16);
const wanted = args.backends!.split(",") as ("cpu" | "cuda")[];
const usable = trainBackends();
const backends = wanted.filter((b) => b === "cpu" || usable.cudaUsable);
if (backends.length < wanted.length) console.log(`cuda unavailable (${usable.cudaReason}); cpu only`);
const results = new Map<string, TrainResult>();
let start: Float32Array | null = null;
for (const b of backends) {
  const { res, params } = await run(b, data, start);
  start = params;
  results.set(b, res);
}

const metric = (r: TrainResult, k: number, name: string) => r.history[k]!.metrics?.[name] ?? NaN;
let failed = false;
console.log(`DPO ${args.loss} beta ${args.beta} on ${path}: ${steps} steps of 4 pairs`);
console.log(`step  ${backends.map((b) => `${b} loss      ${b} margin  ${b} acc`.padEnd(36)).join("")}rel Δloss`);
for (let k = 0; k < steps; k++) {
  const cols = backends.map((b) => {
    const r = results.get(b)!;
    return `${r.history[k]!.loss.toFixed(6).padStart(9)}  ${metric(r, k, "rewards/margins").toFixed(4).padStart(9)}  ${metric(r, k, "rewards/accuracies").toFixed(2).padStart(5)}      `;
  });
  const cpu = results.get("cpu")!.history[k]!.loss;
  const other = backends.length > 1 ? results.get(backends[1]!)!.history[k]!.loss : cpu;
  const rel = Math.abs(other - cpu) / Math.abs(cpu);
  if (!(rel <= tol)) failed = true;
  console.log(`${String(k).padStart(4)}  ${cols.join("")}${rel.toExponential(2)}`);
}
for (const b of backends) {
  const l0 = results.get(b)!.history[0]!.loss;
  const exact = b === "cpu";
  const ok = exact ? l0 === Math.LN2 : Math.abs(l0 - Math.LN2) / Math.LN2 <= tol;
  if (!ok) failed = true;
  console.log(`${b}: step-0 loss ${l0} vs log 2 = ${Math.LN2}: ${ok ? "ok" : "FAIL"}${exact ? " (exact)" : ` (within ${tol})`}`);
}
console.log(failed ? "FAIL" : `PASS: every step's loss within ${tol} relative across backends`);
process.exit(failed ? 1 : 0);
