// Optional inputs (optional() in a plugin's consumes): absent unless the config names a
// producer or the plugin says this config uses the slot; when wired, hashed into the inputs
// hash and re-checked before the stage is skipped, like a required input.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";

setDefaultTimeout(300_000);

const numbers = `${FIXTURE_PLUGINS}/numbers.ts`;
const maybe = `${FIXTURE_PLUGINS}/maybe-sum.ts`;
const manifest = (runDir: string) => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
const total = (runDir: string) => JSON.parse(readFileSync(join(runDir, "maybe-sum/total.jsonl"), "utf8"));

// Three producers of the same kind: 0..3 (sum 6), 0..4 (sum 10), 0..5 (sum 15).
const head = `stages:\n  - id: a\n    plugin: ${numbers}\n    config: { count: 4 }\n  - id: b\n    plugin: ${numbers}\n    config: { count: 5 }\n  - id: c\n    plugin: ${numbers}\n    config: { count: 6 }\n`;

describe("optional inputs", () => {
  test("an optional slot nobody names is absent; a required one takes the nearest producer", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: opt\n${head}  - plugin: ${maybe}\n`);
    expect((await cli(["run", cfg, "--run-dir", runDir])).exitCode).toBe(0);
    expect(total(runDir)).toMatchObject({ sum: 15, wired: ["numbers"] });
    expect(Object.keys(manifest(runDir).stages["maybe-sum"].inputs)).toEqual(["numbers"]);
  });

  test("inputs: wires an optional slot; wantedBy wires one by config; each changes the inputs hash", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const plain = writeConfig(dir, "a.yaml", `name: opt\n${head}  - plugin: ${maybe}\n`);
    expect((await cli(["run", plain, "--run-dir", runDir])).exitCode).toBe(0);
    const hash0 = manifest(runDir).stages["maybe-sum"].inputsHash;

    writeConfig(dir, "a.yaml", `name: opt\n${head}  - plugin: ${maybe}\n    inputs: { extra: a }\n`);
    const r = await cli(["run", plain, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("stage 'maybe-sum' (maybe-sum 1.0.0) started");
    expect(total(runDir)).toMatchObject({ sum: 15 + 6, wired: ["numbers", "extra"] });
    const st = manifest(runDir).stages["maybe-sum"];
    expect(st.inputs.extra.stage).toBe("a");
    expect(st.inputsHash).not.toBe(hash0);

    // useBonus: the plugin says this config uses `bonus`: wired to the nearest producer (c).
    writeConfig(dir, "a.yaml", `name: opt\n${head}  - plugin: ${maybe}\n    inputs: { extra: a }\n    config: { useBonus: true }\n`);
    expect((await cli(["run", plain, "--run-dir", runDir])).exitCode).toBe(0);
    expect(total(runDir)).toMatchObject({ sum: 15 + 6 + 15, wired: ["numbers", "extra", "bonus"] });
    expect(manifest(runDir).stages["maybe-sum"].inputs.bonus.stage).toBe("c");
    // Unchanged: skipped.
    expect((await cli(["run", plain, "--run-dir", runDir])).stderr).toContain("stage 'maybe-sum': unchanged, skipped");
  });

  test("a wired optional input is re-checked before the stage is skipped: an edit stops the run, rerun re-reads it", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: opt\n${head}  - plugin: ${maybe}\n    inputs: { extra: a }\n`);
    expect((await cli(["run", cfg, "--run-dir", runDir])).exitCode).toBe(0);
    const file = join(runDir, "a/numbers.jsonl");
    const lines = readFileSync(file, "utf8").trim().split("\n");
    writeFileSync(file, lines.slice(0, -1).join("\n") + "\n"); // drop n = 3
    const stop = await cli(["run", cfg, "--run-dir", runDir]);
    expect(stop.exitCode).toBe(1);
    expect(stop.stderr).toContain(`${file} was changed after stage 'a' recorded it`);
    const rerun = await cli(["run", cfg, "--run-dir", runDir, "--on-changed", "rerun"]);
    expect(rerun.exitCode).toBe(0);
    expect(rerun.stderr).toContain("stage 'maybe-sum' (maybe-sum 1.0.0) started");
    expect(total(runDir)).toMatchObject({ sum: 15 + 3 });
  });

  test("an optional slot the config uses with no producer, or an unknown slot, is a plan error naming the line", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: opt\nstages:\n  - plugin: ${numbers}\n  - plugin: ${maybe}\n    inputs: { extra: nope, bogus: x }\n`);
    const r = await cli(["run", cfg, "--run-dir", join(dir, "run")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("stage 'maybe-sum' consumes kind 'number' (slot 'extra') but no stage 'nope' before it produces it");
    expect(r.stderr).toContain("has no input slot 'bogus' (slots: numbers, extra (optional), bonus (optional))");
    expect(r.stderr).toContain(`${cfg}:5`);
  });
});
