// The sft stage through the real CLI: a stand-in generation stage writes sft-example
// records, qc judges them, sft trains a few steps on the tiny model. The QC refusal and its
// override, the artifacts (adapter loadable by llama.cpp, loss curve, manifest), and resume
// after Ctrl-C ending with the same adapter bytes as an uninterrupted run.
import { describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import { loadModel } from "../../native/index.ts";
import { TrainingManifest } from "../../plugins/sft/kinds.ts";
import { cli, interruptAt, ROOT, tempDir, writeConfig } from "../helpers.ts";
import { tiny } from "./helpers.ts";

// Written outside the checkout: a bare "zod" would not resolve there (no node_modules above it).
const FAKE_GENERATE = `
import { z } from "${ROOT}/node_modules/zod";
import { definePlugin } from "${ROOT}/core/plugin.ts";
import { SftExampleKind } from "${ROOT}/plugins/shared/kinds.ts";
import { criticVerdict } from "${ROOT}/plugins/prompts/prompts.ts";
import { cleanResponse } from "${ROOT}/plugins/prompts/clean.ts";

const Item = z.strictObject({ instruction: z.string(), raw: z.string(), hitMaxTokens: z.boolean().default(false) });
export default definePlugin({
  name: "fake-generate", version: "0.0.1", description: "canned generations (test)",
  config: z.strictObject({ items: z.array(Item) }),
  consumes: {}, produces: { examples: SftExampleKind },
  async run(ctx) {
    const sampling = { temperature: 0.3, topP: 0.85, topK: 0, repetitionPenalty: 1.15, maxTokens: 80 };
    ctx.config.items.forEach((it, i) => {
      const c = cleanResponse(it.raw, { hitMaxTokens: it.hitMaxTokens });
      const words = (s) => (s.match(/\\S+/g) ?? []).length;
      ctx.outputs.examples.write({
        id: "ex-" + i, instructionId: "ins-" + i, instruction: it.instruction, response: c.response, raw: it.raw,
        stopReason: c.stopReason, hitMaxTokens: c.hitMaxTokens, responseTokens: words(c.response), generatedTokens: words(it.raw),
        fewShotIds: [], sampling, seed: ctx.seed, critic: criticVerdict(2, 0, 1),
      });
    });
  },
});
`;

const good = Array.from({ length: 12 }, (_, i) => ({ instruction: `Name ${i + 2} kinds of fruit.`, raw: ` Apples and pears, number ${i}.\nEND\n\nInstruction: more` }));
// Two runaways in twelve: the runaway-rate gate fails.
const bad = [...good.slice(0, 10), ...["the sea", "a river"].map((s) => ({ instruction: `Describe ${s}.`, raw: ` It is wide and deep and goes on and on`, hitMaxTokens: true }))];

async function setup(items: unknown[], sftExtra = "", qcExtra = "    gate: report\n") {
  const dir = tempDir("selftune-sft-");
  writeFileSync(join(dir, "fake-generate.ts"), FAKE_GENERATE);
  const model = await tiny("qwen2");
  const cfg = writeConfig(
    dir,
    "run.yaml",
    `name: sft-test\nseed: 7\nstages:\n  - id: responses\n    plugin: ./fake-generate.ts\n    config:\n      items: ${JSON.stringify(items)}\n  - plugin: qc\n${qcExtra}` +
      `  - plugin: sft\n    config:\n      model: ${model}\n      lora: { rank: 4, alpha: 8 }\n      epochs: 2\n      microBatch: 2\n      gradAccum: 2\n      lr: 0.002\n      threads: 2\n      heldOut: 2\n      checkpointEvery: 1\n${sftExtra}`,
  );
  return { dir, cfg, runDir: join(dir, "run"), sftDir: join(dir, "run", "sft") };
}

describe("sft plugin", () => {
  test("trains on a passed dataset: adapter (llama.cpp loads it), loss curve, manifest", async () => {
    const { cfg, runDir, sftDir } = await setup(good);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.stderr).not.toContain("error");
    expect(r.exitCode).toBe(0);
    const adapter = join(sftDir, "adapter.gguf");
    expect(existsSync(adapter)).toBe(true);
    const meta = TrainingManifest.parse(JSON.parse(readFileSync(`${adapter}.meta.json`, "utf8")));
    expect(meta.qc).toEqual({ passed: true, forced: false });
    expect(meta.data.examples).toBe(10);
    expect(meta.data.heldOut).toBe(2);
    expect(meta.hyperparameters.effectiveBatch).toBe(4);
    expect(meta.training.steps).toBe(6); // 10 examples / 4 = 3 steps, 2 epochs
    expect(meta.training.tokensSeen).toBeGreaterThan(0);
    expect(meta.validation!.after.loss).toBeLessThan(meta.validation!.before.loss);
    expect(meta.lora).toMatchObject({ rank: 4, alpha: 8, targets: ["q", "k", "v", "o", "gate", "up", "down"] });
    const curve = readFileSync(join(sftDir, "lossCurve.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(curve.map((c) => c.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(JSON.parse(readFileSync(join(sftDir, "training-manifest.json"), "utf8"))).toEqual(meta);
    // Kept after completion (the last one the engine wrote): an interrupt before the stage is recorded done resumes from it.
    expect(existsSync(join(sftDir, "checkpoint.bin"))).toBe(true);
    const m = await loadModel(await tiny("qwen2"), { contextSize: 128, parallel: 1 });
    const a = await m.loadAdapter(adapter);
    expect(a.alpha).toBe(8);
    m.dispose();
  });

  test("refuses a dataset whose QC failed", async () => {
    const { cfg, runDir, sftDir } = await setup(bad);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("refusing a dataset whose QC did not pass (failed: runaway-rate");
    expect(existsSync(join(sftDir, "adapter.gguf"))).toBe(false);
  });

  test("force: true trains anyway and records it", async () => {
    const { cfg, runDir, sftDir } = await setup(bad, "      force: true\n");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    const meta = TrainingManifest.parse(JSON.parse(readFileSync(join(sftDir, "adapter.gguf.meta.json"), "utf8")));
    expect(meta.qc).toEqual({ passed: false, forced: true });
    expect(meta.data.skipped).toEqual({ runaway: 2 });
    const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
    expect(JSON.stringify(manifest.stages.sft)).toContain('"qcForced":true');
  });

  test("Ctrl-C mid-training, then re-run: resumes from the checkpoint and writes the same bytes", async () => {
    const straight = await setup(good, "      maxSteps: 6\n      epochs: 3\n");
    expect((await cli(["run", straight.cfg, "--run-dir", straight.runDir])).exitCode).toBe(0);

    const s = await setup(good, "      maxSteps: 6\n      epochs: 3\n");
    const proc = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", s.cfg, "--run-dir", s.runDir], { stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "json" } });
    // Interrupt once a checkpoint exists (checkpointEvery: 1), twice as `bun run` forwards it,
    // the moment the first checkpoint appears, so it lands mid-training however fast the
    // machine is: a run that finishes first would not test resume, and fails here.
    const ck = join(s.sftDir, "checkpoint.bin");
    expect(await interruptAt(proc, ck, ["SIGINT", "SIGINT"])).toBe(true);
    const code = await proc.exited;
    expect(code).toBe(130);
    expect(existsSync(join(s.sftDir, "adapter.gguf"))).toBe(false); // interrupted before the end
    // A checkpoint that cannot be read is an error, never silently thrown away.
    const saved = readFileSync(ck);
    const broken = Buffer.from(saved);
    broken[broken.length - 1]! ^= 0xff;
    writeFileSync(ck, broken);
    const refused = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("checkpoint.bin");
    expect(readFileSync(ck).equals(broken)).toBe(true);
    writeFileSync(ck, saved);
    const again = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toContain("resumed from the checkpoint at step");
    const m = JSON.parse(readFileSync(join(s.runDir, "manifest.json"), "utf8"));
    const resumedAt = m.stages.sft.provenance.extra.sft.resumedAtStep;
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(6); // maxSteps: some steps were left to train after the resume
    // Same config and seed: the same bytes, interrupted or not (run ids and timings are in the manifest only).
    for (const f of ["adapter.gguf", "adapter.gguf.meta.json", "training-manifest.json", "lossCurve.jsonl"]) {
      expect(`${f} ${await sha256File(join(s.sftDir, f))}`).toBe(`${f} ${await sha256File(join(straight.sftDir, f))}`);
    }
  });
});
