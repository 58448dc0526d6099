// A finished stage is re-checked before it is skipped or read: size and mtime, then
// sha256. A changed file stops the run naming it (default) or, with onChanged: rerun,
// is taken as it is and the stages that read it run again.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";

// Child runs on a shared 2-core box (the preload's default does not reach every file of a multi-file `bun test`).
setDefaultTimeout(300_000);

const numbers = `${FIXTURE_PLUGINS}/numbers.ts`;
const sumGate = `${FIXTURE_PLUGINS}/sum-gate.ts`;
const manifest = (runDir: string) => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
const total = (runDir: string) => JSON.parse(readFileSync(join(runDir, "sum-gate/total.jsonl"), "utf8"));

async function finishedRun(onChanged = "") {
  const dir = tempDir();
  const runDir = join(dir, "run");
  const cfg = writeConfig(dir, "a.yaml", `name: ic\n${onChanged}stages:\n  - plugin: ${numbers}\n    config: { count: 10 }\n  - plugin: ${sumGate}\n`);
  expect((await cli(["run", cfg, "--run-dir", runDir])).exitCode).toBe(0);
  return { cfg, runDir, file: join(runDir, "numbers/numbers.jsonl") };
}

/** Delete the record n = 9: a hand edit of a committed artifact. */
function dropLastRecord(file: string) {
  const lines = readFileSync(file, "utf8").trim().split("\n");
  writeFileSync(file, lines.slice(0, -1).join("\n") + "\n");
}

describe("recorded files are re-checked before a stage is trusted", () => {
  test("a hand-edited artifact stops the run by default, naming the file", async () => {
    const { cfg, runDir, file } = await finishedRun();
    dropLastRecord(file);
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`${file} was changed after stage 'numbers' recorded it`);
    expect(r.stderr).toContain("--on-changed rerun");
    expect(total(runDir)).toMatchObject({ sum: 45, count: 10 });
  });

  test("--on-changed rerun takes the edited file and re-runs the stages that read it", async () => {
    const { cfg, runDir, file } = await finishedRun();
    const before = manifest(runDir).stages.numbers;
    dropLastRecord(file);
    const r = await cli(["run", cfg, "--run-dir", runDir, "--on-changed", "rerun"]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("stage 'numbers': unchanged, skipped");
    expect(r.stderr).toContain("stage 'sum-gate' (sum-gate 1.0.0) started");
    expect(total(runDir)).toMatchObject({ sum: 36, count: 9 });
    const after = manifest(runDir).stages.numbers;
    expect(after.startedAt).toBe(before.startedAt);
    expect(after.artifacts[0]).toMatchObject({ records: 9, sha256: new Bun.CryptoHasher("sha256").update(readFileSync(file)).digest("hex") });
    expect(after.changedOnDisk).toEqual(["numbers.jsonl"]);
    // The config key does the same as the flag; the run is then consistent again.
    expect((await cli(["run", cfg, "--run-dir", runDir])).stderr).toContain("stage 'sum-gate': unchanged, skipped");
  });

  test("onChanged: rerun in the config; an edited extra file is taken too", async () => {
    const { cfg, runDir } = await finishedRun("onChanged: rerun\n");
    writeFileSync(join(runDir, "sum-gate/summary.txt"), "sum=edited\n");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    expect(manifest(runDir).stages["sum-gate"].changedOnDisk).toEqual(["summary.txt"]);
  });

  test("--only checks the files it reads from earlier stages", async () => {
    const { cfg, runDir, file } = await finishedRun();
    dropLastRecord(file);
    const r = await cli(["run", cfg, "--run-dir", runDir, "--only", "sum-gate"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`${file} was changed`);
  });

  test("a touched but unchanged file is re-hashed once and accepted; a deleted one is produced again", async () => {
    const { cfg, runDir, file } = await finishedRun();
    const recorded = manifest(runDir).stages.numbers.artifacts[0].mtimeMs;
    utimesSync(file, new Date(), new Date(recorded + 5000));
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("stage 'numbers': unchanged, skipped");
    expect(manifest(runDir).stages.numbers.artifacts[0].mtimeMs).toBeCloseTo(recorded + 5000, -1);
    rmSync(file);
    const again = await cli(["run", cfg, "--run-dir", runDir]);
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toContain("stage 'numbers' (numbers 1.0.0) started");
    expect(again.stderr).toContain("stage 'sum-gate': unchanged, skipped"); // same bytes again
  });
});
