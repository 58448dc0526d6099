// The generating stages through the real CLI on a tiny synthesized qwen2 model:
// byte-identical artifacts for equal seeds, records that satisfy the schemas and the
// spec's invariants, file:line for a bad input record, and scale mode's refusal
// without a passed pilot (and its use of the pilot's parameters, in shards).
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { INSTRUCTION_DEFAULTS, RESPONSE_DEFAULTS } from "../../plugins/generate/config.ts";
import { responseStopStrings } from "../../plugins/prompts/clean.ts";
import { Instruction, SftExample } from "../../plugins/shared/kinds.ts";
import { cli, tempDir } from "../helpers.ts";
import { expectOk, manifest, PASSING_QC, readJsonl, smallConfig } from "./generate-helpers.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

const strip = ({ _prov, ...r }: Record<string, unknown>) => r;
const shardExtra = (runDir: string, stage: string, i: number, n: number) =>
  JSON.parse(readFileSync(join(runDir, stage, "shards", `${i}-of-${n}`, "shard.json"), "utf8")).provenance.extra as Record<string, unknown>;

beforeAll(async () => {
  await tinyModel({ type: "f16" }); // synthesize once before the children race for it
});

describe("instructions and responses", () => {
  const dir = tempDir();
  const cfg = smallConfig(dir, "a.yaml");
  const runA = join(dir, "run-a");
  const runB = join(dir, "run-b");

  test("the same seed gives byte-identical artifacts in two run directories", async () => {
    const a = await cli(["run", cfg, "--run-dir", runA]);
    expect(a.stderr).not.toContain("error");
    expectOk(a);
    const b = await cli(["run", cfg, "--run-dir", runB]);
    expectOk(b);
    for (const f of ["load/model.jsonl", "instructions/instructions.jsonl", "responses/examples.jsonl"]) {
      const x = readFileSync(join(runA, f));
      expect(x.length).toBeGreaterThan(0);
      expect(readFileSync(join(runB, f)).equals(x)).toBe(true);
    }
  });

  test("records follow the schemas, the prompt settings and the spec's invariants", () => {
    const ins = readJsonl(join(runA, "instructions/instructions.jsonl")).map((r) => Instruction.parse(strip(r)));
    expect(ins.length).toBe(6);
    expect(ins.map((r) => r.id)).toEqual(ins.map((_, i) => `ins-0-${String(i).padStart(5, "0")}`));
    for (const r of ins) {
      expect(r.critic?.threshold).toBe(-1000);
      if (r.origin === "generated") {
        expect(r.fewShotIds.length).toBe(INSTRUCTION_DEFAULTS.k);
        expect(r.sampling).toEqual({ ...INSTRUCTION_DEFAULTS.sampling, maxTokens: 24 });
        expect(typeof r.seed).toBe("number");
      } else expect(r.seed).toBeNull();
    }
    const ex = readJsonl(join(runA, "responses/examples.jsonl")).map((r) => SftExample.parse(strip(r)));
    expect(ex.map((r) => r.instructionId)).toEqual(ins.map((r) => r.id));
    for (const r of ex) {
      expect(r.fewShotIds.length).toBe(RESPONSE_DEFAULTS.k);
      expect(r.sampling).toEqual({ ...RESPONSE_DEFAULTS.sampling, maxTokens: 12 });
      expect(r.generatedTokens).toBeLessThanOrEqual(12);
      // A token-limit hit is a generation the limit cut: 12 tokens, no stop string.
      if (r.hitMaxTokens) expect(r.generatedTokens).toBe(12);
      if (r.generatedTokens < 12) expect(r.hitMaxTokens).toBe(false);
      if (r.response.trim() === "") expect(r.critic).toBeNull();
      else expect(r.critic).not.toBeNull();
    }
    const m = manifest(runA);
    const extra = m.stages.responses!.provenance.extra;
    expect(extra.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(extra.stopStrings).toEqual(responseStopStrings(1));
    expect(extra.promptFormatsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(extra.critic).toMatchObject({ labels: { accept: " A", reject: " B" }, method: "single-token" });
    expect(m.stages.instructions!.provenance.extra.critic).toEqual(extra.critic);
    // No usable CUDA here: the critic scored with llama.cpp, and the manifest says why.
    expect(extra.scorer).toMatchObject({ scorer: "llama.cpp", requested: "auto", reason: expect.stringContaining("not usable") });
    expect(m.stages.instructions!.gates.map((g) => g.name)).toEqual(["instruction-yield"]);
  });

  test("a bad record in an input JSONL is reported with file:line", async () => {
    const file = join(runA, "instructions/instructions.jsonl");
    const lines = readFileSync(file, "utf8").split("\n");
    lines[2] = lines[2]!.replace(/"origin":"[a-z]+"/, '"origin":"invented"');
    writeFileSync(file, lines.join("\n"));
    // Taken as edited (the default would stop at the changed sha256 first), then read.
    const r = await cli(["run", cfg, "--run-dir", runA, "--only", "responses", "--on-changed", "rerun"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`${file}:3:`);
    expect(r.stderr).toContain("origin");
  });
});

describe("scale mode", () => {
  const dir = tempDir();
  const pilotDir = join(dir, "pilot");
  const failedPilotDir = join(dir, "failed-pilot");
  const scaleOpts = (pilot: string, extra = "") => ({
    name: "scale",
    instructionsStage: "    shards: 2\n",
    responsesStage: "    shards: 2\n",
    instructions: `      mode: scale\n      pilot: ${pilot}\n${extra}`,
    responses: `      mode: scale\n      pilot: ${pilot}\n`,
    responsesSampling: "",
    after: PASSING_QC,
  });

  beforeAll(async () => {
    const pilot = smallConfig(dir, "pilot.yaml", { name: "pilot", after: PASSING_QC, responsesSampling: "      sampling: { maxTokens: 10, temperature: 0.5 }\n" });
    expectOk((await cli(["run", pilot, "--run-dir", pilotDir])));
    const failed = smallConfig(dir, "failed.yaml", { name: "failed", after: "  - plugin: qc\n    gate: report\n" });
    expectOk((await cli(["run", failed, "--run-dir", failedPilotDir])));
  });

  test("refuses to start without a pilot manifest", async () => {
    const cfg = smallConfig(dir, "s1.yaml", scaleOpts(join(dir, "nowhere")));
    const r = await cli(["run", cfg, "--run-dir", join(dir, "s1")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("scale refuses to start: no pilot manifest");
  });

  test("refuses a pilot whose QC failed", async () => {
    const cfg = smallConfig(dir, "s2.yaml", scaleOpts(failedPilotDir));
    const r = await cli(["run", cfg, "--run-dir", join(dir, "s2")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("did not pass QC");
    expect(r.stderr).toContain("runaway-rate");
  });

  test("refuses parameters that differ from the pilot's", async () => {
    const cfg = smallConfig(dir, "s3.yaml", scaleOpts(pilotDir, "      k: 5\n"));
    const r = await cli(["run", cfg, "--run-dir", join(dir, "s3")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("differ from the pilot");
    expect(r.stderr).toContain("k (config 5, pilot 8)");
  });

  test("runs in shards with the pilot's parameters; QC over the merged whole", async () => {
    // The scale config repeats the pilot's own sampling for instructions (allowed: equal),
    // and sets none for responses: both come from the pilot.
    const cfg = smallConfig(dir, "s4.yaml", { ...scaleOpts(pilotDir), instructions: `      mode: scale\n      pilot: ${pilotDir}\n      count: 8\n` });
    const runDir = join(dir, "s4");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.stderr).not.toContain("error:");
    expectOk(r);
    const m = manifest(runDir);
    const p = manifest(pilotDir);
    for (const s of ["instructions", "responses"]) {
      for (const i of [0, 1]) expect(shardExtra(runDir, s, i, 2).parameters).toEqual(p.stages[s]!.provenance.extra.parameters);
      expect(shardExtra(runDir, s, 0, 2).pilot).toMatchObject({ runId: expect.stringContaining("pilot"), qcStage: "qc" });
    }
    expect((shardExtra(runDir, "responses", 1, 2).parameters as { sampling: { temperature: number } }).sampling.temperature).toBe(0.5);
    expect(m.stages.qc!.gates.every((g) => g.passed)).toBe(true);
    const ins = readJsonl(join(runDir, "instructions/instructions.jsonl"));
    expect(ins.length).toBe(8);
    expect(ins.filter((r) => String(r.id).startsWith("ins-0-")).length).toBe(4);
    expect(ins.filter((r) => String(r.id).startsWith("ins-1-")).length).toBe(4);
    const ex = readJsonl(join(runDir, "responses/examples.jsonl"));
    expect(new Set(ex.map((r) => r.id)).size).toBe(ex.length);
    const report = readJsonl(join(runDir, "qc/report.jsonl"))[0]!;
    expect(report.records).toBe(ex.length);
  });
});
