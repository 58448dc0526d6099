// Kill a real run mid-write (SIGKILL, then Ctrl-C) and prove the re-run resumes
// after the last committed record, losing and duplicating none.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cli, FIXTURE_PLUGINS, ROOT, tempDir, writeConfig } from "../helpers.ts";

const COUNT = 3000;

function start(cfg: string, runDir: string) {
  return Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", cfg, "--run-dir", runDir], { stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
}

async function waitForCommits(commitFile: string, atLeast: number) {
  for (let i = 0; i < 400; i++) {
    if (existsSync(commitFile)) {
      try {
        if (JSON.parse(readFileSync(commitFile, "utf8")).records >= atLeast) return;
      } catch {} // replaced atomically, but tolerate a racing read
    }
    await Bun.sleep(25);
  }
  throw new Error("the child never committed");
}

function assertExactlyOnce(runDir: string) {
  const ns = readFileSync(join(runDir, "numbers/numbers.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).n as number);
  expect(ns.length).toBe(COUNT);
  expect(ns).toEqual(Array.from({ length: COUNT }, (_, i) => i));
}

describe("crash safety", () => {
  test("SIGKILL mid-write leaves no torn file and the re-run resumes exactly", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: crash\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/numbers.ts\n    config: { count: ${COUNT}, batch: 7, delayMs: 2 }\n`);
    const child = start(cfg, runDir);
    await waitForCommits(join(runDir, "numbers/numbers.jsonl.commit.json"), 100);
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    // The final artifact never exists half-written; only the partial does.
    expect(existsSync(join(runDir, "numbers/numbers.jsonl"))).toBe(false);
    const committed = JSON.parse(readFileSync(join(runDir, "numbers/numbers.jsonl.commit.json"), "utf8")).records;
    expect(committed).toBeLessThan(COUNT);

    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("resuming an interrupted attempt");
    assertExactlyOnce(runDir);
  });

  test("Ctrl-C stops between batches with exit 130; the store stays consistent and resumes", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: int\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/numbers.ts\n    config: { count: ${COUNT}, batch: 7, delayMs: 2 }\n`);
    const child = start(cfg, runDir);
    await waitForCommits(join(runDir, "numbers/numbers.jsonl.commit.json"), 50);
    child.kill("SIGINT");
    expect(await child.exited).toBe(130);
    const m = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
    expect(m.stages.numbers.status).toBe("interrupted");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expect(r.exitCode).toBe(0);
    assertExactlyOnce(runDir);
  });
});
