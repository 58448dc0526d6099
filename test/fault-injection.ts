// Fault injection for the resume tests: run a config uninterrupted once, then again and
// again, each time killed at a random point with a random signal, until enough kills have
// landed in a running process; whenever a run completes, its artifacts must equal the
// uninterrupted run's byte for byte, and a fresh chain starts.
//
// Kills land in the process a user would hit: the CLI itself (`bun core/cli.ts`) or, for a
// share of the runs, the `bun run selftune` wrapper a user types. There Ctrl-C is a SIGINT
// to the whole process group (the terminal's), so the CLI gets it twice (once from the
// terminal, once forwarded by the wrapper); "SIGINT twice" and SIGTERM go to the wrapper's
// pid and are forwarded; SIGKILL takes the whole group (a closed terminal, the OOM killer)
// or, half the time, the wrapper alone: its CLI then goes on by itself (holding the run
// lock), and the next run starts once it has gone — its files must still be right.
import { expect } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../core/artifacts.ts";
import { mulberry32 } from "../native/gguf/random.ts";
import { cli, ROOT, tempDir } from "./helpers.ts";

// As a user interrupts: Ctrl-C, Ctrl-C under `bun run` (the signal arrives twice), SIGTERM, SIGKILL.
export const FAULTS = ["SIGINT", "SIGINT twice", "SIGTERM", "SIGKILL"] as const;
export const FAULT_SEED = Number(process.env.SELFTUNE_FAULT_SEED ?? 20260512);

export async function hashes(runDir: string, files: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of files) out[f] = existsSync(join(runDir, f)) ? await sha256File(join(runDir, f)) : "missing";
  return out;
}

export interface FaultOptions<S> {
  kills: number;
  seed: number;
  /** The kill comes this long (at most, uniformly) after the delay starts. */
  maxDelayMs: number;
  /** The delay starts at the first stderr line matching this (real progress: a stage that
   *  runs), or at the exit; without it, at the spawn. */
  after?: RegExp;
  /** Share of runs started through `bun run selftune` and signalled as a terminal would. */
  wrapperShare?: number;
  /** Called before each run and after it (with what the first call returned). */
  observe?: { before(runDir: string): S; after(runDir: string, before: S, run: { code: number; stderr: string; killed: boolean }): void };
}

interface Child {
  pid: number;
  exited: Promise<number>;
  stderr: () => string;
  /** Resolves at the first stderr line matching `re`, or at exit. */
  reached: (re: RegExp) => Promise<void>;
}

function spawn(cfg: string, runDir: string, wrapper: boolean): Child {
  const cmd = wrapper ? ["setsid", "bun", "run", "selftune", "run", cfg, "--run-dir", runDir] : ["bun", join(ROOT, "core/cli.ts"), "run", cfg, "--run-dir", runDir];
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
  let text = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const pump = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      text += dec.decode(chunk, { stream: true });
      for (const w of waiters.splice(0)) (w.re.test(text) ? w.resolve : () => waiters.push(w))();
    }
  })();
  const exited = proc.exited.then(async (code) => {
    await pump;
    for (const w of waiters.splice(0)) w.resolve();
    return code;
  });
  return {
    pid: proc.pid,
    exited,
    stderr: () => text,
    reached: (re) => (re.test(text) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ re, resolve }))),
  };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function signal(child: Child, fault: (typeof FAULTS)[number], wrapper: boolean, alone: boolean) {
  const to = (sig: NodeJS.Signals, group: boolean) => {
    try {
      process.kill(group ? -child.pid : child.pid, sig);
    } catch {} // it exited in between
  };
  if (fault === "SIGINT twice") {
    to("SIGINT", false);
    await Bun.sleep(2);
    to("SIGINT", false);
  } else to(fault, wrapper && (fault === "SIGINT" || (fault === "SIGKILL" && !alone)));
}

export interface FaultResult {
  landed: number;
  completed: number;
  /** Kills that landed in the wrapper's process group. */
  wrapperKills: number;
  /** Kills by the stage that had last started when they landed ("startup": none yet). */
  where: Record<string, number>;
  log: string[];
}

export async function faultInjection<S>(cfg: string, files: string[], o: FaultOptions<S>): Promise<FaultResult> {
  const dir = tempDir();
  const ref = await cli(["run", cfg, "--run-dir", join(dir, "ref")]);
  if (ref.exitCode !== 0) throw new Error(`the uninterrupted run failed:\n${ref.stderr}`);
  const want = await hashes(join(dir, "ref"), files);
  const random = mulberry32(o.seed); // the kill schedule is reproducible from its seed
  const log: string[] = [];
  let landed = 0, completed = 0, chain = 0, wrapperKills = 0;
  const where: Record<string, number> = {};
  let runDir = join(dir, `chain-${chain}`);
  const check = async () => {
    expect({ log, files: await hashes(runDir, files) }).toEqual({ log, files: want });
    completed++;
    runDir = join(dir, `chain-${++chain}`);
  };
  while (landed < o.kills) {
    // (No draw without wrappers: the plugin and sharded tests keep their kill schedules.)
    const wrapper = o.wrapperShare ? random() < o.wrapperShare : false;
    const delay = Math.round(random() * o.maxDelayMs);
    const fault = FAULTS[Math.floor(random() * FAULTS.length)]!;
    // The wrapper's SIGKILL: to its group, or (half the time) to the wrapper alone, whose
    // CLI then goes on by itself and is waited for like a run still holding the lock.
    const alone = wrapper && fault === "SIGKILL" && random() < 0.5;
    const state = o.observe?.before(runDir) as S;
    const child = spawn(cfg, runDir, wrapper);
    const finished = child.exited.then(() => true);
    await Promise.race([finished, o.after ? child.reached(o.after) : Promise.resolve()]);
    const done = await Promise.race([finished, Bun.sleep(delay).then(() => false)]);
    if (!done) await signal(child, fault, wrapper, alone);
    const code = await child.exited;
    // The wrapper's group must be gone before the next run (it would hold the run lock).
    for (let i = 0; wrapper && groupAlive(child.pid) && i < 2400; i++) await Bun.sleep(25);
    const what = `${wrapper ? "bun run selftune" : "cli"}, ${delay} ms`;
    const faultName = alone ? "SIGKILL (wrapper alone)" : fault;
    o.observe?.after(runDir, state, { code, stderr: child.stderr(), killed: !done });
    if (done && code === 0) {
      log.push(`${what}: finished first`);
      await check();
      continue;
    }
    log.push(`${what}: ${faultName} -> exit ${code}`);
    // 130: stopped cleanly; a SIGKILL shows as the signal. Never an error.
    if (code === 1 || code === 2) throw new Error(`chain ${chain}, ${log.at(-1)}: the run failed:\n${child.stderr()}`);
    if (done) throw new Error(`chain ${chain}, ${log.at(-1)}: exited ${code} before the signal:\n${child.stderr()}`);
    landed++;
    if (wrapper) wrapperKills++;
    const stage = [...child.stderr().matchAll(/stage '([\w-]+)' \(/g)].at(-1)?.[1] ?? "startup";
    where[stage] = (where[stage] ?? 0) + 1;
  }
  const state = o.observe?.before(runDir) as S;
  const last = await cli(["run", cfg, "--run-dir", runDir]);
  if (last.exitCode !== 0) throw new Error(`the last run of chain ${chain} failed:\n${last.stderr}`);
  o.observe?.after(runDir, state, { code: 0, stderr: last.stderr, killed: false });
  await check();
  return { landed, completed, wrapperKills, where, log };
}
