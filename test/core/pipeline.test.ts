import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";
import type { RunManifest } from "../../core/provenance.ts";

const numbers = `${FIXTURE_PLUGINS}/numbers.ts`;
const sumGate = `${FIXTURE_PLUGINS}/sum-gate.ts`;

function manifest(runDir: string): RunManifest {
  return JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
}

function lines(file: string): { n: number }[] {
  return readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

describe("pipeline", () => {
  test("a user plugin named by relative path runs and its records carry provenance", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    writeFileSync(join(dir, "my-plugin.ts"), `export { default } from ${JSON.stringify(numbers)};\n`);
    const cfg = writeConfig(dir, "a.yaml", `name: userplug\nstages:\n  - plugin: ./my-plugin.ts\n    config: { count: 7 }\n`);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    const m = manifest(runDir);
    const st = m.stages.numbers!;
    expect(st.status).toBe("done");
    expect(st.artifacts[0]!.records).toBe(7);
    const rec = JSON.parse(readFileSync(join(runDir, "numbers/numbers.jsonl"), "utf8").split("\n")[0]!);
    expect(rec._prov).toBe(`${m.name}/numbers`);
    expect(st.provenance.git.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(m.environment.cpu.logicalCores).toBeGreaterThan(0);
    // the recorded hash is the file's hash
    const hash = new Bun.CryptoHasher("sha256").update(readFileSync(join(runDir, "numbers/numbers.jsonl"))).digest("hex");
    expect(st.artifacts[0]!.sha256).toBe(hash);
  });

  test("an input kind that no upstream stage produces is rejected before anything runs", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: x\nstages:\n  - plugin: ${sumGate}\n`);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("consumes kind 'number'");
    expect(r.stderr).toContain(`${cfg}:3`);
    expect(existsSync(runDir)).toBe(false);
  });

  test("a failed gate stops the run with exit 3 and a summary; gate: report goes on", async () => {
    const dir = tempDir();
    const stop = writeConfig(dir, "stop.yaml", `name: g\nstages:\n  - plugin: ${numbers}\n    config: { count: 10 }\n  - plugin: ${sumGate}\n    config: { max: 10 }\n  - id: after\n    plugin: ${numbers}\n`);
    const r = await cli(["run", stop, "--run-dir", join(dir, "r1")]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("max-sum failed (sum 45 > 10)");
    expect(r.stdout).toContain("gate max-sum: FAIL");
    expect(manifest(join(dir, "r1")).stages.after).toBeUndefined();

    const report = writeConfig(dir, "report.yaml", `name: g\nstages:\n  - plugin: ${numbers}\n    config: { count: 10 }\n  - plugin: ${sumGate}\n    config: { max: 10 }\n    gate: report\n  - id: after\n    plugin: ${numbers}\n`);
    const r2 = await cli(["run", report, "--run-dir", join(dir, "r2")]);
    expect(r2.exitCode).toBe(0);
    expect(manifest(join(dir, "r2")).stages.after!.status).toBe("done");
  });

  test("unchanged stages are skipped; a config change re-runs the stage and those after it", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const body = (count: number) => `name: s\nstages:\n  - plugin: ${numbers}\n    config: { count: ${count} }\n  - plugin: ${sumGate}\n`;
    const cfg = writeConfig(dir, "a.yaml", body(4));
    expect((await cli(["run", cfg, "--run-dir", runDir])).exitCode).toBe(0);
    const first = manifest(runDir);
    const again = await cli(["run", cfg, "--run-dir", runDir]);
    expect(again.stderr).toContain("stage 'numbers': unchanged, skipped");
    expect(again.stderr).toContain("stage 'sum-gate': unchanged, skipped");
    expect(manifest(runDir).stages["sum-gate"]!.startedAt).toBe(first.stages["sum-gate"]!.startedAt);
    writeConfig(dir, "a.yaml", body(6));
    const changed = await cli(["run", cfg, "--run-dir", runDir]);
    expect(changed.stderr).not.toContain("skipped");
    expect(lines(join(runDir, "sum-gate/total.jsonl"))[0]).toMatchObject({ sum: 15, count: 6 });
    expect(manifest(runDir).runId).toBe(first.runId);
  });

  test("--only and --from run the named stages", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: o\nstages:\n  - plugin: ${numbers}\n  - plugin: ${sumGate}\n`);
    const early = await cli(["run", cfg, "--run-dir", runDir, "--only", "sum-gate"]);
    expect(early.exitCode).toBe(1);
    expect(early.stderr).toContain("has not finished");
    expect((await cli(["run", cfg, "--run-dir", runDir, "--only", "numbers"])).exitCode).toBe(0);
    expect(manifest(runDir).stages["sum-gate"]).toBeUndefined();
    const from = await cli(["run", cfg, "--run-dir", runDir, "--from", "sum-gate"]);
    expect(from.exitCode).toBe(0);
    expect(from.stderr).not.toContain("'numbers'");
    expect(manifest(runDir).stages["sum-gate"]!.status).toBe("done");
  });

  for (const mode of ["in-process", "process"] as const) {
    test(`shards (${mode}) merge in shard order with every record exactly once`, async () => {
      const dir = tempDir();
      const runDir = join(dir, "run");
      const cfg = writeConfig(dir, "a.yaml", `name: sh\nstages:\n  - plugin: ${numbers}\n    shards: 3\n    shardMode: ${mode}\n    config: { count: 20, batch: 3 }\n  - plugin: ${sumGate}\n`);
      const r = await cli(["run", cfg, "--run-dir", runDir]);
      expect(r.exitCode).toBe(0);
      const ns = lines(join(runDir, "numbers/numbers.jsonl")).map((x) => x.n);
      const expected = [0, 1, 2].flatMap((s) => Array.from({ length: 20 }, (_, i) => i).filter((i) => i % 3 === s));
      expect(ns).toEqual(expected);
      expect(lines(join(runDir, "sum-gate/total.jsonl"))[0]).toMatchObject({ sum: 190, count: 20 });
    });
  }

  test("a shard can run alone with --shard i/N; the plain run then merges", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: sh2\nstages:\n  - plugin: ${numbers}\n    shards: 2\n    config: { count: 8 }\n`);
    expect((await cli(["run", cfg, "--run-dir", runDir, "--only", "numbers", "--shard", "1/2"])).exitCode).toBe(0);
    expect(existsSync(join(runDir, "numbers/shards/1-of-2/numbers.jsonl"))).toBe(true);
    expect(existsSync(join(runDir, "numbers/shards/0-of-2/numbers.jsonl"))).toBe(false);
    expect((await cli(["run", cfg, "--run-dir", runDir])).exitCode).toBe(0);
    expect(lines(join(runDir, "numbers/numbers.jsonl")).map((x) => x.n)).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
  });

  test("validate checks without running; inspect prints the manifest; plugins lists JSON Schema", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: v\nstages:\n  - plugin: ${numbers}\n  - plugin: ${sumGate}\n`);
    const v = await cli(["validate", cfg]);
    expect(v.exitCode).toBe(0);
    expect(v.stdout).toContain("valid, 2 stages");
    expect(existsSync(join(dir, "runs"))).toBe(false);
    await cli(["run", cfg, "--run-dir", runDir]);
    const i = await cli(["inspect", runDir]);
    expect(i.stdout).toContain("numbers.jsonl");
    expect(i.stdout).toMatch(/sha256 [0-9a-f]{12}/);
    const p = await cli(["plugins", numbers]);
    const schema = JSON.parse(p.stdout).config;
    expect(schema.properties.count.type).toBe("integer");
  });

  test("progress is reported as JSON lines on stdout when not on a TTY", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: p\nstages:\n  - plugin: ${numbers}\n    config: { count: 6 }\n`);
    const r = await cli(["run", cfg, "--run-dir", join(dir, "run")], { SELFTUNE_PROGRESS: "" });
    const events = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(events.at(-1)).toMatchObject({ event: "progress", stage: "numbers", done: 6, total: 6 });
  });
});
