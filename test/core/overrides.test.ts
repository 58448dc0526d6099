// `--set key.path=value` on run and validate: values typed as YAML, stages by id or index,
// checked exactly as the file is with errors naming the override, recorded in the manifest,
// passed on to process-mode shards, and hashed: a changed override re-runs the stage it
// touches and no other.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../core/config.ts";
import type { RunManifest } from "../../core/provenance.ts";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";

const numbers = `${FIXTURE_PLUGINS}/numbers.ts`;
const sumGate = `${FIXTURE_PLUGINS}/sum-gate.ts`;
// A stage is addressed by its key (its id, else its plugin as written: a built-in's name) or its index.
const YAML = `name: ov\nstages:\n  - id: numbers\n    plugin: ${numbers}\n    config: { count: 10 }\n  - id: sum-gate\n    plugin: ${sumGate}\n  - id: b\n    plugin: ${numbers}\n`;
const manifest = (runDir: string): RunManifest => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));

function loadError(file: string, sets: string[]): string {
  try {
    loadConfig(file, sets);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("no config error");
}

describe("--set overrides", () => {
  test("values are YAML; a stage by its id, plugin name or index; missing mappings are made; later wins", () => {
    const cfg = writeConfig(tempDir(), "a.yaml", `${YAML}  - plugin: qc\n`);
    const sets = ["stages.b.config.count=3", "stages.0.config.batch=2", "seed=0x10", "description=''", "stages.1.config={max: 1e-4}", "stages.b.config.count=4", "stages.sum-gate.gate=report", "stages.qc.config.maxLeakage=2", "stages.qc.config.histogramMax=", "runsDir=[a, b]"];
    expect(loadError(cfg, sets)).toBe("--set runsDir=[a, b]: Invalid input: expected string, received array");
    const { config, overrides } = loadConfig(cfg, sets.slice(0, -1));
    expect(config.stages[2]!.config).toEqual({ count: 4 });
    expect(config.stages[0]!.config).toEqual({ count: 10, batch: 2 });
    expect(config.stages[1]).toMatchObject({ config: { max: 0.0001 }, gate: "report" });
    expect(config.stages[3]!.config).toEqual({ maxLeakage: 2, histogramMax: null });
    expect(config.seed).toBe(16);
    expect(config.description).toBe("");
    expect(overrides).toEqual(sets.slice(0, -1));
  });

  test("checked as the file is: errors name the override (exit 2), file errors keep their line", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", YAML);
    const v = async (...sets: string[]) => {
      const r = await cli(["validate", cfg, ...sets.flatMap((s) => ["--set", s])]);
      expect(r.exitCode).toBe(2);
      return r.stderr;
    };
    expect(await v("stages.b.config.count=abc")).toContain("--set stages.b.config.count=abc: Invalid input: expected number, received string");
    expect(await v("stages.b.config.cuont=3")).toContain("--set stages.b.config.cuont=3: unknown key 'cuont' (did you mean 'count'?");
    expect(await v("stages.1.config={max: x}")).toContain("--set stages.1.config={max: x}: stages[1].config.max: Invalid input: expected number, received string");
    expect(await v("stages.c.config.count=1")).toContain("--set stages.c.config.count=1: no stage 'c' (stages: numbers, sum-gate, b; or an index 0-2)");
    expect(await v("stages.7.gate=stop")).toContain("no stage '7'");
    expect(await v("seed")).toContain("--set seed: expected key.path=value");
    expect(await v("name.x=1")).toContain(`--set name.x=1: 'name' is "ov", not a mapping or a list`);
    expect(await v("stages.b.shards=two")).toContain("--set stages.b.shards=two: Invalid input: expected number");
    expect(await v("runsDir=[a")).toContain("--set runsDir=[a: the value is not YAML");
    expect(await v("extends=x.yaml")).toContain("--set extends=x.yaml: extends: is read before overrides apply");
    expect(await v("description=a: b")).toContain("--set description=a: b: Invalid input: expected string, received object");
    // A file's own error still names its line, with an override beside it.
    const bad = writeConfig(dir, "bad.yaml", YAML.replace("count: 10", "count: ten"));
    const r = await cli(["validate", bad, "--set", "stages.b.config.count=3"]);
    expect(r.stderr).toContain(`${bad}:5: stages[0].config.count: Invalid input: expected number`);
    const ok = await cli(["validate", cfg, "--set", "stages.b.config.count=3"]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain("valid, 3 stages (with --set stages.b.config.count=3)");
  });

  test("recorded in the manifest and hashed: a changed override re-runs the stage it touches, not others", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", YAML);
    const runDir = join(dir, "run");
    const run = (...sets: string[]) => cli(["run", cfg, "--run-dir", runDir, ...sets.flatMap((s) => ["--set", s])]);
    const started = (stderr: string) => [...stderr.matchAll(/stage '([^']+)' \(/g)].map((m) => m[1]);

    const first = await run("stages.sum-gate.config.max=100");
    expect(first.exitCode).toBe(0);
    expect(manifest(runDir).overrides).toEqual(["stages.sum-gate.config.max=100"]);
    expect(manifest(runDir).stages["sum-gate"]!.config).toEqual({ max: 100 });
    expect(started((await run("stages.sum-gate.config.max=100")).stderr)).toEqual([]);
    // The same value written in the file would be the same config: an override is no identity of its own.
    const changed = await run("stages.sum-gate.config.max=40");
    expect(changed.exitCode).toBe(3); // sum 45 > 40
    expect(started(changed.stderr)).toEqual(["sum-gate"]);
    const b = await run("stages.sum-gate.config.max=100", "stages.b.config.count=3");
    expect(started(b.stderr)).toEqual(["sum-gate", "b"]);
    expect(manifest(runDir).stages.b!.artifacts[0]!.records).toBe(3);
    expect(manifest(runDir).overrides).toEqual(["stages.sum-gate.config.max=100", "stages.b.config.count=3"]);
    // Dropping the overrides is a change back to the file's values.
    expect(started((await run()).stderr)).toEqual(["sum-gate", "b"]);
    expect(manifest(runDir).overrides).toEqual([]);
  });

  test("process-mode shards run with the parent's overrides", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: ovs\nstages:\n  - id: numbers\n    plugin: ${numbers}\n    shards: 2\n    shardMode: process\n    config: { count: 10 }\n`);
    const r = await cli(["run", cfg, "--run-dir", join(dir, "run"), "--set", "stages.numbers.config.count=6"]);
    expect(r.exitCode).toBe(0);
    expect(manifest(join(dir, "run")).stages.numbers!.artifacts[0]!.records).toBe(6);
  });
});
