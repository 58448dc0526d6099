// The qc stage run through the real CLI, fed by a stand-in generation stage
// that uses the prompts module API the way the generate plugin will.
import { describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, ROOT, tempDir, writeConfig } from "../helpers.ts";

// A fake response stage: canned raw generations instead of a model.
const FAKE_GENERATE = `
import { z } from "zod";
import { definePlugin } from "${ROOT}/core/plugin.ts";
import { SftExampleKind } from "${ROOT}/plugins/shared/kinds.ts";
import { buildResponsePrompt, criticVerdict } from "${ROOT}/plugins/prompts/prompts.ts";
import { cleanResponse } from "${ROOT}/plugins/prompts/clean.ts";

const Item = z.strictObject({ instruction: z.string(), raw: z.string(), hitMaxTokens: z.boolean().default(false), margin: z.number().nullable().default(2) });
export default definePlugin({
  name: "fake-generate", version: "0.0.1", description: "canned generations (test)",
  config: z.strictObject({ items: z.array(Item) }),
  consumes: {}, produces: { examples: SftExampleKind },
  async run(ctx) {
    const sampling = { temperature: 0.3, topP: 0.85, topK: 0, repetitionPenalty: 1.15, maxTokens: 80 };
    ctx.config.items.forEach((it, i) => {
      const id = "ins-" + i;
      const { fewShotIds } = buildResponsePrompt(it.instruction, { seed: ctx.seed, key: id, k: 3 });
      const c = cleanResponse(it.raw, { hitMaxTokens: it.hitMaxTokens });
      const words = (s) => (s.match(/\\S+/g) ?? []).length;
      ctx.outputs.examples.write({
        id: "ex-" + i, instructionId: id, instruction: it.instruction, response: c.response, raw: it.raw,
        stopReason: c.stopReason, hitMaxTokens: c.hitMaxTokens, responseTokens: words(c.response), generatedTokens: words(it.raw),
        fewShotIds, sampling, seed: ctx.seed, critic: it.margin === null ? null : criticVerdict(it.margin, 0, 1),
      });
    });
  },
});
`;

function setup(items: unknown[], qcExtra = ""): { dir: string; cfg: string; runDir: string } {
  const dir = tempDir();
  writeFileSync(join(dir, "fake-generate.ts"), FAKE_GENERATE);
  const cfg = writeConfig(dir, "pilot.yaml", `name: pilot\nstages:\n  - id: responses\n    plugin: ./fake-generate.ts\n    config:\n      items: ${JSON.stringify(items)}\n  - plugin: qc\n${qcExtra}`);
  return { dir, cfg, runDir: join(dir, "run") };
}

const good = Array.from({ length: 10 }, (_, i) => ({ instruction: `Name ${i + 2} kinds of fruit.`, raw: ` Apples and pears, number ${i}.\nEND\n\nInstruction: more` }));
const bad = [
  ...good.slice(0, 6),
  { instruction: "Describe the sea.", raw: " The sea is wide and deep and goes on and on", hitMaxTokens: true },
  { instruction: "Describe a river.", raw: " Rivers flow. END of it\nEND" },
  { instruction: "Describe a lake.", raw: " Lakes are still.", margin: -1 },
  { instruction: "Describe a hill.", raw: " Hills roll.\n\nThen", margin: null },
];

describe("qc plugin", () => {
  test("a failing pilot stops the run with exit 3, naming each failed gate; report, summary and histogram are written", async () => {
    const { cfg, runDir } = setup(bad);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("runaway-rate failed (runaway 1/10 = 10.0% >= 5.0%)");
    expect(r.stderr).toContain("delimiter-leakage failed (delimiters left in 1/10 responses > 0)");
    expect(r.stdout).toContain("gate runaway-rate: FAIL");
    expect(r.stdout).toContain("gate median-response-tokens: PASS");
    const report = JSON.parse(readFileSync(join(runDir, "qc/report.jsonl"), "utf8").trim());
    expect(report.passed).toBe(false);
    expect(report.records).toBe(10);
    expect(report.stopReasons).toEqual({ END: 7, instruction: 0, response: 0, "blank-lines": 1, eos: 1, runaway: 1 });
    expect(report.criticAcceptance).toEqual({ count: 8, total: 9, rate: 8 / 9 });
    expect(report._prov).toMatch(/\/qc$/);
    const summary = readFileSync(join(runDir, "qc/qc-summary.txt"), "utf8");
    expect(summary).toContain("QC over 10 sft-example records: FAIL");
    const hist = JSON.parse(readFileSync(join(runDir, "qc/qc-histogram.json"), "utf8"));
    expect(hist.responseTokens).toHaveLength(10);
    expect(hist.histogram.counts.reduce((a: number, b: number) => a + b, 0)).toBe(10);
    const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
    expect(manifest.stages.qc.files.map((f: { file: string }) => f.file).sort()).toEqual(["qc-histogram.json", "qc-summary.txt"]);
  });

  test("gate: report records the failure and exits 0", async () => {
    const { cfg, runDir } = setup(bad, "    gate: report\n");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("gate runaway-rate: FAIL");
    expect(r.stdout).toContain("(reported, not stopping)");
  });

  test("a clean pilot passes every gate; thresholds come from the config", async () => {
    const { cfg, runDir } = setup(good);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(readFileSync(join(runDir, "qc/report.jsonl"), "utf8").trim());
    expect(report.passed).toBe(true);
    expect(report.responseTokens.median).toBe(5);
    const strict = setup(good, "    config: { maxMedianResponseTokens: 5 }\n");
    const r2 = await cli(["run", strict.cfg, "--run-dir", strict.runDir]);
    expect(r2.exitCode).toBe(3);
    expect(r2.stderr).toContain("median-response-tokens failed (median response 5 tokens >= 5)");
  });

  test("a typo in the qc config is refused before anything runs, with the line", async () => {
    const { cfg, runDir } = setup(good, "    config: { maxRunwayRate: 0.1 }\n");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown key 'maxRunwayRate' (did you mean 'maxRunawayRate'?");
    expect(existsSync(runDir)).toBe(false);
  });

  test("a bad record in the input is reported with file:line", async () => {
    const { cfg, runDir } = setup(good);
    expect((await cli(["run", cfg, "--run-dir", runDir])).exitCode).toBe(0);
    const file = join(runDir, "responses/examples.jsonl");
    appendFileSync(file, JSON.stringify({ id: "x", instruction: "y" }) + "\n");
    // Taken as edited (the default would stop at the changed sha256 first), then read.
    const r = await cli(["run", cfg, "--run-dir", runDir, "--only", "qc", "--on-changed", "rerun"]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(`${file}:11: invalid 'sft-example' record`);
  });
});
