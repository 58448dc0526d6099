// A user's dataset end to end through the real CLI on the tiny model: import(sft) -> qc -> sft
// and import(pairs) -> dpo, the QC gate applied to imported data as to generated data: a failed
// one refused by the training stage, then forced (recorded in the adapter's manifest).
import { describe, expect, setDefaultTimeout, test } from "bun:test";

// Model loads and training on a shared 2-core box.
setDefaultTimeout(300_000);
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import { DpoManifest } from "../../plugins/dpo/kinds.ts";
import { TrainingManifest } from "../../plugins/sft/kinds.ts";
import { cli, tempDir, writeConfig } from "../helpers.ts";
import { PAIRS, patternPairs, tiny } from "./helpers.ts";

const jsonl = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).join("\n") + "\n";
const TRAIN = "lora: { rank: 4, alpha: 8 }, maxSteps: 2, microBatch: 2, gradAccum: 1, lr: 0.01, threads: 2";

async function setup(kind: "sft" | "pairs", opts: { qcFails?: boolean; force?: boolean } = {}) {
  const dir = tempDir(`selftune-import-${kind}-`);
  const model = await tiny("qwen2");
  const data = kind === "sft" ? PAIRS.map(([instruction, response]) => ({ instruction, response })) : patternPairs(8).map((p) => ({ prompt: p.instruction, chosen: p.chosen, rejected: p.rejected }));
  writeFileSync(join(dir, "data.jsonl"), jsonl(data));
  // A failing gate: more records asked for than the file has.
  const stages =
    kind === "sft"
      ? `  - plugin: import\n    config: { file: data.jsonl, kind: sft }\n  - plugin: qc\n    gate: report\n    config: { minCriticAcceptance: null${opts.qcFails ? ", minRecords: 100" : ""} }\n  - plugin: sft\n    config: { model: ${model}, ${TRAIN}, force: ${!!opts.force} }\n`
      : `  - plugin: import\n    gate: report\n    config: { file: data.jsonl, kind: pairs${opts.qcFails ? ", qc: { minPairs: 100 }" : ""} }\n  - plugin: dpo\n    config: { model: ${model}, from: base, ${TRAIN}, force: ${!!opts.force} }\n`;
  const cfg = writeConfig(dir, "run.yaml", `name: import-train\nseed: 3\nstages:\n${stages}`);
  return { dir, cfg, runDir: join(dir, "run") };
}

const metaOf = (runDir: string, stage: string) => JSON.parse(readFileSync(join(runDir, stage, "adapter.gguf.meta.json"), "utf8"));

describe("imported data trains", () => {
  test("import(sft) -> qc -> sft: trains on every imported record", async () => {
    const s = await setup("sft");
    const r = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(r.stderr).not.toContain("error");
    expect(r.exitCode).toBe(0);
    const meta = TrainingManifest.parse(metaOf(s.runDir, "sft"));
    expect(meta.qc).toEqual({ passed: true, forced: false });
    expect(meta.data.examples).toBe(PAIRS.length);
    const m = JSON.parse(readFileSync(join(s.runDir, "manifest.json"), "utf8"));
    expect(m.stages.qc.inputs.examples.stage).toBe("import");
    expect(m.stages.import.provenance.extra.import.sha256).toBe(await sha256File(join(s.dir, "data.jsonl")));
  });

  test("import(sft) whose QC failed: sft refuses it, force: true trains and records it", async () => {
    const s = await setup("sft", { qcFails: true });
    const refused = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("sft: refusing a dataset whose QC did not pass (failed: records)");
    expect(existsSync(join(s.runDir, "sft", "adapter.gguf"))).toBe(false);
    const forced = await setup("sft", { qcFails: true, force: true });
    const r = await cli(["run", forced.cfg, "--run-dir", s.runDir]); // import and qc are reused
    expect(r.stderr).toContain("stage 'import': unchanged, skipped");
    expect(r.exitCode).toBe(0);
    expect(TrainingManifest.parse(metaOf(s.runDir, "sft")).qc).toEqual({ passed: false, forced: true });
  });

  test("import(pairs) -> dpo: the import stage's pairs QC passes and dpo trains on the pairs", async () => {
    const s = await setup("pairs");
    const r = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(r.stderr).not.toContain("error");
    expect(r.exitCode).toBe(0);
    const meta = DpoManifest.parse(metaOf(s.runDir, "dpo"));
    expect(meta.qc).toEqual({ stage: "import", passed: true, failedGates: [], forced: false });
    expect(meta.training.steps).toBe(2);
  });

  test("import(pairs) whose QC failed: dpo refuses them, force: true trains and records it", async () => {
    const s = await setup("pairs", { qcFails: true });
    const refused = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("gate 'pairs' of stage 'import' failed: 8 pairs");
    expect(refused.stderr).toContain("dpo: refusing pairs whose QC did not pass (stage 'import', failed: pairs)");
    const forced = await setup("pairs", { qcFails: true, force: true });
    const r = await cli(["run", forced.cfg, "--run-dir", s.runDir]);
    expect(r.exitCode).toBe(0);
    expect(DpoManifest.parse(metaOf(s.runDir, "dpo")).qc).toEqual({ stage: "import", passed: false, failedGates: ["pairs"], forced: true });
  });
});
