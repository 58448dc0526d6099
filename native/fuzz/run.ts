// `bun run fuzz:gguf [-- seconds]`: coverage-guided fuzzing (libFuzzer + AddressSanitizer)
// of the GGUF readers every load runs first: ggml's gguf parser and our validators
// (native/fuzz/gguf_fuzz.cpp). Not part of CI: it needs clang (`apt-get install -y clang`)
// and runs for as long as it is given (default 60 s).
//
//   native/build-fuzz/gguf_fuzz        the target, rebuilt when a source is newer
//   native/build-fuzz/corpus/          the corpus: seeded from the mutation corpus
//                                      (native/fuzz/corpus.ts), grown by libFuzzer, kept
//   native/build-fuzz/findings/        crash-*, leak-*, timeout-* inputs, if any
//
// Replay one finding: native/build-fuzz/gguf_fuzz native/build-fuzz/findings/crash-<hash>

import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { mutants, writeBaseFiles } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..", "..");
const OUT = join(ROOT, "native", "build-fuzz");
const BIN = join(OUT, process.argv.includes("--load") ? "gguf_load_fuzz" : "gguf_fuzz");
const GGML = join(process.env.LLAMA_CPP_DIR ?? join(ROOT, "native", "deps", "llama.cpp"), "ggml");
const SRC = join(ROOT, "native", "src");
const seconds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 60);
// --load: the accepted models also go through llama.cpp's no_alloc load (gguf_fuzz.cpp).
const withLoad = process.argv.includes("--load");
const LLAMA_LIBS = join(ROOT, "native", "build", "llama.cpp");

const ours = ["gguf_check.cpp", "gguf_keys.cpp", "model_check.cpp", "vocab_check.cpp", "adapter_check.cpp"].map((f) => join(SRC, f));
const ggmlBase = ["ggml.c", "ggml.cpp", "ggml-alloc.c", "ggml-backend.cpp", "ggml-backend-meta.cpp", "ggml-opt.cpp", "ggml-threading.cpp", "ggml-quants.c", "gguf.cpp"].map((f) => join(GGML, "src", f));
const fuzzSources = [join(import.meta.dir, "gguf_fuzz.cpp"), join(import.meta.dir, "log_stub.cpp"), ...ours, ...ggmlBase];
// The --load variant: our code instrumented, llama.cpp and ggml from the addon's build.
const loadSources = [join(import.meta.dir, "gguf_fuzz.cpp"), join(SRC, "log.cpp"), ...ours];

function run(cmd: string[], cwd = OUT): void {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) throw new Error(`${cmd[0]} failed (exit ${r.exitCode})`);
}

function build(): void {
  if (!Bun.which("clang++") || !Bun.which("clang")) {
    throw new Error("fuzz:gguf needs clang with libFuzzer: apt-get install -y clang (Debian: the libclang-rt-14-dev package comes with it)");
  }
  const sources = withLoad ? loadSources : fuzzSources;
  const newest = Math.max(...sources.map((s) => statSync(s).mtimeMs), ...readdirSync(SRC).filter((f) => f.endsWith(".h")).map((f) => statSync(join(SRC, f)).mtimeMs));
  if (existsSync(BIN) && statSync(BIN).mtimeMs > newest) return;
  console.log(`building ${BIN} (clang, -fsanitize=fuzzer,address) ...`);
  const llamaInclude = join(GGML, "..", "include");
  const flags = ["-g", "-O1", "-fsanitize=fuzzer-no-link,address", "-fno-omit-frame-pointer", `-I${join(GGML, "include")}`, `-I${join(GGML, "src")}`, `-I${llamaInclude}`, `-I${SRC}`, `-I${OUT}`, "-D_GNU_SOURCE", ...(withLoad ? ["-DSELFTUNE_FUZZ_LOAD"] : [])];
  // ggml's build generates this header; the target needs only something to name.
  writeFileSync(join(OUT, "ggml-version.h"), '#pragma once\n#define GGML_VERSION "fuzz"\n#define GGML_COMMIT "fuzz"\n');
  const objects: string[] = [];
  for (const s of sources) {
    const o = join(OUT, `${withLoad ? "load-" : ""}${s.split("/").pop()}.o`);
    const c = s.endsWith(".c");
    run([c ? "clang" : "clang++", ...(c ? ["-std=c11"] : ["-std=c++17"]), ...flags, "-c", s, "-o", o]);
    objects.push(o);
  }
  const libs = withLoad
    ? [join(LLAMA_LIBS, "src", "libllama.a"), join(LLAMA_LIBS, "ggml", "src", "libggml.a"), join(LLAMA_LIBS, "ggml", "src", "libggml-cpu.a"), join(LLAMA_LIBS, "ggml", "src", "libggml-base.a"), "-lgomp"]
    : [];
  if (withLoad && !existsSync(libs[0]!)) throw new Error(`--load links the addon's llama.cpp build: ${libs[0]} missing (bun run build:native)`);
  run(["clang++", "-fsanitize=fuzzer,address", ...objects, ...libs, "-lpthread", "-lm", "-o", BIN]);
}

async function seedCorpus(dir: string): Promise<void> {
  if (existsSync(dir) && readdirSync(dir).length > 0) return;
  mkdirSync(dir, { recursive: true });
  const bases = await writeBaseFiles(join(OUT, "bases"));
  const all = mutants(bases, 1);
  // Every rewritten setting and a sample of the byte-level mutants; libFuzzer grows from there.
  let n = 0;
  for (const [i, m] of all.entries()) {
    if (!m.id.includes("-set-") && i % 8 !== 0) continue;
    await m.write(join(dir, `seed-${String(n++).padStart(5, "0")}.gguf`));
  }
  for (const p of [...Object.values(bases.model), ...Object.values(bases.adapter), bases.vocab]) await Bun.write(join(dir, `base-${p.split("/").pop()}`), Bun.file(p));
  console.log(`seeded ${dir} with ${n} mutants and the base files`);
}

mkdirSync(OUT, { recursive: true });
build();
const corpus = join(OUT, withLoad ? "corpus-load" : "corpus");
const findings = join(OUT, "findings");
mkdirSync(findings, { recursive: true });
await seedCorpus(corpus);
console.log(`fuzzing for ${seconds} s: ${BIN} ${corpus}`);
const r = Bun.spawnSync(
  [BIN, `-max_total_time=${seconds}`, "-max_len=262144", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1", `-artifact_prefix=${findings}/`, corpus],
  { cwd: OUT, stdout: "inherit", stderr: "inherit", env: { ...process.env, ASAN_OPTIONS: "detect_leaks=1:allocator_may_return_null=1" } },
);
const found = readdirSync(findings);
console.log(found.length ? `findings (${found.length}) in ${findings}: ${found.join(", ")}` : "no findings");
process.exit(r.exitCode ?? 1);
