// One run per run directory: a second is refused naming the holder; a dead holder's
// lock is taken over; a second SIGINT (bun run forwards Ctrl-C) never cuts a stage's
// clean stop short.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquireLock, LockedError } from "../../core/run-lock.ts";
import { cli, FIXTURE_PLUGINS, ROOT, tempDir, writeConfig } from "../helpers.ts";

// Child runs on a shared 2-core box (the preload's default does not reach every file of a multi-file `bun test`).
setDefaultTimeout(300_000);

function start(args: string[]) {
  return Bun.spawn(["bun", join(ROOT, "core/cli.ts"), ...args], { stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
}

async function waitFor(cond: () => boolean, what: string) {
  for (let i = 0; i < 3000 && !cond(); i++) await Bun.sleep(10);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

describe("run directory lock", () => {
  test("a second run on a directory in use is refused, naming the holder; a dead holder's lock is taken over", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    // The holder runs until it is killed.
    const holding = writeConfig(dir, "hold.yaml", `name: lk\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/slow-stop.ts\n`);
    const cfg = writeConfig(dir, "a.yaml", `name: lk\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/numbers.ts\n    config: { count: 10 }\n`);
    const first = start(["run", holding, "--run-dir", runDir]);
    await waitFor(() => existsSync(join(runDir, "slow-stop/started.txt")), "the first run to start");
    const lock = JSON.parse(readFileSync(join(runDir, ".lock"), "utf8"));
    expect(lock).toMatchObject({ pid: first.pid, host: hostname() });
    expect(Date.parse(lock.startedAt)).toBeGreaterThan(Date.now() - 60_000);
    const second = await cli(["run", cfg, "--run-dir", runDir]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(`is held by pid ${first.pid} on ${hostname()} since ${lock.startedAt}`);
    const shard = await cli(["run", cfg, "--run-dir", runDir, "--only", "numbers", "--shard", "0/1"]);
    expect(shard.stderr).toContain(`is held by pid ${first.pid}`);

    first.kill("SIGKILL");
    await first.exited;
    expect(existsSync(join(runDir, ".lock"))).toBe(true);
    const third = await cli(["run", cfg, "--run-dir", runDir]);
    expect(third.exitCode).toBe(0);
    expect(third.stderr).toContain(`taking over the stale lock of ${runDir} (pid ${first.pid}`);
    expect(existsSync(join(runDir, ".lock"))).toBe(false);
  });

  test("acquire / release / stale takeover", async () => {
    const path = join(tempDir(), ".lock");
    const a = await acquireLock(path);
    const err = await acquireLock(path).catch((e) => e);
    expect(err).toBeInstanceOf(LockedError);
    a.release();
    // A dead pid on this host: stale.
    writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), startedAt: "x", token: "t", command: "c", parentPid: null }));
    const taken: number[] = [];
    const b = await acquireLock(path, { onTakeover: (h) => taken.push(h.pid) });
    expect(taken).toEqual([2 ** 22 + 12345]);
    b.release();
    expect(existsSync(path)).toBe(false);
  });
});

describe("signals", () => {
  test("a second SIGINT waits for the running stage to stop cleanly and save its state", async () => {
    const dir = tempDir();
    const runDir = join(dir, "run");
    const cfg = writeConfig(dir, "a.yaml", `name: sg\nstages:\n  - plugin: ${FIXTURE_PLUGINS}/slow-stop.ts\n    config: { saveMs: 600 }\n`);
    const child = start(["run", cfg, "--run-dir", runDir]);
    await waitFor(() => existsSync(join(runDir, "slow-stop/started.txt")), "the stage to start");
    child.kill("SIGINT");
    await Bun.sleep(20);
    child.kill("SIGINT");
    child.kill("SIGTERM");
    expect(await child.exited).toBe(130);
    expect(existsSync(join(runDir, "slow-stop/saved.txt"))).toBe(true);
    expect(JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).stages["slow-stop"].status).toBe("interrupted");
  });
});
