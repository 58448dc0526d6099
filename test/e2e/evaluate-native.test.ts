// The evaluation stage end to end on the real addon: a template test set, then the
// evaluator comparing a synthesized base model with the same model plus a LoRA adapter,
// greedy, one variant loaded at a time, through the CLI — results, responses, report.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir, writeConfig } from "../helpers.ts";
import { buildInfo } from "../../native/index.ts";
import { tiny, writeTinyLora } from "../native/helpers.ts";

describe("evaluation with the native generator", () => {
  test("base vs base+adapter on the same held-out instructions", async () => {
    const dir = tempDir("selftune-eval-e2e-");
    const model = await tiny({ arch: "llama" });
    const lora = await writeTinyLora(join(dir, "lora.gguf"), { arch: "llama", rank: 4, alpha: 8 });
    const cfg = writeConfig(
      dir,
      "eval.yaml",
      `name: eval-e2e\nseed: 3\nstages:\n  - plugin: testset\n    config: { perType: 3 }\n  - plugin: evaluator\n    gate: report\n    config:\n` +
        `      variants:\n        - { name: base, model: ${model} }\n        - { name: lora, model: ${model}, adapters: [{ path: ${lora}, scale: 2 }] }\n` +
        `      generatorOptions: { threads: 1, contextSize: 2048, parallel: 8 }\n      maxTokens: 16\n      gate: { compare: [lora, base] }\n`,
    );
    const runDir = join(dir, "run");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    const out = join(runDir, "evaluator");
    const base = readFileSync(join(out, "base.responses.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const adapted = readFileSync(join(out, "lora.responses.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(base.length).toBe(15);
    expect(adapted.length).toBe(15);
    // The same instructions, in the same order, for both variants; the adapter changed answers.
    expect(adapted.map((x) => x.id)).toEqual(base.map((x) => x.id));
    // Same prompts; the generations (not the records, which name their variant) differ somewhere.
    expect(adapted.map((x) => x.promptSha256)).toEqual(base.map((x) => x.promptSha256));
    expect(adapted.filter((x, i) => x.raw !== base[i].raw).length).toBeGreaterThan(0);
    const results = JSON.parse(readFileSync(join(out, "evaluation_results.json"), "utf8"));
    const overall = results.analysis.pairs.find((p: { scope: string }) => p.scope === "overall");
    expect(overall).toMatchObject({ candidate: "lora", baseline: "base", n: 15 });
    const t = overall.table;
    expect(t.a + t.b + t.c + t.d).toBe(15);
    expect(results.analysis.gate.name).toBe("significance lora vs base");
    expect(results.variants.map((v: { name: string; generated: number }) => [v.name, v.generated])).toEqual([["base", 15], ["lora", 15]]);
    expect(results.variants[0].loadInfo.backend).toBe(buildInfo().backend);
    expect(existsSync(join(out, "report.html"))).toBe(true);
  });
});
