// Every shipped config validates (`bun run selftune validate`, SELFTUNE_MODEL pointing at a
// synthesized model), and the ones for a real model cover the stages they claim: the pilot
// stage 1 to its QC gate; stage2-preference the pilot's stages (reused unchanged in the
// pilot's run directory) then sft, pairs, dpo, dpo-only, testset and the evaluator of all four
// variants; stage1-scale the scale generation and the same stage-2 stages.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../core/config.ts";
import { planRun, type PlannedStage } from "../../core/pipeline.ts";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { ROOT } from "../helpers.ts";

const CONFIGS = join(ROOT, "configs");
let model = "";

beforeAll(async () => {
  model = await tinyModel({ type: "f16" });
  process.env.SELFTUNE_MODEL = model; // for the in-process plans below
});

const plan = async (name: string) => planRun(loadConfig(join(CONFIGS, name)));
/** [stage id, plugin, shards] in run order. */
const stagesOf = (p: PlannedStage[]) => p.map((s) => [s.id, s.plugin.name, s.spec.shards] as const);
/** slot <- producing stage, for one stage. */
const wiring = (p: PlannedStage[], id: string) => Object.fromEntries(p.find((s) => s.id === id)!.inputs.map((w) => [w.slot, w.fromStage]));

const PILOT = [["load", "loader", 1], ["prompts", "prompts", 1], ["instructions", "instructions", 1], ["responses", "responses", 1], ["qc", "qc", 1]] as const;
const STAGE2 = [["sft", "sft", 1], ["pairs", "pairs", 1], ["dpo", "dpo", 1], ["dpo-only", "dpo", 1], ["testset", "testset", 1], ["evaluator", "evaluator", 1]] as const;

/** Stage 2's wiring: every stage reads the run's own stage-1 data and adapters, never a path. */
function expectStage2Wiring(p: PlannedStage[]) {
  expect(wiring(p, "sft")).toEqual({ examples: "responses", qc: "qc", model: "load" });
  expect(wiring(p, "pairs")).toEqual({ model: "load", examples: "responses", adapter: "sft" });
  expect(wiring(p, "dpo")).toEqual({ pairs: "pairs", adapter: "sft", model: "load" });
  expect(wiring(p, "dpo-only")).toEqual({ pairs: "pairs", model: "load" });
  expect(wiring(p, "evaluator")).toEqual({ tests: "testset", model: "load", sft: "sft", dpo: "dpo", "dpo-only": "dpo-only" });
  expect((p.find((s) => s.id === "dpo-only")!.config as { from: string }).from).toBe("base");
  expect(p.find((s) => s.id === "qc")!.spec.gate).toBe("stop");
}

describe("shipped configs", () => {
  test("every config in configs/ validates through `bun run selftune validate`", async () => {
    const files = readdirSync(CONFIGS).filter((f) => f.endsWith(".yaml"));
    expect(files).toEqual(expect.arrayContaining(["smoke.yaml", "stage1-pilot.yaml", "stage2-preference.yaml", "stage1-scale.yaml"]));
    for (const f of files) {
      const p = Bun.spawn(["bun", "run", "selftune", "validate", join(CONFIGS, f)], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_MODEL: model } });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect(`${f}: exit ${code} ${code ? err : ""}`).toBe(`${f}: exit 0 `);
      expect(out).toContain(`${f}: valid`);
    }
  });

  test("smoke: the whole pipeline on a synthesized model", async () => {
    const p = await plan("smoke.yaml");
    expect(p.map((s) => s.plugin.name)).toEqual(["loader", "prompts", "instructions", "responses", "qc", "sft", "pairs", "dpo", "dpo", "testset", "evaluator"]);
  });

  test("stage1-pilot: stage 1 up to the QC gate, which stops a failed pilot", async () => {
    const p = await plan("stage1-pilot.yaml");
    expect(stagesOf(p)).toEqual([...PILOT]);
    expect(p.at(-1)!.spec.gate).toBe("stop");
    expect((p[0]!.config as { model: string }).model).toBe(model);
  });

  test("stage2-preference: the pilot's stages, unchanged (so a passed pilot's run is reused), then stages 6-9", async () => {
    const pilot = await plan("stage1-pilot.yaml");
    const p = await plan("stage2-preference.yaml");
    expect(stagesOf(p)).toEqual([...PILOT, ...STAGE2]);
    // Same run directory and the same config hashes: the pilot's finished stages are skipped
    // there, and its QC gate (recorded) stops the run again if it failed.
    expect(loadConfig(join(CONFIGS, "stage2-preference.yaml")).config.name).toBe(loadConfig(join(CONFIGS, "stage1-pilot.yaml")).config.name);
    expect(p.slice(0, PILOT.length).map((s) => s.configHash)).toEqual(pilot.map((s) => s.configHash));
    expectStage2Wiring(p);
  });

  test("stage1-scale: sharded scale generation after a passed pilot, QC over the whole, then the same stage-2 stages", async () => {
    const stage2 = await plan("stage2-preference.yaml");
    const p = await plan("stage1-scale.yaml");
    expect(stagesOf(p)).toEqual([["load", "loader", 1], ["prompts", "prompts", 1], ["instructions", "instructions", 4], ["responses", "responses", 4], ["qc", "qc", 1], ...STAGE2]);
    expect(loadConfig(join(CONFIGS, "stage1-scale.yaml")).config.name).toBe("stage1-scale");
    for (const id of ["instructions", "responses"]) expect(p.find((s) => s.id === id)!.config).toMatchObject({ mode: "scale", pilot: "runs/stage1-pilot" });
    expectStage2Wiring(p);
    // Stage 2 as in stage2-preference.yaml, except the pairs gate's size for scale data.
    for (const id of ["sft", "dpo", "dpo-only", "testset", "evaluator"]) expect(p.find((s) => s.id === id)!.configHash).toBe(stage2.find((s) => s.id === id)!.configHash);
    expect((p.find((s) => s.id === "pairs")!.config as { qc: { minPairs: number } }).qc.minPairs).toBe(5000);
    expect((stage2.find((s) => s.id === "pairs")!.config as { qc: { minPairs: number } }).qc.minPairs).toBe(100);
  });
});
