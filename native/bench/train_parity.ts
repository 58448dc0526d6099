// Loss-curve parity of our training engine against PyTorch + PEFT on the same inputs:
// the same GGUF base weights, the same initial LoRA parameters (ours, read with getParams),
// the same micro-batches in the same order (our engine's own plan) and the same learning
// rate per step. Ours trains first; then native/bench/peft_train.py curve replays it.
//
//   bun native/bench/train_parity.ts [--gguf model.gguf | tiny|0.5b|1.5b|7b] [--steps 50]
//       [--out DIR] [--backend cpu|cuda|auto] [--storage dense|stored] [--data sft|random]
//       [--seq 128] [--min-seq 64] [--micro-batch 4] [--grad-accum 2] [--bucket-window 8]
//       [--lr 2e-3] [--schedule cosine|linear|constant] [--warmup-steps 2] [--weight-decay 0.01]
//       [--max-grad-norm 1] [--rank 16] [--alpha 32] [--seed 0] [--data-seed 1] [--threads N]
//       [--dtype float32|float64|bfloat16] [--device cuda|cpu] [--tol R] [--python python3]
//
// --gguf takes a qwen2 file, or a preset name: the cached synthesized qwen2 model (tiny: f32,
// larger: f16). Default: tiny. Data: sft (default) = the SFT-shaped texts of bench:train, tokenized
// by the model's vocabulary, response-only loss: learnable, so the curve falls and a wrong
// gradient shows; random = random ids of --min-seq..--seq tokens, loss from a random split
// point on (the curve stays flat near log(vocab)). Files written to --out (default a fresh temp dir):
//   data.json, init.json + init.f32   what both sides train on (formats: peft_train.py's docstring)
//   ours_curve.json, ours_final.f32   our per-step loss / grad norm, our final LoRA parameters
//   peer_curve.json, peer_final.f32   the same from PyTorch
//
// Verdict: PASS when every step's loss agrees within --tol relative (default 2e-3 for a
// float32 or float64 peer, 5e-2 for bfloat16). Grad norms and the final parameters are
// reported beside it. Exit 1 on FAIL; exit 0 with ours only when python cannot import
// torch/transformers/peft (this development machine).
//
// The lr per step is the one our engine records (it follows specs/training.md §6; the
// formula's value is checked against it). Dropout is 0: PEFT's masks cannot be ours.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cachedModel, llamaCppDirs, type SynthPreset } from "../gguf/index.ts";
import { physicalCores } from "../index.ts";
import { LORA_TARGETS, packExamples, planTraining, type StepRecord, type TrainData, type TrainModelInfo, type TrainOptions } from "../train.ts";
import { PEFT_SCRIPT, REPO_ROOT, checkBackend, loadFor, peerAvailable, sftExamples, type BackendChoice, type StorageChoice } from "./train.ts";
import { mulberry32 } from "../gguf/random.ts";

interface Slot {
  layer: number;
  target: string;
  tensor: string;
  n_in: number;
  n_out: number;
  a_offset: number;
  b_offset: number;
}

interface CurveStep {
  step: number;
  loss: number;
  grad_norm: number;
  lr: number;
  targets: number;
  tokens: number;
}

const TENSOR: Record<string, string> = { q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output", gate: "ffn_gate", up: "ffn_up", down: "ffn_down" };

/** Our engine's flat LoRA layout (native/src/train/lora.cpp): per layer, per target in q,k,v,o,gate,up,down order, A (r x n_in) then B (n_out x r). */
function loraSlots(m: TrainModelInfo, targets: readonly string[], rank: number): { slots: Slot[]; total: number } {
  const D = m.embeddingSize, Q = m.headDim * m.headCount, KV = m.headDim * m.headCountKv, F = m.feedForwardSize;
  const dims: Record<string, [number, number]> = { q: [D, Q], k: [D, KV], v: [D, KV], o: [Q, D], gate: [D, F], up: [D, F], down: [F, D] };
  const slots: Slot[] = [];
  let off = 0;
  for (let l = 0; l < m.layerCount; l++) {
    for (const t of LORA_TARGETS) {
      if (!targets.includes(t)) continue;
      const [nIn, nOut] = dims[t]!;
      const a = off;
      off += rank * nIn;
      const b = off;
      off += nOut * rank;
      slots.push({ layer: l, target: t, tensor: `blk.${l}.${TENSOR[t]}.weight`, n_in: nIn, n_out: nOut, a_offset: a, b_offset: b });
    }
  }
  return { slots, total: off };
}

/** specs/training.md §6, in double; the engine computes in float, hence the check's tolerance. */
function scheduledLr(s: number, total: number, warmup: number, lr: number, kind: string, minRatio = 0): number {
  if (s < warmup) return (lr * (s + 1)) / warmup;
  const p = (s - warmup) / Math.max(1, total - warmup);
  const min = lr * minRatio;
  if (kind === "cosine") return min + ((lr - min) * (1 + Math.cos(Math.PI * p))) / 2;
  if (kind === "linear") return min + (lr - min) * (1 - p);
  return lr;
}

/** Random ids, lengths in [minSeq, seq], loss from a random split point on (never token 0). */
function randomData(n: number, minSeq: number, seq: number, vocab: number, seed: number): TrainData {
  const rand = mulberry32(seed);
  const examples = [];
  for (let i = 0; i < n; i++) {
    const len = minSeq + Math.floor(rand() * (seq - minSeq + 1));
    const split = Math.max(1, Math.floor(len * (0.25 + 0.5 * rand())));
    const tokens = Array.from({ length: len }, () => Math.floor(rand() * vocab));
    const loss = Array.from({ length: len }, (_, j) => (j >= split ? 1 : 0));
    examples.push({ tokens, loss });
  }
  return packExamples(examples);
}

function writeF32(path: string, a: Float32Array): void {
  writeFileSync(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const PRESETS = new Set(["tiny", "0.5b", "1.5b", "7b"]);

async function main(): Promise<number> {
  const { values: args } = parseArgs({
    options: {
      gguf: { type: "string", default: "tiny" },
      steps: { type: "string", default: "50" },
      out: { type: "string" },
      backend: { type: "string", default: "auto" },
      storage: { type: "string" },
      data: { type: "string", default: "sft" },
      seq: { type: "string", default: "128" },
      "min-seq": { type: "string" },
      "micro-batch": { type: "string", default: "4" },
      "grad-accum": { type: "string", default: "2" },
      "bucket-window": { type: "string", default: "8" },
      lr: { type: "string", default: "2e-3" },
      schedule: { type: "string", default: "cosine" },
      "warmup-steps": { type: "string", default: "2" },
      "weight-decay": { type: "string", default: "0.01" },
      "max-grad-norm": { type: "string", default: "1" },
      rank: { type: "string", default: "16" },
      alpha: { type: "string", default: "32" },
      seed: { type: "string", default: "0" },
      "data-seed": { type: "string", default: "1" },
      threads: { type: "string" },
      dtype: { type: "string", default: "float32" },
      device: { type: "string" },
      tol: { type: "string" },
      python: { type: "string", default: "python3" },
    },
  });
  const num = (k: keyof typeof args): number => {
    const v = Number(args[k]);
    if (!Number.isFinite(v)) throw new Error(`--${k}: not a number: ${args[k]}`);
    return v;
  };
  const steps = num("steps");
  const seq = num("seq");
  const minSeq = args["min-seq"] ? num("min-seq") : Math.max(2, seq >> 1);
  const microBatch = num("micro-batch");
  const gradAccum = num("grad-accum");
  const dtype = args.dtype!;
  if (!["float32", "float64", "bfloat16"].includes(dtype)) throw new Error(`--dtype float32|float64|bfloat16, got ${dtype}`);
  const tol = args.tol ? num("tol") : dtype === "bfloat16" ? 5e-2 : 2e-3;
  const backend = args.backend as BackendChoice;
  const storage = args.storage as StorageChoice | undefined;
  const out = resolve(args.out ?? mkdtempSync(join(tmpdir(), "train-parity-")));
  mkdirSync(out, { recursive: true });

  const gguf = PRESETS.has(args.gguf!) && !existsSync(args.gguf!) ? await cachedModel(args.gguf as SynthPreset, { arch: "qwen2", type: args.gguf === "tiny" ? "f32" : "f16" }) : resolve(args.gguf!);
  const model = await loadFor(gguf, { backend, storage });
  const rank = num("rank");
  const alpha = num("alpha");
  const session = model.createSession({ rank, alpha, dropout: 0, seed: num("seed"), threads: args.threads ? num("threads") : physicalCores() });
  try {
    checkBackend(session, backend, storage);
    const info = model.info;
    if (info.architecture !== "qwen2") console.error(`warning: ${info.architecture}: peft_train.py curve handles qwen2 only`);

    // ---- the dataset, in the engine's own order ----
    const n = steps * microBatch * gradAccum;
    if (args.data !== "sft" && args.data !== "random") throw new Error(`--data sft|random, got ${args.data}`);
    const data = args.data === "sft" ? packExamples(await sftExamples(gguf, n)) : randomData(n, minSeq, seq, info.vocabSize, num("data-seed"));
    const maxLength = Math.max(seq, ...Array.from({ length: n }, (_, i) => Number(data.offsets[i + 1]) - Number(data.offsets[i])));
    const planOpts = { epochs: 1, microBatch, gradAccum, bucketWindow: num("bucket-window"), maxLength, dataSeed: num("data-seed"), maxSteps: steps };
    const plan = planTraining(data, planOpts);
    if (plan.steps.length !== steps) throw new Error(`the plan has ${plan.steps.length} steps, asked for ${steps}`);
    const rows = (e: number) => {
      const a = Number(data.offsets[e]), b = Number(data.offsets[e + 1]);
      return { tokens: Array.from(data.tokens.subarray(a, b)), loss_mask: Array.from(data.loss.subarray(a, b)) };
    };
    const stepsJson = plan.steps.map((step) =>
      step.map((micro) => {
        const r = micro.map(rows);
        return { tokens: r.map((x) => x.tokens), loss_mask: r.map((x) => x.loss_mask) };
      }),
    );
    const targetsPerStep = stepsJson.map((step) => step.reduce((s, mb) => s + mb.loss_mask.reduce((t, m) => t + m.reduce<number>((u, v) => u + v, 0), 0), 0));

    const trainOpts: TrainOptions = {
      ...planOpts,
      seed: 1,
      lr: num("lr"),
      schedule: args.schedule as "cosine" | "linear" | "constant",
      warmupSteps: num("warmup-steps"),
      minLrRatio: 0,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: num("weight-decay"),
      maxGradNorm: num("max-grad-norm"),
    };
    const optimizer = { beta1: trainOpts.beta1, beta2: trainOpts.beta2, eps: trainOpts.eps, weight_decay: trainOpts.weightDecay, max_grad_norm: trainOpts.maxGradNorm };
    const formulaLr = Array.from({ length: steps }, (_, s) => scheduledLr(s, steps, Math.min(trainOpts.warmupSteps!, steps), trainOpts.lr!, trainOpts.schedule!));

    // ---- init ----
    const init = session.getParams();
    const { slots, total } = loraSlots(info, session.info.targets, session.info.rank);
    if (total !== init.length || total !== session.info.parameterCount) {
      throw new Error(`LoRA layout: computed ${total} parameters, the session has ${init.length} (${session.info.parameterCount})`);
    }
    writeF32(join(out, "init.f32"), init);
    const initJson = { format: "selftune.train-parity.init.v1", rank: session.info.rank, alpha: session.info.alpha, targets: session.info.targets, n_params: total, params_file: "init.f32", slots };
    writeFileSync(join(out, "init.json"), JSON.stringify(initJson, null, 1) + "\n");
    const dataJson = (lr: number[]) => ({ format: "selftune.train-parity.data.v1", pad_id: 0, optimizer, lr, steps: stepsJson });
    writeFileSync(join(out, "data.json"), JSON.stringify(dataJson(formulaLr)) + "\n");

    // ---- ours ----
    const shapeNote = args.data === "sft" ? "SFT texts" : `random sequences of ${minSeq}-${seq} tokens`;
    console.error(`ours: ${gguf} on ${session.info.backend} (${session.info.device}), ${steps} steps x ${microBatch}x${gradAccum} ${shapeNote}`);
    const t0 = performance.now();
    const res = await session.train(data, trainOpts);
    const oursSeconds = (performance.now() - t0) / 1000;
    const recs: StepRecord[] = res.records;
    if (recs.length !== steps) throw new Error(`ours ran ${recs.length} steps, expected ${steps}`);
    for (let k = 0; k < steps; k++) {
      if (recs[k]!.lossTokens !== targetsPerStep[k]) {
        throw new Error(`step ${k}: ours counted ${recs[k]!.lossTokens} loss tokens, data.json has ${targetsPerStep[k]}: the plan is not what training ran`);
      }
      const d = Math.abs(recs[k]!.lr - formulaLr[k]!);
      if (d > 1e-6 * formulaLr[k]! + 1e-12) console.error(`note: step ${k} lr ${recs[k]!.lr} (engine) vs ${formulaLr[k]} (specs formula); data.json uses the engine's`);
    }
    writeFileSync(join(out, "data.json"), JSON.stringify(dataJson(recs.map((r) => r.lr))) + "\n");
    const oursCurve: CurveStep[] = recs.map((r, k) => ({ step: k, loss: r.loss, grad_norm: r.gradNorm, lr: r.lr, targets: r.lossTokens, tokens: r.tokens }));
    const oursFinal = session.getParams();
    writeF32(join(out, "ours_final.f32"), oursFinal);
    writeFileSync(
      join(out, "ours_curve.json"),
      JSON.stringify({ format: "selftune.train-parity.curve.v1", gguf, backend: session.info.backend, device: session.info.device, seconds: oursSeconds, steps: oursCurve }, null, 1) + "\n",
    );
    console.error(`ours: ${oursSeconds.toFixed(1)} s; files in ${out}`);

    // ---- the peer ----
    const python = args.python!;
    const avail = peerAvailable(python);
    if (!avail.ok) {
      console.log(`peer unavailable (${python}: ${avail.why}); ours only:`);
      console.log("step  loss        grad norm   lr");
      for (const c of oursCurve) console.log(`${String(c.step).padStart(4)}  ${c.loss.toFixed(6).padStart(10)}  ${c.grad_norm.toFixed(6).padStart(10)}  ${c.lr.toExponential(3)}`);
      console.log(`inputs for the peer are in ${out}: ${python} ${PEFT_SCRIPT} curve --gguf ${gguf} --data ${join(out, "data.json")} --init ${join(out, "init.json")} --out ${join(out, "peer_curve.json")}`);
      return 0;
    }
    const env = { ...process.env };
    if (!env.LLAMA_CPP_DIR) {
      const dir = llamaCppDirs().find((d) => existsSync(join(d, "gguf-py", "gguf")));
      if (dir) env.LLAMA_CPP_DIR = dir;
    }
    const peerArgs = [PEFT_SCRIPT, "curve", "--gguf", gguf, "--data", join(out, "data.json"), "--init", join(out, "init.json"), "--out", join(out, "peer_curve.json"), "--dtype", dtype, "--params-out", join(out, "peer_final.f32")];
    if (args.device) peerArgs.push("--device", args.device);
    console.error(`peer: ${python} ${peerArgs.join(" ")}`);
    const p = Bun.spawnSync([python, ...peerArgs], { stdout: "inherit", stderr: "inherit", cwd: REPO_ROOT, env });
    if (p.exitCode !== 0) {
      console.log(`FAIL: peft_train.py curve exited ${p.exitCode}`);
      return 1;
    }
    const peer = JSON.parse(readFileSync(join(out, "peer_curve.json"), "utf8")) as { steps: CurveStep[]; device: string; dtype: string; seconds: number };
    if (peer.steps.length !== steps) throw new Error(`the peer ran ${peer.steps.length} steps, expected ${steps}`);

    // ---- compare ----
    console.log(`\nours ${session.info.backend} (${session.info.device}) vs PyTorch+PEFT ${peer.dtype} on ${peer.device}; ${gguf}`);
    console.log("step  ours loss   peer loss   |Δ|        rel       ours |g|    peer |g|    rel |g|");
    let maxAbs = 0, maxRel = 0, maxRelG = 0, worst = 0;
    for (let k = 0; k < steps; k++) {
      const o = oursCurve[k]!, q = peer.steps[k]!;
      if (q.targets !== o.targets) throw new Error(`step ${k}: the peer scored ${q.targets} targets, ours ${o.targets}`);
      const d = Math.abs(o.loss - q.loss);
      const rel = d / Math.max(Math.abs(q.loss), 1e-12);
      const relG = Math.abs(o.grad_norm - q.grad_norm) / Math.max(Math.abs(q.grad_norm), 1e-12);
      if (!(rel <= maxRel)) worst = k;
      maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
      maxRel = Math.max(maxRel, Number.isNaN(rel) ? Infinity : rel);
      maxRelG = Math.max(maxRelG, Number.isNaN(relG) ? Infinity : relG);
      console.log(
        `${String(k).padStart(4)}  ${o.loss.toFixed(6).padStart(10)}  ${q.loss.toFixed(6).padStart(10)}  ${d.toExponential(2).padStart(9)}  ${rel.toExponential(2).padStart(9)}  ` +
          `${o.grad_norm.toFixed(5).padStart(10)}  ${q.grad_norm.toFixed(5).padStart(10)}  ${relG.toExponential(2).padStart(9)}`,
      );
    }
    let paramLine = "";
    if (existsSync(join(out, "peer_final.f32"))) {
      const pf = readF32(join(out, "peer_final.f32"));
      // How much of the peer's update ours got wrong: ||ours - peer|| / ||peer - init||.
      let diff = 0, moved = 0, maxD = 0;
      for (let i = 0; i < pf.length; i++) {
        const dd = oursFinal[i]! - pf[i]!;
        const mm = pf[i]! - init[i]!;
        diff += dd * dd;
        moved += mm * mm;
        maxD = Math.max(maxD, Math.abs(dd));
      }
      paramLine = `final LoRA parameters: ||ours - peer|| / ||peer - init|| = ${(Math.sqrt(diff) / Math.max(Math.sqrt(moved), 1e-30)).toExponential(2)}, max |Δ| ${maxD.toExponential(2)}`;
      console.log(paramLine);
    }
    const pass = maxRel <= tol;
    console.log(
      `max |Δloss| ${maxAbs.toExponential(2)}, max relative ${maxRel.toExponential(2)} (step ${worst}), max relative grad-norm difference ${maxRelG.toExponential(2)}; ` +
        `ours ${oursSeconds.toFixed(1)} s, peer ${peer.seconds.toFixed(1)} s`,
    );
    console.log(`${pass ? "PASS" : "FAIL"}: every step's loss within ${tol} relative of PyTorch (${peer.dtype})`);
    writeFileSync(join(out, "summary.json"), JSON.stringify({ pass, tol, maxAbs, maxRel, maxRelGradNorm: maxRelG, worstStep: worst, params: paramLine, gguf, steps, dtype }, null, 1) + "\n");
    return pass ? 0 : 1;
  } finally {
    session.dispose();
    model.dispose();
  }
}

process.exitCode = await main();
