// Builds and runs test/fixtures/llama-reference.cpp: llama.cpp's own C API, linked against
// the static libraries of the addon's build, with nothing of selftune in between.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { llamaCppDirs } from "../../native/gguf/vocab.ts";
import { ROOT, tempDir } from "../helpers.ts";

const BUILD = join(ROOT, "native", "build", "llama.cpp");
const LIBS = ["src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a"].map((l) => join(BUILD, l));

/** Why the harness cannot be built here, or null. */
export function referenceUnavailable(): string | null {
  const missing = LIBS.filter((l) => !existsSync(l));
  if (missing.length) return `llama.cpp's static libraries are not built (${missing[0]} missing): run \`bun run build:native\``;
  // A CUDA build's libggml needs the CUDA runtime at link time; the GPU machine checks against evalLogits only.
  if (existsSync(join(BUILD, "ggml/src/ggml-cuda/libggml-cuda.a"))) return "a CUDA build: the harness links the CPU libraries only";
  if (!llamaCppDirs().some((d) => existsSync(join(d, "include", "llama.h")))) return "no llama.cpp tree with include/llama.h";
  return null;
}

export interface LlamaReference {
  greedy(prompt: string, n: number): number[];
  logprobs(prompt: string, continuation: string): { prompt: number[]; continuation: number[]; logprobs: number[] };
}

/** Compiles the harness (~2 s) and returns its two modes for one model file. */
export function buildLlamaReference(model: string): LlamaReference {
  const why = referenceUnavailable();
  if (why) throw new Error(why);
  const tree = llamaCppDirs().find((d) => existsSync(join(d, "include", "llama.h")))!;
  const exe = join(tempDir("selftune-llama-reference-"), "llama-reference");
  const cc = Bun.spawnSync(["c++", "-std=c++17", "-O1", join(ROOT, "test/fixtures/llama-reference.cpp"), `-I${join(tree, "include")}`, `-I${join(tree, "ggml", "include")}`, ...LIBS, "-fopenmp", "-lpthread", "-ldl", "-o", exe], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`building llama-reference failed: ${cc.stderr.toString().slice(-2000)}`);
  const run = (args: string[]) => {
    const p = Bun.spawnSync([exe, model, ...args], { stdout: "pipe", stderr: "pipe" });
    if (p.exitCode !== 0) throw new Error(`llama-reference ${args[0]} failed: ${p.stderr.toString()}`);
    return JSON.parse(p.stdout.toString());
  };
  return {
    greedy: (prompt, n) => run(["greedy", String(n), prompt]).tokens,
    logprobs: (prompt, continuation) => run(["logprobs", prompt, continuation]),
  };
}
