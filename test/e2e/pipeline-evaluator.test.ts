// Issue 11 item 4: one evaluator run over base, SFT, DPO and DPO-only: the smoke config on its
// tiny synthesized model, the adapters wired from the run's own stages, and a report whose
// paired rows cover SFT vs base, DPO vs SFT and DPO vs DPO-only.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, ROOT, tempDir } from "../helpers.ts";
import { expectOk, manifest } from "../plugins/generate-helpers.ts";

setDefaultTimeout(300_000);


describe("pipeline-evaluator", () => {
  test("base, sft, dpo and dpo-only in one run; the report covers the three comparisons", async () => {
    const dir = tempDir();
    const config = join(dir, "pipeline.yaml");
    // The smoke config ends with testset + pipeline-evaluator over the run's sft, dpo and
    // dpo-only stages: the README's main job is this test's pipeline.
    const smoke = readFileSync(join(ROOT, "configs/smoke.yaml"), "utf8");
    expect(smoke).toContain("plugin: pipeline-evaluator");
    writeFileSync(config, smoke.replace(/^name: smoke$/m, "name: pipeline-eval"));
    const runDir = join(dir, "run");
    const r = await cli(["run", config, "--run-dir", runDir]);
    expectOk(r);
    const m = manifest(runDir);
    const ev = m.stages["pipeline-evaluator"]!;
    expect(ev.status).toBe("done");
    const wired = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).stages["pipeline-evaluator"].inputs;
    expect(wired.sft.stage).toBe("sft");
    expect(wired.dpo.stage).toBe("dpo");
    expect(wired["dpo-only"].stage).toBe("dpo-only");
    expect(ev.gates.map((g) => g.name)).toEqual(["significance sft vs base", "significance dpo vs sft", "significance dpo vs dpo-only"]);

    const results = JSON.parse(readFileSync(join(runDir, "pipeline-evaluator/evaluation_results.json"), "utf8"));
    const overall = results.analysis.pairs.filter((p: { scope: string }) => p.scope === "overall").map((p: { candidate: string; baseline: string }) => `${p.candidate}/${p.baseline}`);
    expect(overall).toEqual(["sft/base", "dpo/sft", "dpo/dpo-only"]);
    // The variants differ in their adapters only, and each adapter is the wired stage's file.
    const variants = results.variants as { name: string; model: { sha256: string }; adapters: { path: string }[] }[];
    expect(variants.map((v) => v.name)).toEqual(["base", "sft", "dpo", "dpo-only"]);
    expect(new Set(variants.map((v) => v.model.sha256)).size).toBe(1);
    expect(variants.map((v) => v.adapters.map((a) => a.path))).toEqual([[], [join(runDir, "sft/adapter.gguf")], [join(runDir, "dpo/adapter.gguf")], [join(runDir, "dpo-only/adapter.gguf")]]);
    const html = readFileSync(join(runDir, "pipeline-evaluator/report.html"), "utf8");
    for (const name of ["dpo-only", "sft", "base"]) expect(html).toContain(name);
  });
});
