// Bad files never take the process down (issue 12 item 5): a seeded corpus of ~4,000 broken
// GGUF models and adapters (native/fuzz/corpus.ts: truncations, byte flips, extreme values
// in every header, metadata and tensor-info field, rewritten settings, vocabularies and
// tensor tables) goes through checkGguf (what `model info` reports), loadModel plus a
// decode, a vocabulary-only load with every token decoded, loadAdapter on a valid model plus
// a decode, and the training engine's loads, in
// child processes (test/native/gguf-mutation-child.ts) so that a crash or a hang is seen as
// one instead of killing the test runner.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mutants, writeBaseFiles, type BaseFiles, type Mutant } from "../../native/fuzz/corpus.ts";
import { nativeAvailable } from "../../native/index.ts";

const SEED = 1;
const BATCH = 700;
const BATCH_TIMEOUT_MS = 60_000;
const CHILD = join(import.meta.dir, "gguf-mutation-child.ts");

type Outcome = { ok: true; finite?: boolean } | { ok: false; error: string };
interface Result {
  check: Outcome;
  info: Outcome;
  load: Outcome;
  train: Outcome;
  /** loadModel(vocabOnly) + every token's text + a tokenize round trip (models only). */
  vocab: Outcome;
}
interface Job {
  path: string;
  kind: Mutant["kind"];
  arch: Mutant["arch"];
}

let dir: string;
let bases: BaseFiles;
let corpus: Mutant[];
const results = new Map<number, Result>();
const crashes: { mutant: Mutant; how: string }[] = [];
let seconds = 0;

async function runBatch(start: number, jobs: Job[]): Promise<number> {
  const spec = join(dir, `jobs-${start}.json`);
  writeFileSync(spec, JSON.stringify({ bases: bases.model, jobs }));
  const child = Bun.spawn(["bun", CHILD, spec], { stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_LLAMA_LOG: "none" } });
  const timer = setTimeout(() => child.kill("SIGKILL"), BATCH_TIMEOUT_MS);
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  clearTimeout(timer);
  let current = -1;
  let finished = false;
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const o = JSON.parse(line);
    if ("start" in o) current = o.start;
    if ("done" in o) results.set(start + o.done, o as Result);
    if (o.finished) finished = true;
  }
  if (finished && code === 0) return jobs.length;
  // The child died on job `current` (or hung on it): record it, go on after it.
  const how = child.signalCode === "SIGKILL" ? `hang (over ${BATCH_TIMEOUT_MS / 1000} s)` : `crash (exit ${code}, ${child.signalCode ?? "no signal"}): ${stderr.split("\n").find((l) => /assert|abort|fault|error/i.test(l)) ?? ""}`;
  crashes.push({ mutant: corpus[start + Math.max(current, 0)]!, how });
  return Math.max(current, 0) + 1;
}

beforeAll(async () => {
  if (!nativeAvailable()) return;
  const t0 = performance.now();
  dir = mkdtempSync(join(tmpdir(), "selftune-gguf-mutation-"));
  bases = await writeBaseFiles(join(dir, "bases"));
  corpus = mutants(bases, SEED);
  for (let start = 0; start < corpus.length; ) {
    const batch = corpus.slice(start, start + BATCH);
    const jobs: Job[] = [];
    for (const [i, m] of batch.entries()) {
      const path = join(dir, `${start + i}.gguf`);
      await m.write(path);
      jobs.push({ path, kind: m.kind, arch: m.arch });
    }
    const ran = await runBatch(start, jobs);
    for (const j of jobs.slice(0, ran)) rmSync(j.path, { force: true });
    start += ran;
  }
  seconds = (performance.now() - t0) / 1000;
  console.log(`gguf mutation corpus: ${corpus.length} files (seed ${SEED}), ${results.size} checked, ${crashes.length} crashes or hangs, ${seconds.toFixed(1)} s`);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const pathOf = (i: number) => join(dir, `${i}.gguf`);
// Every rejection names the file, then a key, tensor, offset or the part of the file.
const NAMED = /(\b[a-z0-9_]+\.[a-z0-9_.]+\b|tensor|byte|offset|magic|version|header|truncated|vocabulary|adapter)/i;
// Why an adapter that passes on its own may still not load onto a given model.
const MODEL_FIT = /do not fit the model|adapts a tensor the model|adapter is for architecture|adapts token_embd/;

// ggml's GGUF reader reports the value it failed to read when a tensor info is cut off by
// the end of the file (uninitialised, different on each parse); the rest must match.
function sameMessage(error: string): string {
  return error.includes("malformed or truncated GGUF header") ? error.replace(/-?\d+/g, "N") : error;
}

function rejections(pick: (r: Result) => Outcome): { i: number; error: string }[] {
  const out: { i: number; error: string }[] = [];
  for (const [i, r] of results) {
    const o = pick(r);
    if (!o.ok) out.push({ i, error: o.error });
  }
  return out;
}

describe.skipIf(!nativeAvailable())("GGUF mutation corpus", () => {
  test("at least 1,000 files, 0 crashes, 0 hangs", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(1000);
    expect(crashes.map((c) => `${c.mutant.id} (${c.mutant.what}): ${c.how}`)).toEqual([]);
    expect(results.size).toBe(corpus.length);
  });

  test("every rejection names the file and what is wrong", () => {
    const bad: string[] = [];
    for (const pick of [(r: Result) => r.check, (r: Result) => r.load, (r: Result) => r.train, (r: Result) => r.vocab]) {
      for (const { i, error } of rejections(pick)) {
        if (!error.startsWith(`${pathOf(i)}: `) || !NAMED.test(error.slice(pathOf(i).length))) bad.push(`${corpus[i]!.what}: ${error}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test("model info (checkGguf) and the loaders agree: same files rejected, same message", () => {
    const disagree: string[] = [];
    for (const [i, r] of results) {
      const m = corpus[i]!;
      const where = `${m.id} (${m.what})`;
      // info is checkGguf's verdict as `model info` reports it.
      if (r.info.ok !== r.check.ok || (!r.info.ok && !r.check.ok && r.info.error !== r.check.error)) disagree.push(`${where}: info ${JSON.stringify(r.info)} vs check ${JSON.stringify(r.check)}`);
      if (r.check.ok && r.load.ok) continue;
      if (!r.check.ok) {
        // checkGguf takes a file for what its general.type says: an adapter whose
        // general.type was broken is checked as a model, loadAdapter says it is not an adapter.
        if (m.kind === "adapter" && !r.load.ok && /: not an adapter \(general\.type is/.test(r.load.error)) continue;
        if (r.load.ok || sameMessage(r.load.error) !== sameMessage(r.check.error)) disagree.push(`${where}: check rejects (${r.check.error}) but load ${JSON.stringify(r.load)}`);
        continue;
      }
      // check accepts, load rejects: only a vocabulary-only file (check says so), or an
      // adapter that does not fit the model it is loaded onto.
      const loadError = r.load.ok ? "" : r.load.error;
      const explained = m.kind === "model" ? /has no tensors: a vocabulary-only file/.test(loadError) : MODEL_FIT.test(loadError);
      if (!explained) disagree.push(`${where}: check accepts, load rejects: ${loadError}`);
    }
    expect(disagree).toEqual([]);
  });

  test("a file that loads decodes to finite logits unless its weights were changed", () => {
    const nan = [...results].filter(([i, r]) => corpus[i]!.headerOnly && r.load.ok && r.load.finite === false).map(([i]) => corpus[i]!.what);
    expect(nan).toEqual([]);
  });

  test("the validators, not llama.cpp, reject what they are meant to", () => {
    // llama.cpp's own errors come as "<path>: llama.cpp could not load ...": the settings
    // the item names must be caught before it, with the key named.
    const byKey = (re: RegExp) => rejections((r) => r.load).filter(({ i }) => re.test(corpus[i]!.what));
    for (const [what, expected] of [
      [/^llama\.block_count = 65536$/, /llama\.block_count is 65536/],
      [/^llama\.rope\.dimension_count = 48$/, /llama\.rope\.dimension_count is 48 but the head size is 16 \(llama\.embedding_length 32 \/ llama\.attention\.head_count 2\)/],
      [/^qwen2\.attention\.layer_norm_rms_epsilon = NaN$/, /qwen2\.attention\.layer_norm_rms_epsilon is nan/],
      [/^llama\.rope\.freq_base = NaN$/, /llama\.rope\.freq_base is nan/],
      [/^alpha NaN$/, /adapter\.lora\.alpha is nan/],
      [/^alpha Infinity$/, /adapter\.lora\.alpha is inf/],
      [/^a duplicate token$/, /tokenizer\.ggml\.tokens has the token .* twice/],
      [/^llama\.attention\.head_count_kv = 0$/, /llama\.attention\.head_count_kv is 0/],
    ] as const) {
      const hits = byKey(what);
      expect(hits.length).toBeGreaterThan(0);
      for (const h of hits) expect(h.error).toMatch(expected);
    }
    expect(rejections((r) => r.load).filter((x) => x.error.includes(": llama.cpp could not load")).length).toBeLessThan(results.size / 20);
  });

  test("run time", () => {
    expect(seconds).toBeLessThan(90);
  });
});
