// Kill a real run mid-write (SIGKILL, then Ctrl-C) and prove the re-run resumes
// after the last committed record, losing and duplicating none. Then fault
// injection (test/fault-injection.ts): kill real child runs at random points with random
// signals until enough kills have landed, and compare every artifact with an uninterrupted
// run — here the plugin and sharded kinds; the generating and training kinds are in
// test/e2e/fault-injection.test.ts.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { FAULT_SEED as SEED, faultInjection } from "../fault-injection.ts";
import { cli, FIXTURE_PLUGINS, ROOT, tempDir, writeConfig } from "../helpers.ts";

// Child runs on a shared 2-core box (the preload's default does not reach every file of a multi-file `bun test`).
setDefaultTimeout(300_000);

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

describe("fault injection: random kills of real runs end byte-identical to an uninterrupted run", () => {
  test("a plugin stage (README-style, one await per record) after a generating stage", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: fi\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/numbers.ts\n    config: { count: 400, batch: 20, delayMs: 1 }\n  - plugin: ${FIXTURE_PLUGINS}/readme-filter.ts\n    config: { commitEvery: 7, delayMs: 2 }\n`);
    const r = await faultInjection(cfg, ["numbers/numbers.jsonl", "readme-filter/kept.jsonl"], { kills: 20, seed: SEED, maxDelayMs: 1500 });
    console.log(`plugin stage: ${r.landed} kills, ${r.completed} completed runs (seed ${SEED})`);
  });

  for (const mode of ["in-process", "process"] as const) {
    test(`a sharded stage (${mode}): kills land in shards, mid-merge and in the stage after it`, async () => {
      const dir = tempDir();
      // The numbers fixture with a merge hook (counted.ts): kills also land in the hook, whose file must come out the same.
      const cfg = writeConfig(dir, "a.yaml", `name: fs\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/counted.ts\n    shards: 3\n    shardMode: ${mode}\n    config: { count: 30000, batch: 1000, delayMs: 15, minTotal: 30000 }\n  - plugin: ${FIXTURE_PLUGINS}/sum-gate.ts\n`);
      const r = await faultInjection(cfg, ["counted/numbers.jsonl", "counted/whole.json", "sum-gate/total.jsonl", "sum-gate/summary.txt"], { kills: 20, seed: SEED + (mode === "process" ? 1 : 0), maxDelayMs: mode === "process" ? 2500 : 1500 });
      console.log(`sharded stage (${mode}): ${r.landed} kills, ${r.completed} completed runs (seed ${SEED})`);
    });
  }
});
