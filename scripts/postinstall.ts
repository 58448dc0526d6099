// Runs on every `bun install`: fetches llama.cpp (scripts/fetch-llama.ts) and builds the
// native addon with cmake-js into native/build (kept between runs, so a rebuild only
// recompiles what changed).
//
//   SELFTUNE_SKIP_NATIVE=1   do nothing
//   SELFTUNE_CUDA=1          build the CUDA backend (arch: CUDAARCHS, default 90a); implies
//                            SELFTUNE_TRAIN_CUDA
//   SELFTUNE_TRAIN_CUDA=1    build the CUDA training backend (native/src/train/cuda) only:
//                            inference stays on the CPU build, so no ggml-cuda (minutes of
//                            compiling); needs nvcc and cuBLAS (arch: CUDAARCHS, default 90a)
//   SELFTUNE_BUILD_JOBS=n    parallel compile jobs (default: all CPUs)
//   LLAMA_CPP_DIR=<tree>     build against your own llama.cpp tree
//   SELFTUNE_PEER_TOOLS=1    also build llama-batched-bench (the peer of bench:infer)
//   SELFTUNE_NATIVE=1        build ggml and our kernels for this CPU (-march=native) instead of
//                            x86-64-v3, the one instruction set that gives every x86-64 machine
//                            the same bits (specs/inference.md)
//
// Also the body of `bun run build:native` / `build:native:cuda` (flags --force, --cuda,
// --train-cuda; --cuda implies --train-cuda).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { fetchLlama } from "./fetch-llama.ts";

const ROOT = resolve(import.meta.dir, "..");
const NATIVE = join(ROOT, "native");
const BUILD = join(NATIVE, "build");
const LOCK = join(BUILD, ".build.lock");
const STAMP = join(BUILD, ".selftune-config.json");
export const ADDON_PATH = join(BUILD, "Release", "selftune_native.node");

function log(msg: string) {
  console.log(`[selftune native] ${msg}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Several `bun install`/`bun add` runs can overlap in one checkout; two cmake runs in
// one build folder corrupt it, so the second waits for the first.
async function acquireLock(): Promise<() => void> {
  mkdirSync(BUILD, { recursive: true });
  for (let waited = 0; ; waited++) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: "wx" });
      return () => rmSync(LOCK, { force: true });
    } catch {
      const owner = Number(readFileSync(LOCK, "utf8"));
      if (!Number.isFinite(owner) || owner <= 0 || !pidAlive(owner)) {
        rmSync(LOCK, { force: true });
        continue;
      }
      if (waited === 0) log(`another build (pid ${owner}) is running in native/build; waiting`);
      await Bun.sleep(1000);
    }
  }
}

export interface NativeBuildOptions {
  cuda: boolean;
  /** The CUDA training backend (SELFTUNE_TRAIN_CUDA); always on with `cuda`. */
  trainCuda: boolean;
  cudaArch: string;
  jobs: number;
  llamaDir: string;
  /** Also build llama.cpp's llama-batched-bench (SELFTUNE_PEER_TOOLS=1), bench:infer's peer. */
  peerTools: boolean;
}

async function build(opts: NativeBuildOptions): Promise<void> {
  const require = createRequire(import.meta.url);
  const { BuildSystem } = require("cmake-js");
  const cMakeOptions: Record<string, string> = {
    SELFTUNE_CUDA: opts.cuda ? "ON" : "OFF",
    SELFTUNE_TRAIN_CUDA: opts.cuda || opts.trainCuda ? "ON" : "OFF",
    SELFTUNE_CUDA_ARCH: opts.cudaArch,
    LLAMA_CPP_DIR: opts.llamaDir,
    SELFTUNE_PEER_TOOLS: opts.peerTools ? "ON" : "OFF",
    // A cache option, not an env read in CMake, so that changing it reconfigures (the stamp below).
    SELFTUNE_NATIVE: process.env.SELFTUNE_NATIVE === "1" ? "ON" : "OFF",
  };
  const bs = new BuildSystem({
    directory: NATIVE,
    out: BUILD,
    parallel: opts.jobs,
    cMakeOptions,
    logLevel: process.env.SELFTUNE_BUILD_VERBOSE ? "verbose" : "info",
  });
  // cmake-js decides "Node-API project, use node-api-headers, download nothing" from a
  // package.json in the CMake directory; ours is at the repo root (with
  // "binary": {"napi_versions": [9]}), so state it directly.
  bs.options.isNodeApi = true;

  // Configure only when the options changed or nothing is configured yet: a
  // reconfigure is cheap, but a changed flag must not be missed.
  const want = JSON.stringify(cMakeOptions);
  const have = existsSync(STAMP) ? readFileSync(STAMP, "utf8") : "";
  if (want !== have || !existsSync(join(BUILD, "CMakeCache.txt"))) {
    await bs.configure();
    writeFileSync(STAMP, want);
  }
  await bs.build();
  if (opts.peerTools) {
    // The peer of bench:infer, from the same tree and ggml build (EXCLUDE_FROM_ALL: explicit target).
    const r = Bun.spawnSync(["cmake", "--build", BUILD, "--config", "Release", "--target", "llama-batched-bench", "--parallel", String(opts.jobs)], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("building llama-batched-bench failed");
  }
}

function verify(): string {
  // A child process, so a broken binary cannot take this script down with it.
  const code = `const m = require(${JSON.stringify(ADDON_PATH)}); console.log(JSON.stringify(m.buildInfo()));`;
  const p = Bun.spawnSync([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`the built addon does not load: ${p.stderr.toString().trim()}`);
  return p.stdout.toString().trim();
}

export async function buildNative(overrides: Partial<NativeBuildOptions> = {}): Promise<void> {
  const t0 = performance.now();
  const llamaDir = overrides.llamaDir ?? (await fetchLlama());
  const cuda = overrides.cuda ?? process.env.SELFTUNE_CUDA === "1";
  const opts: NativeBuildOptions = {
    cuda,
    trainCuda: cuda || (overrides.trainCuda ?? process.env.SELFTUNE_TRAIN_CUDA === "1"),
    cudaArch: overrides.cudaArch ?? (process.env.CUDAARCHS || "90a"),
    jobs: overrides.jobs ?? (Number(process.env.SELFTUNE_BUILD_JOBS) || availableParallelism()),
    llamaDir,
    peerTools: overrides.peerTools ?? process.env.SELFTUNE_PEER_TOOLS === "1",
  };
  const kind = opts.cuda ? `CUDA (arch ${opts.cudaArch})` : opts.trainCuda ? `CPU + CUDA training (arch ${opts.cudaArch})` : "CPU";
  log(`building ${kind} addon with ${opts.jobs} jobs`);
  const release = await acquireLock();
  try {
    await build(opts);
  } finally {
    release();
  }
  const info = verify();
  log(`ok in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${ADDON_PATH}`);
  log(info);
}

if (import.meta.main) {
  // --force (build:native): build even when SELFTUNE_SKIP_NATIVE=1 is set in the environment.
  if (process.env.SELFTUNE_SKIP_NATIVE === "1" && !process.argv.includes("--force")) {
    log("SELFTUNE_SKIP_NATIVE=1: skipping llama.cpp fetch and native build");
    process.exit(0);
  }
  const cuda = process.argv.includes("--cuda") ? true : undefined;
  const trainCuda = process.argv.includes("--train-cuda") ? true : undefined;
  try {
    await buildNative({ cuda, trainCuda });
  } catch (e) {
    console.error(`[selftune native] build failed: ${(e as Error).message}`);
    console.error("[selftune native] set SELFTUNE_SKIP_NATIVE=1 to install without the native addon");
    process.exit(1);
  }
}
