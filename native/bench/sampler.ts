// `bun run bench:sampler`: the generator's host sampler against llama.cpp's samplers on
// vocabulary-sized rows, side by side in one run (native/bench/sampler_bench.cpp says what
// it checks and times). Builds the benchmark in the addon's CMake tree (native/build,
// made by `bun install`) the first time. Exits non-zero if a top-p set differs from the
// reference's.
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

const build = join(import.meta.dir, "..", "build");
if (!existsSync(join(build, "CMakeCache.txt"))) {
  console.error(`no CMake tree at ${build}: run \`bun install\` (or \`bun run build:native\`) first`);
  process.exit(1);
}
const jobs = String(Math.max(1, cpus().length));
const made = Bun.spawnSync(["cmake", "--build", build, "--target", "selftune-bench-sampler", "--parallel", jobs], { stdout: "inherit", stderr: "inherit" });
if (made.exitCode !== 0) process.exit(made.exitCode ?? 1);
const run = Bun.spawnSync([join(build, "bin", "selftune-bench-sampler")], { stdout: "inherit", stderr: "inherit" });
process.exit(run.exitCode ?? 1);
