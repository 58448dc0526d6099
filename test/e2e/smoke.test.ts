// The README's main job end to end: `selftune run configs/smoke.yaml` synthesizes a tiny
// qwen2 model and runs load -> prompts -> instructions -> responses -> qc -> sft -> pairs ->
// dpo / dpo-only -> testset -> evaluator on it, with the QC gate reporting (random weights
// cannot pass it), in under two minutes on 2 cores.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ModelInfo, QcReport, SftExample } from "../../plugins/shared/kinds.ts";
import { cli, ROOT, tempDir } from "../helpers.ts";
import { expectOk, manifest, readJsonl } from "../plugins/generate-helpers.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

const strip = ({ _prov, ...r }: Record<string, unknown>) => r;

describe("smoke run", () => {
  const runDir = join(tempDir(), "smoke");

  test("configs/smoke.yaml runs end to end", async () => {
    const t0 = performance.now();
    const r = await cli(["run", join(ROOT, "configs/smoke.yaml"), "--run-dir", runDir]);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`smoke run: ${seconds.toFixed(1)} s`);
    expectOk(r);
    expect(seconds).toBeLessThan(120);
    const m = manifest(runDir);
    expect(Object.keys(m.stages)).toEqual(["load", "prompts", "instructions", "responses", "qc", "sft", "pairs", "dpo", "dpo-only", "testset", "evaluator"]);
    for (const s of Object.values(m.stages)) expect(s.status).toBe("done");
    // QC reported its gates and did not stop the run.
    expect(r.stdout).toContain("(reported, not stopping)");
    expect(m.stages.qc!.gates.length).toBe(8);
  });

  test("its artifacts are what the specs say", () => {
    const info = ModelInfo.parse(strip(readJsonl(join(runDir, "load/model.jsonl"))[0]!));
    expect(info.architecture).toBe("qwen2");
    expect(info.chatTemplate).toBe("present, disabled");
    expect(info.sentinels.map((s) => [s.name, s.passed])).toEqual([["tokenizer", true], ["critic-choices", true], ["chat-markup", true], ["persona", true]]);
    const ins = readJsonl(join(runDir, "instructions/instructions.jsonl"));
    expect(ins.length).toBe(16);
    const ex = readJsonl(join(runDir, "responses/examples.jsonl")).map((x) => SftExample.parse(strip(x)));
    expect(ex.length).toBe(16);
    const report = QcReport.parse(strip(readJsonl(join(runDir, "qc/report.jsonl"))[0]!));
    expect(report.records).toBe(16);
    expect(existsSync(join(runDir, "qc/qc-summary.txt"))).toBe(true);
    expect(readFileSync(join(runDir, "prompts/prompts.txt"), "utf8")).toContain("Instruction:");
    // sft trained on the loader's model despite the failed QC, and says so.
    const sft = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).stages.sft;
    expect(sft.artifacts.map((a: { file: string }) => a.file)).toContain("adapter.gguf");
    expect(sft.provenance.extra.sft.qcForced).toBe(true);
    // pairs -> DPO from the SFT adapter and the DPO-only baseline from the base: each wrote
    // an adapter and a metrics curve whose first step is at log 2 (reference = start).
    const pairs = readJsonl(join(runDir, "pairs/pairs.jsonl"));
    expect(pairs.length).toBeGreaterThan(0);
    for (const id of ["dpo", "dpo-only"]) {
      expect(existsSync(join(runDir, id, "adapter.gguf"))).toBe(true);
      const first = readJsonl(join(runDir, id, "metrics.jsonl"))[0] as { loss: number };
      expect(Math.abs(first.loss - Math.LN2)).toBeLessThan(1e-9);
    }
  });
});
