// An interrupt that lands after a training stage's work is done but before the pipeline
// records the stage done (Ctrl-C while the adapter is being saved, say): the stage is
// interrupted, its checkpoint is kept, and the re-run resumes from that checkpoint (the last
// one written) instead of training from step 0, writing its curve once — the same bytes as an
// uninterrupted run. (Before: the curve was committed with a cursor and the checkpoint
// deleted, so the re-run trained from step 0 and appended a second copy of the curve.)
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import { loadConfig } from "../../core/config.ts";
import { Pipeline, planRun } from "../../core/pipeline.ts";
import { FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";
import { patternPairs, tiny } from "./helpers.ts";

setDefaultTimeout(300_000);

const FILES = ["sft/adapter.gguf", "sft/training-manifest.json", "sft/lossCurve.jsonl", "dpo/adapter.gguf", "dpo/training-manifest.json", "dpo/metrics.jsonl"];
const hook = globalThis as { __selftuneAfterRun?: (stageId: string) => void };
const quiet = { info() {}, warn() {} };

async function run(cfg: string, runDir: string, abortAfter: string | null) {
  const controller = new AbortController();
  hook.__selftuneAfterRun = (id) => void (id === abortAfter && controller.abort());
  try {
    const loaded = loadConfig(cfg);
    return await new Pipeline(loaded, await planRun(loaded), { runDir, signal: controller.signal, log: quiet }).run();
  } finally {
    hook.__selftuneAfterRun = undefined;
  }
}

const manifest = (runDir: string) => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
const lines = (p: string) => readFileSync(p, "utf8").trim().split("\n").length;

describe("an interrupt after the training, before the stage is recorded done", () => {
  test("sft and dpo resume from the kept checkpoint, not from step 0; the same bytes as an uninterrupted run", async () => {
    const dir = tempDir();
    const model = await tiny("qwen2");
    const cfg = writeConfig(dir, "run.yaml", `name: after-train
seed: 3
stages:
  - id: pairs
    plugin: ${FIXTURE_PLUGINS}/canned-pairs.ts
    config:
      pairs: ${JSON.stringify(patternPairs(8))}
  - plugin: qc
    gate: report
  - plugin: ${FIXTURE_PLUGINS}/sft-after-run.ts
    config: { model: ${model}, lora: { rank: 4, alpha: 8 }, maxSteps: 6, microBatch: 2, gradAccum: 1, lr: 0.01, threads: 1, force: true, checkpointEvery: 2 }
  - plugin: ${FIXTURE_PLUGINS}/dpo-after-run.ts
    config: { model: ${model}, lora: { rank: 4, alpha: 8 }, maxSteps: 4, microBatch: 2, gradAccum: 1, lr: 0.005, threads: 1, checkpointEvery: 2 }
`);
    const ref = join(dir, "ref");
    expect((await run(cfg, ref, null)).status).toBe("ok");

    const runDir = join(dir, "run");
    const kept: Record<string, number> = {};
    for (const stage of ["sft", "dpo"]) {
      const stopped = await run(cfg, runDir, stage);
      expect(stopped.status).toBe("interrupted");
      expect(manifest(runDir).stages[stage].status).toBe("interrupted");
      kept[stage] = checkpointStep(join(runDir, stage, "checkpoint.bin"));
    }
    expect(kept.sft).toBeGreaterThan(0);
    expect(kept.dpo).toBeGreaterThan(0);
    expect((await run(cfg, runDir, null)).status).toBe("ok");
    const m = manifest(runDir);
    // Each resumed from its kept checkpoint (the last one written), not from step 0.
    expect(m.stages.sft.provenance.extra.sft.resumedAtStep).toBe(kept.sft);
    expect(m.stages.dpo.provenance.extra.dpo.resumedAtStep).toBe(kept.dpo);
    expect(lines(join(runDir, "sft/lossCurve.jsonl"))).toBe(6);
    expect(lines(join(runDir, "dpo/metrics.jsonl"))).toBe(4);
    for (const f of FILES) expect(`${f} ${await sha256File(join(runDir, f))}`).toBe(`${f} ${await sha256File(join(ref, f))}`);
  });
});

/** The step a checkpoint holds ("STCKPT01", u32 version, u64 fingerprint, i64 step). */
function checkpointStep(path: string): number {
  const b = readFileSync(path);
  expect(b.subarray(0, 8).toString("latin1")).toBe("STCKPT01");
  return Number(b.readBigInt64LE(20));
}
