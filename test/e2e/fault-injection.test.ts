// Fault injection for the two kinds of stage that run a model (issue 12): generating stages
// (load -> instructions -> responses on the tiny synthesized model) and training stages
// (sft -> dpo on our engine, a checkpoint after every step). Real child runs, killed at
// random points (model load, mid-batch, between commits, mid-training, while writing the
// adapter) by SIGINT, SIGINT twice, SIGTERM or SIGKILL, in the CLI or in the `bun run
// selftune` wrapper (test/fault-injection.ts); every completed run's artifacts must equal an
// uninterrupted run's byte for byte. Training also proves the checkpoint is never lost: a
// checkpoint that existed when a run started is, when that run ends, still there at the same
// or a later step (it stays after completion too), and a stage that finished in that run
// finished from it.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { FAULT_SEED, faultInjection } from "../fault-injection.ts";
import { FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";
import { smallConfig } from "../plugins/generate-helpers.ts";
import { patternPairs, tiny } from "../train/helpers.ts";

// Dozens of child runs on a shared 2-core box.
setDefaultTimeout(600_000);

const KILLS = 20;
/** The delay before a kill starts when a stage really runs (not at a skipped one). */
const STAGE_STARTED = /stage '[\w-]+' \([^)]*\) started/;

beforeAll(async () => {
  await tinyModel({ type: "f16" }); // synthesized once, before the children race for it
});

describe("fault injection: random kills of real model runs end byte-identical to an uninterrupted run", () => {
  test("generating stages (instructions, responses)", async () => {
    const dir = tempDir();
    const cfg = smallConfig(dir, "gen.yaml", { name: "fi-gen", seed: 5, count: 12, maxCalls: 8 });
    const t0 = performance.now();
    const r = await faultInjection(cfg, ["load/model.jsonl", "instructions/instructions.jsonl", "responses/examples.jsonl"], { kills: KILLS, seed: FAULT_SEED + 10, maxDelayMs: 1500, after: STAGE_STARTED, wrapperShare: 0.5 });
    console.log(`generating stages: ${r.landed} kills (${r.wrapperKills} in the bun run wrapper), ${r.completed} completed runs, ${((performance.now() - t0) / 1000).toFixed(1)} s (seed ${FAULT_SEED + 10}); kills by stage: ${JSON.stringify(r.where)}`);
    expect(r.landed).toBeGreaterThanOrEqual(KILLS);
    expect(r.wrapperKills).toBeGreaterThan(0);
  });

  test("training stages (sft, dpo): same adapters, and the checkpoint survives every interrupt", async () => {
    const dir = tempDir();
    const model = await tiny("qwen2");
    const cfg = writeConfig(dir, "train.yaml", `name: fi-train
seed: 7
stages:
  - id: pairs
    plugin: ${FIXTURE_PLUGINS}/canned-pairs.ts
    config:
      pairs: ${JSON.stringify(patternPairs(16))}
  - plugin: qc
    gate: report
  - plugin: sft
    config: { model: ${model}, lora: { rank: 4, alpha: 8 }, maxSteps: 40, microBatch: 2, gradAccum: 1, lr: 0.01, threads: 1, force: true, checkpointEvery: 1 }
  - plugin: dpo
    config: { model: ${model}, lora: { rank: 4, alpha: 8 }, maxSteps: 16, microBatch: 2, gradAccum: 1, lr: 0.005, threads: 1, checkpointEvery: 1 }
`);
    const STAGES = ["sft", "dpo"] as const;
    const files = STAGES.flatMap((s) => [`${s}/adapter.gguf`, `${s}/adapter.gguf.meta.json`, `${s}/training-manifest.json`, s === "sft" ? "sft/lossCurve.jsonl" : "dpo/metrics.jsonl"]);
    type Before = Record<(typeof STAGES)[number], { step: number | null; done: boolean }>;
    const stats = { startedWithCheckpoint: 0, finishedFromCheckpoint: 0, interruptedKeepingCheckpoint: 0 };
    const violations: string[] = [];
    const t0 = performance.now();
    const r = await faultInjection(cfg, files, {
      kills: KILLS,
      seed: FAULT_SEED + 20,
      maxDelayMs: 2500,
      after: STAGE_STARTED,
      wrapperShare: 0.5,
      observe: {
        before: (runDir): Before => Object.fromEntries(STAGES.map((s) => [s, { step: checkpointStep(join(runDir, `${s}/checkpoint.bin`)), done: stageRecord(runDir, s)?.status === "done" }])) as Before,
        after(runDir, before, run) {
          for (const s of STAGES) {
            const b = before[s].step;
            if (before[s].done || b === null || b === 0) continue;
            stats.startedWithCheckpoint++;
            // The checkpoint is never deleted in a chain (it stays after completion too).
            const a = checkpointStep(join(runDir, `${s}/checkpoint.bin`));
            const rec = stageRecord(runDir, s);
            if (a === null || a < b) violations.push(`${runDir} ${s}: checkpoint at step ${b} before the run, ${a ?? "none"} after it (exit ${run.code})`);
            else if (rec?.status !== "done") stats.interruptedKeepingCheckpoint++;
            else {
              const from = (rec.provenance.extra[s] as { resumedAtStep: number | null }).resumedAtStep;
              if (from !== b) violations.push(`${runDir} ${s}: finished from step ${from}, though a checkpoint at step ${b} was there`);
              else stats.finishedFromCheckpoint++;
            }
          }
        },
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`training stages: ${r.landed} kills (${r.wrapperKills} in the bun run wrapper), ${r.completed} completed runs, ${seconds.toFixed(1)} s (seed ${FAULT_SEED + 20}); kills by stage: ${JSON.stringify(r.where)}; runs that found a checkpoint past step 0: ${stats.startedWithCheckpoint} (finished from it: ${stats.finishedFromCheckpoint}, interrupted again keeping it or a later one: ${stats.interruptedKeepingCheckpoint}); lost: ${violations.length}`);
    expect(violations).toEqual([]);
    expect(r.landed).toBeGreaterThanOrEqual(KILLS);
    // The schedule must really have exercised resumes from a checkpoint, finishing from one.
    expect(stats.finishedFromCheckpoint).toBeGreaterThan(0);
  });
});

/** The step a training checkpoint holds ("STCKPT01", u32 version, u64 fingerprint, i64 step), or null. */
function checkpointStep(path: string): number | null {
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  if (b.subarray(0, 8).toString("latin1") !== "STCKPT01") throw new Error(`${path}: not a checkpoint`);
  return Number(b.readBigInt64LE(20));
}

function stageRecord(runDir: string, stage: string): { status: string; provenance: { extra: Record<string, unknown> } } | undefined {
  const p = join(runDir, "manifest.json");
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")).stages[stage] : undefined;
}
