// The dpo stage through the real CLI: a canned stage writes preference pairs (and their chosen
// responses for a real sft stage to train the starting adapter on), then dpo trains from that
// SFT adapter and, as the DPO-only baseline, from the bare base. Proves the artifacts (adapter
// loadable by llama.cpp, metrics curve, manifest), step 0 at exactly log 2, the reference
// cache, the QC refusal and its override, same bytes for the same seed, and a SIGKILL
// mid-training followed by a re-run ending with the same bytes as an uninterrupted run.
import { describe, expect, setDefaultTimeout, test } from "bun:test";

// Child runs, model loads and training on a shared 2-core box.
setDefaultTimeout(300_000);
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import { loadModel } from "../../native/index.ts";
import { preparePairs } from "../../plugins/dpo/data.ts";
import { DpoManifest } from "../../plugins/dpo/kinds.ts";
import type { PreferencePair } from "../../plugins/shared/kinds.ts";
import { cli, FIXTURE_PLUGINS, ROOT, tempDir, writeConfig } from "../helpers.ts";
import { patternPairs, tiny, tokenizer } from "./helpers.ts";

const OUTPUTS = ["adapter.gguf", "adapter.gguf.meta.json", "training-manifest.json", "metrics.jsonl"];

async function setup(opts: { from?: "sft" | "base"; failGate?: boolean; dpoExtra?: string } = {}) {
  const dir = tempDir("selftune-dpo-");
  const model = await tiny("qwen2");
  const cfg = writeConfig(dir, "run.yaml", `name: dpo-test
seed: 7
stages:
  - id: pairs
    plugin: ${FIXTURE_PLUGINS}/canned-pairs.ts
    gate: report
    config:
      pairs: ${JSON.stringify(patternPairs(12))}
      failGate: ${opts.failGate ?? false}
  - plugin: qc
    gate: report
  - plugin: sft
    config: { model: ${model}, lora: { rank: 4, alpha: 8 }, maxSteps: 2, microBatch: 2, gradAccum: 1, lr: 0.01, threads: 2, force: true }
  - plugin: dpo
    config:
      model: ${model}
      from: ${opts.from ?? "sft"}
      lora: { rank: 4, alpha: 8 }
      epochs: 2
      microBatch: 2
      gradAccum: 1
      lr: 0.005
      threads: 2
      checkpointEvery: 1
${opts.dpoExtra ?? ""}`);
  return { dir, cfg, runDir: join(dir, "run"), dpoDir: join(dir, "run", "dpo") };
}

const manifestOf = (dpoDir: string) => DpoManifest.parse(JSON.parse(readFileSync(join(dpoDir, "adapter.gguf.meta.json"), "utf8")));
const curveOf = (dpoDir: string) => readFileSync(join(dpoDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));

async function expectSameOutputs(a: string, b: string) {
  for (const f of OUTPUTS) expect(`${f} ${await sha256File(join(a, f))}`).toBe(`${f} ${await sha256File(join(b, f))}`);
}

// The uninterrupted run from the SFT adapter, which the other runs are compared with.
let straight: ReturnType<typeof setup> | null = null;
function fromSftRun() {
  straight ??= setup().then(async (s) => {
    const r = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    if (r.exitCode !== 0) console.log(r.stderr);
    expect(r.exitCode).toBe(0);
    return s;
  });
  return straight;
}

test("pair data: a rejected side may run on into a new turn (format violation), a chosen side may not", async () => {
  const tok = await tokenizer(await tiny("qwen2"));
  const pair = (id: string, chosen: string, rejected: string): PreferencePair => ({
    id, instructionId: `ins-${id}`, instruction: "Name a fruit.", chosen, rejected, source: "synthetic", chosenId: null, rejectedId: null,
    negativeKind: "format-violation", chosenMargin: null, rejectedMargin: null, marginGap: null, chosenTokens: 2, rejectedTokens: 9, seed: null,
  });
  const runOn = "An apple.\nEND\n\nInstruction: Name another fruit.\nResponse: A pear.";
  const p = preparePairs([pair("a", "An apple.", runOn), pair("b", "A pear.", "pear")], tok, { heldOut: 0, seed: 1 });
  expect(p.trainIds).toEqual(["a", "b"]);
  expect(p.train.offsets.length).toBe(5); // chosen 0, rejected 1, chosen 2, rejected 3
  expect(p.bySource).toEqual({ "synthetic/format-violation": 2 });
  expect(() => preparePairs([pair("c", runOn, "An apple.")], tok, { heldOut: 0, seed: 1 })).toThrow(/preference-pair c \(chosen\).*delimiter/);
});

describe("dpo plugin", () => {
  test("from the SFT adapter: adapter (llama.cpp loads it), metrics curve, manifest, reference cache; step 0 is log 2", async () => {
    const { dpoDir, runDir } = await fromSftRun();
    const meta = manifestOf(dpoDir);
    expect(meta.from).toBe("sft");
    expect(meta.startAdapter!.sha256).toBe(await sha256File(join(runDir, "sft", "adapter.gguf")));
    expect(meta.reference.useLora).toBe(true);
    expect(meta.lora).toMatchObject({ rank: 4, alpha: 8 }); // the SFT adapter's shape
    expect(meta.qc).toEqual({ stage: "pairs", passed: true, failedGates: [], forced: false });
    expect(meta.data).toMatchObject({ records: 12, pairs: 12, heldOut: 0, truncated: 0, bySource: { "best-of-n": 12 } });
    expect(meta.data.meanLengthDifference).toBeGreaterThan(0); // "Sure." makes chosen longer
    expect(meta.hyperparameters).toMatchObject({ beta: 0.1, loss: "sigmoid", effectiveBatch: 2 });
    expect(meta.training.steps).toBe(12);
    const curve = curveOf(dpoDir);
    expect(curve.map((c) => c.step)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    // The reference is the starting policy: the first step sees no difference from it.
    expect(Math.abs(curve[0].loss - Math.LN2)).toBeLessThanOrEqual(1e-12);
    expect([curve[0]["rewards/chosen"], curve[0]["rewards/rejected"], curve[0]["rewards/margins"], curve[0]["rewards/accuracies"]]).toEqual([0, 0, 0, 0]);
    for (const k of ["lr", "gradNorm", "rewards/margins", "rewards/accuracies"]) expect(typeof curve.at(-1)[k]).toBe("number");
    expect(curve.at(-1)["rewards/margins"]).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(dpoDir, "training-manifest.json"), "utf8"))).toEqual(meta);
    // Kept after completion, like sft's: an interrupt before the stage is recorded done resumes from it.
    expect(existsSync(join(dpoDir, "checkpoint.bin"))).toBe(true);
    expect(existsSync(join(dpoDir, meta.reference.cache))).toBe(true);
    const m = await loadModel(await tiny("qwen2"), { contextSize: 128, parallel: 1 });
    const a = await m.loadAdapter(join(dpoDir, "adapter.gguf"));
    expect(a.alpha).toBe(8);
    m.dispose();
  });

  test("the same config and seed again: the same bytes", async () => {
    const again = await setup();
    expect((await cli(["run", again.cfg, "--run-dir", again.runDir])).exitCode).toBe(0);
    await expectSameOutputs(again.dpoDir, (await fromSftRun()).dpoDir);
  });

  test("SIGKILL mid-training, then re-run: resumes from the checkpoint with the cached reference, same bytes", async () => {
    const s = await setup();
    const proc = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", s.cfg, "--run-dir", s.runDir], { stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
    const ck = join(s.dpoDir, "checkpoint.bin");
    for (let i = 0; i < 6000 && !existsSync(ck) && proc.exitCode === null; i++) await Bun.sleep(10);
    proc.kill("SIGKILL");
    const code = await proc.exited;
    if (code !== 0) {
      console.log(`killed: exit ${code}`);
      expect(existsSync(ck)).toBe(true);
      expect(existsSync(join(s.dpoDir, "reference.msgpack"))).toBe(true);
      expect(existsSync(join(s.dpoDir, "adapter.gguf"))).toBe(false);
      const again = await cli(["run", s.cfg, "--run-dir", s.runDir]);
      expect(again.exitCode).toBe(0);
      expect(again.stderr).toContain("resumed from the checkpoint at step");
      expect(again.stderr).toContain("reference log-probs reused from the cache");
      const m = JSON.parse(readFileSync(join(s.runDir, "manifest.json"), "utf8"));
      expect(m.stages.dpo.provenance.extra.dpo.resumedAtStep).toBeGreaterThan(0);
      expect(m.stages.dpo.provenance.extra.dpo.referenceReused).toBe(true);
    } else console.warn("dpo finished before SIGKILL; resume not exercised"); // rare on a fast box
    await expectSameOutputs(s.dpoDir, (await fromSftRun()).dpoDir);
  });

  test("the DPO-only baseline: a fresh LoRA on the bare base, against the bare base", async () => {
    const s = await setup({ from: "base" });
    const r = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(r.exitCode).toBe(0);
    const meta = manifestOf(s.dpoDir);
    expect(meta.from).toBe("base");
    expect(meta.startAdapter).toBeNull();
    expect(meta.reference.useLora).toBe(false);
    expect(meta.reference.fingerprint).not.toBe(manifestOf((await fromSftRun()).dpoDir).reference.fingerprint);
    const curve = curveOf(s.dpoDir);
    expect(Math.abs(curve[0].loss - Math.LN2)).toBeLessThanOrEqual(1e-12);
    expect(curve[0]["rewards/margins"]).toBe(0);
    expect(curve.at(-1)["rewards/margins"]).toBeGreaterThan(0);
    expect(await sha256File(join(s.dpoDir, "adapter.gguf"))).not.toBe(await sha256File(join((await fromSftRun()).dpoDir, "adapter.gguf")));
  });

  test("refuses pairs whose QC failed; force: true trains anyway and records it", async () => {
    const s = await setup({ failGate: true });
    const refused = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("refusing pairs whose QC did not pass (stage 'pairs', failed: pair-margin-gap)");
    expect(existsSync(join(s.dpoDir, "adapter.gguf"))).toBe(false);

    const forced = await setup({ failGate: true, dpoExtra: "      force: true\n" });
    const r = await cli(["run", forced.cfg, "--run-dir", s.runDir]); // the stages before dpo are reused
    expect(r.exitCode).toBe(0);
    expect(manifestOf(s.dpoDir).qc).toEqual({ stage: "pairs", passed: false, failedGates: ["pair-margin-gap"], forced: true });
    const m = JSON.parse(readFileSync(join(s.runDir, "manifest.json"), "utf8"));
    expect(m.stages.dpo.provenance.extra.dpo.qcForced).toBe(true);
  });
});
