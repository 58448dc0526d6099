// `bun run bench:infer`: inference throughput of the addon, side by side in one run with
// llama.cpp's own llama-batched-bench built from the same tree, on a synthesized model.
//
//   bun run bench:infer [--preset 1.5b] [--arch qwen2] [--type q4_k] [--model x.gguf]
//                       [--widths 1,16,64,256] [--peer path/to/llama-batched-bench]
//                       [--header-jobs 512] [--parts generation,header,scoring] [--repeats 1]
//                       [--json out.json]
//
// 1. Plain generation at each width W: W requests, 128-token prompts, 128 greedy tokens
//    each (the peer: -npp 128 -ntg 128 -npl W). Generation tokens/s compared with the
//    peer's S_TG, end-to-end tokens/s with its S. With --repeats N the peer and our
//    default configuration run alternately N times per width and the medians are compared
//    (the peer alone varies by ~5% run to run on an H100).
// 2. The data-generation shape: N prompts sharing a 300-token few-shot header, a 20-token
//    tail each, 80 new tokens; with prefix reuse vs the same job without.
// 3. Scoring: teacher-forced log-probs of 100-token continuations after 300-token prompts
//    (no shared prefix), tokens/s vs the peer's prefill throughput (S_PP at -npp 400).
// Not a test: the numbers depend on the machine. Ratios are what to read.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cachedModel, type SynthPreset } from "../gguf/index.ts";
import { buildInfo, generate, loadModel, quantize, type Model, type QuantType } from "../index.ts";

const { values: args } = parseArgs({
  options: {
    preset: { type: "string", default: "1.5b" },
    arch: { type: "string", default: "qwen2" },
    type: { type: "string", default: "q4_k" },
    model: { type: "string" },
    widths: { type: "string", default: "1,16,64,256" },
    peer: { type: "string" },
    "header-jobs": { type: "string", default: "512" },
    parts: { type: "string", default: "generation,header,scoring" },
    repeats: { type: "string", default: "1" },
    "gpu-layers": { type: "string", default: "-1" },
    json: { type: "string" },
  },
});

const PP = 128;
const TG = 128;
// llama.cpp caps a context at 256 sequences and one is our shared-prefix cache: 255 work sequences at most.
const MAX_WIDTH = 255;
const parts = new Set(args.parts!.split(","));
const widths = args.widths!.split(",").map((w) => Math.min(Number(w), MAX_WIDTH));
if (args.widths!.split(",").some((w) => Number(w) > MAX_WIDTH)) console.log(`widths above ${MAX_WIDTH} run at ${MAX_WIDTH} (both sides): llama.cpp's 256-sequence limit less our prefix-cache sequence`);
const gpuLayers = Number(args["gpu-layers"]);

async function modelPath(): Promise<string> {
  if (args.model) return args.model;
  const f16 = await cachedModel(args.preset as SynthPreset, { arch: args.arch as "qwen2" | "llama", type: "f16" });
  if (args.type === "f16") return f16;
  const out = f16.replace(/\.gguf$/, `.${args.type}.gguf`);
  if (!existsSync(out)) await quantize(f16, out, args.type as QuantType);
  return out;
}

/** Random ordinary token ids (below the special/control range), seeded. */
function randomTokens(n: number, seed: number, vocabTop: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return 1000 + (s % (vocabTop - 2000));
  });
}

interface PeerRow { pp: number; tg: number; pl: number; speed_pp: number; speed_tg: number; speed: number; t: number }

function runPeer(peer: string, model: string, npp: number, ntg: number, npl: number[], ctx: number): PeerRow[] {
  const cmd = [peer, "-m", model, "-c", String(ctx), "-b", "2048", "-ub", "512", "-npp", String(npp), "-ntg", String(ntg), "-npl", npl.join(","), "-ngl", String(gpuLayers < 0 ? 999 : gpuLayers), "--output-format", "jsonl"];
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${peer} failed (${r.exitCode}): ${r.stderr.toString().slice(-2000)}`);
  return r.stdout.toString().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as PeerRow);
}

async function open(path: string, parallel: number, contextSize: number, kvUnified: boolean): Promise<Model> {
  return loadModel(path, { parallel, contextSize, gpuLayers, batchSize: 2048, ubatchSize: 512, kvUnified });
}

async function plainGeneration(path: string, width: number, kvUnified: boolean, greedy: "graph" | "host" = "graph") {
  const model = await open(path, width, width * (PP + TG) + 256, kvUnified);
  try {
    const top = model.info.vocabSize;
    await generate(model, [{ prompt: randomTokens(16, 999, top) }], { sampling: { maxTokens: 8 } }); // warm-up
    const requests = Array.from({ length: width }, (_, i) => ({ prompt: randomTokens(PP, i + 1, top) }));
    const out = await generate(model, requests, { sampling: { temperature: 0, maxTokens: TG }, reusePrefix: false, greedy });
    // The peer's T_TG starts once every prompt is in; ours: the last request's first token.
    const prefillDone = Math.max(...out.results.map((r) => r.timings.queuedMs + r.timings.promptMs)) / 1000;
    const tgSeconds = out.stats.seconds - prefillDone;
    const generated = out.stats.tokensGenerated;
    return { width, kvUnified, greedy, seconds: out.stats.seconds, generated, tgTokensPerSecond: (generated - width) / tgSeconds, tokensPerSecond: (width * PP + generated) / out.stats.seconds, eos: out.results.filter((r) => r.stop === "eos").length };
  } finally {
    model.dispose();
  }
}

async function headerJob(path: string, jobs: number, parallel: number, reuse: boolean) {
  const HEADER = 300, TAIL = 20, NEW = 80;
  const model = await open(path, parallel, reuse ? HEADER + parallel * (TAIL + NEW) + 512 : parallel * (HEADER + TAIL + NEW) + 512, reuse);
  try {
    const top = model.info.vocabSize;
    const header = randomTokens(HEADER, 7, top);
    await generate(model, [{ prompt: randomTokens(16, 999, top) }], { sampling: { maxTokens: 8 } });
    const requests = Array.from({ length: jobs }, (_, i) => ({ prompt: [...header, ...randomTokens(TAIL, 100 + i, top)] }));
    const out = await generate(model, requests, { sampling: { temperature: 0.7, topP: 0.9, maxTokens: NEW, seed: 1 }, reusePrefix: reuse });
    return { jobs, parallel, reuse, seconds: out.stats.seconds, generated: out.stats.tokensGenerated, tokensReused: out.stats.tokensReused, promptTokensDecoded: out.stats.promptTokensDecoded };
  } finally {
    model.dispose();
  }
}

async function scoring(path: string, items: number, parallel: number, logSoftmax: "auto" | "graph" | "host" = "auto") {
  const P = 300, C = 100;
  const model = await open(path, parallel, parallel * (P + C) + 512, false);
  try {
    const top = model.info.vocabSize;
    const batch = Array.from({ length: items }, (_, i) => ({ prompt: randomTokens(P, 5000 + i, top), continuation: randomTokens(C, 9000 + i, top) }));
    // Warm-up at full width: llama.cpp grows its host output buffer (pinned, up to a GB
    // with the vocabulary-sized rows) to the largest batch it has seen, once per context.
    await model.score(batch.slice(0, parallel), { logSoftmax });
    const out = await model.score(batch, { reusePrefix: false, logSoftmax });
    return { items, parallel, seconds: out.stats.seconds, tokens: out.stats.tokens, tokensPerSecond: out.stats.tokens / out.stats.seconds };
  } finally {
    model.dispose();
  }
}

const path = await modelPath();
const build = buildInfo();
const peer = args.peer ?? join(import.meta.dir, "..", "build", "bin", "llama-batched-bench");
console.log(`model ${path}\naddon ${build.backend}${build.cudaArch ? ` sm_${build.cudaArch}` : ""}, llama.cpp ${build.llamaCommit} (${build.llamaSource}); devices: ${JSON.stringify(build.devices ?? [])}`);
const hasPeer = existsSync(peer);
if (!hasPeer) console.log(`peer ${peer} not found: build it with SELFTUNE_PEER_TOOLS=1 bun run build:native (ratios omitted)`);

const report: Record<string, unknown> = { model: path, build, widths };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function benchGeneration() {
  const repeats = Math.max(1, Number(args.repeats));
  console.log(`\n1. plain generation: ${PP}-token prompts, ${TG} greedy tokens each`);
  console.log(`   TG tokens/s; ours: split or unified KV cache, greedy picked in the graph or on the host${repeats > 1 ? `; split graph and peer: median of ${repeats}, run alternately` : ""}`);
  console.log("   width |  split graph | split host |  unified graph | peer S_TG | ratio best | ours S t/s | peer S t/s");
  const col = (v: number, n: number) => v.toFixed(0).padStart(n);
  const rows = [];
  for (const w of widths) {
    const peerRuns: PeerRow[] = [], splitRuns = [];
    for (let k = 0; k < repeats; k++) {
      if (hasPeer) peerRuns.push(runPeer(peer, path, PP, TG, [w], w * (PP + TG) + 256)[0]!);
      splitRuns.push(await plainGeneration(path, w, false));
    }
    const split = splitRuns.find((r) => r.tgTokensPerSecond === median(splitRuns.map((x) => x.tgTokensPerSecond)))!;
    const p = peerRuns.find((r) => r.speed_tg === median(peerRuns.map((x) => x.speed_tg)));
    const splitHost = await plainGeneration(path, w, false, "host");
    const unified = await plainGeneration(path, w, true);
    const runs = [split, splitHost, unified];
    const best = Math.max(...runs.map((r) => r.tgTokensPerSecond));
    const bestS = Math.max(...runs.map((r) => r.tokensPerSecond));
    rows.push({ width: w, split, splitHost, unified, peer: p ?? null, repeats, peerRuns: peerRuns.map((r) => r.speed_tg), splitRuns: splitRuns.map((r) => r.tgTokensPerSecond), ratioTG: p ? best / p.speed_tg : null, ratioS: p ? bestS / p.speed : null });
    console.log(`   ${String(w).padStart(5)} | ${col(split.tgTokensPerSecond, 12)} | ${col(splitHost.tgTokensPerSecond, 10)} | ${col(unified.tgTokensPerSecond, 14)} | ${p ? col(p.speed_tg, 9) : "        -"} | ${p ? (best / p.speed_tg).toFixed(2).padStart(9) + "x" : "         -"} | ${col(bestS, 10)} | ${p ? col(p.speed, 10) : "-"}`);
  }
  report.generation = rows;
}

async function benchHeaderJob() {
  const jobs = Number(args["header-jobs"]);
  const par = Math.min(64, Math.max(...widths));
  console.log(`\n2. data-generation shape: ${jobs} prompts = shared 300-token header + 20-token tail, 80 new tokens, ${par} parallel`);
  const withReuse = await headerJob(path, jobs, par, true);
  const without = await headerJob(path, jobs, par, false);
  console.log(`   with prefix reuse    ${withReuse.seconds.toFixed(2)} s  (${withReuse.generated} tokens generated, ${withReuse.tokensReused} prompt tokens reused, ${withReuse.promptTokensDecoded} decoded)`);
  console.log(`   without              ${without.seconds.toFixed(2)} s  (${without.generated} tokens generated, ${without.promptTokensDecoded} prompt tokens decoded)`);
  console.log(`   speed-up             ${(without.seconds / withReuse.seconds).toFixed(2)}x   (target >= 1.5x)`);
  report.headerJob = { withReuse, without, speedup: without.seconds / withReuse.seconds };
}

async function benchScoring() {
  const peerPrefill = hasPeer ? runPeer(peer, path, 400, 1, [32], 32 * 401 + 256)[0] : undefined;
  console.log(`\n3. scoring: 300-token prompts + 100-token continuations, log-probs of every continuation token`);
  const sc = await scoring(path, 256, 32);
  const scHost = await scoring(path, 256, 32, "host");
  console.log(`   ours (default)       ${sc.tokensPerSecond.toFixed(0)} tokens/s (${sc.items} items in ${sc.seconds.toFixed(2)} s; logSoftmax "auto": the graph on a GPU, the host on the CPU)`);
  console.log(`   ours, host softmax   ${scHost.tokensPerSecond.toFixed(0)} tokens/s (logSoftmax "host": every logit row copied and reduced on the CPU)`);
  if (peerPrefill) console.log(`   peer prefill S_PP    ${peerPrefill.speed_pp.toFixed(0)} tokens/s (-npp 400 -npl 32)\n   ratio                ${(sc.tokensPerSecond / peerPrefill.speed_pp).toFixed(2)}x   (target >= 0.8x)`);
  report.scoring = { ours: sc, oursHostLogSoftmax: scHost, peerPrefill: peerPrefill ?? null, ratio: peerPrefill ? sc.tokensPerSecond / peerPrefill.speed_pp : null };
}

if (parts.has("generation")) await benchGeneration();
if (parts.has("header")) await benchHeaderJob();
if (parts.has("scoring")) await benchScoring();

if (args.json) await Bun.write(args.json, JSON.stringify(report, null, 2));
