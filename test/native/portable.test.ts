// The same bits on every x86-64 machine (specs/inference.md, "Across x86-64 CPUs"): the
// default build compiles ggml and our kernels for one instruction set, x86-64-v3, so a
// greedy continuation, a scored continuation's log-probs and a few LoRA training steps come
// out bit for bit the same on AVX2 and AVX-512 CPUs, Intel or AMD. The hashes below were
// recorded on one machine; a CI machine with another CPU recomputes them. They change only
// when the synthesized test model, llama.cpp or our kernels change (then re-record them,
// saying why in the commit).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { createHash } from "node:crypto";
import { buildInfo, generate, loadModel, type Model } from "../../native/index.ts";
import { loadTrainModel } from "../../native/train.ts";
import { CPU_ENGINE, LLAMA_ON_CPU, sftData, tiny as tinyTrain } from "../train/helpers.ts";
import { tiny } from "./helpers.ts";

setDefaultTimeout(120_000);

const x86 = process.arch === "x64";
const nativeBuild = process.env.SELFTUNE_NATIVE === "1";
const EXACT = { kvType: "f32", flashAttention: "off", kvUnified: false, threads: 1, contextSize: 512, parallel: 1 } as const;

function sha(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex").slice(0, 16);
}
const f32Hash = (a: ArrayLike<number>) => sha(new Uint8Array(Float32Array.from(a).buffer));

// Recorded on an Intel Xeon with AVX-512 (AVX512_FP16, AMX) running the x86-64-v3 build.
const GOLDEN = {
  greedy: "f5cb18423423bea3",
  logprobs: "1b5eba713c88fe22",
  lora: "821ce92d7272d752",
};

describe.skipIf(!x86)("one instruction set on every x86-64 machine", () => {
  test("ggml is built for x86-64-v3: AVX2, FMA and F16C, no AVX-512 or AMX", () => {
    if (nativeBuild) return; // SELFTUNE_NATIVE=1 builds for this CPU, by request
    const features = buildInfo().systemInfo;
    for (const f of ["AVX2 = 1", "FMA = 1", "F16C = 1"]) expect(features).toContain(f);
    expect(features).not.toMatch(/AVX512|AMX/);
  });

  // On the CPU in a CUDA build too (no layers, no op offload on the GPU): the GPU machine's
  // CPU is one more x86-64 CPU to check.
  describe.skipIf(nativeBuild)("pinned results", () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(await tiny({ arch: "llama" }), { ...EXACT, ...LLAMA_ON_CPU });
    });
    afterAll(() => model?.dispose());

    test("a greedy continuation", async () => {
      const out = await generate(model, [{ prompt: "Once upon a time", sampling: { maxTokens: 24 } }]);
      expect(sha(JSON.stringify(out.results[0]!.tokens))).toBe(GOLDEN.greedy);
    });

    test("a scored continuation's log-probs", async () => {
      const r = await model.score([{ prompt: "Instruction: Name a colour.\nResponse:", continuation: " Blue, like the sea.\nEND" }]);
      expect(f32Hash(r.items[0]!.logprobs)).toBe(GOLDEN.logprobs);
    });

    test("three LoRA steps of the CPU training engine", async () => {
      const path = await tinyTrain("qwen2");
      const tm = await loadTrainModel(path, CPU_ENGINE);
      const s = tm.createSession({ rank: 4, alpha: 8, dropout: 0.1, threads: 2, seed: 11 });
      try {
        await s.train(await sftData(path), { epochs: 1, microBatch: 2, gradAccum: 2, lr: 2e-3, warmupSteps: 1, seed: 5, dataSeed: 3 });
        expect(f32Hash(s.getParams())).toBe(GOLDEN.lora);
      } finally {
        s.dispose();
        tm.dispose();
      }
    });
  });
});
