// Random-weights models fail the hygiene check: synthesized qwen2 and llama models (real
// vocabularies) answer the template test set through the real addon, and their output —
// vocabulary pieces of many scripts — scores near 0 %, failing on `fluent` wherever
// nothing else already failed it.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir, writeConfig } from "../helpers.ts";
import { tiny } from "../native/helpers.ts";

describe("hygiene on random-model output", () => {
  test("synthesized models score near 0 %, and fluent fails their text", async () => {
    const dir = tempDir("selftune-hygiene-e2e-");
    const qwen = await tiny({ arch: "qwen2", seed: 11 });
    const llama = await tiny({ arch: "llama", seed: 12 });
    const cfg = writeConfig(
      dir,
      "eval.yaml",
      `name: hygiene-e2e\nseed: 4\nstages:\n  - plugin: testset\n    config: { perType: 3 }\n  - plugin: evaluator\n    gate: report\n    config:\n` +
        `      variants:\n        - { name: qwen, model: ${qwen} }\n        - { name: llama, model: ${llama} }\n` +
        `      generatorOptions: { threads: 2, contextSize: 2048, parallel: 8 }\n      maxTokens: 48\n`,
    );
    const runDir = join(dir, "run");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    const results = JSON.parse(readFileSync(join(runDir, "evaluator", "evaluation_results.json"), "utf8"));
    for (const v of ["qwen", "llama"]) {
      const overall = results.analysis.rates.find((x: { variant: string; scope: string }) => x.variant === v && x.scope === "overall");
      expect([v, overall.strict.rate]).toEqual([v, expect.any(Number)]);
      expect(overall.strict.rate).toBeLessThanOrEqual(0.05);
      const responses = readFileSync(join(runDir, "evaluator", `${v}.responses.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      // Every response with text enough to judge fails `fluent`.
      const judged = responses.filter((x) => [...x.response].filter((c: string) => /\p{L}/u.test(c)).length >= 8);
      expect(judged.length).toBeGreaterThan(5);
      const fluentFails = judged.filter((x) => !x.checks.find((c: { type: string }) => c.type === "fluent").strict);
      expect(fluentFails.length / judged.length).toBeGreaterThanOrEqual(0.95);
    }
  }, 300_000);
});
