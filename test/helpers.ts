// Shared test helpers: temp dirs, writing configs, running the CLI as a child process.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..");
export const FIXTURE_PLUGINS = join(ROOT, "test/fixtures/plugins");

export function tempDir(prefix = "selftune-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(dir: string, name: string, yaml: string): string {
  const p = join(dir, name);
  writeFileSync(p, yaml);
  return p;
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the CLI as a child process (in `cwd`, default this process's directory). Progress is off
 * unless `env` asks for it: human lines on stderr, a run's summary on stdout (with
 * SELFTUNE_PROGRESS=json, stdout carries the JSON progress and the summary goes to stderr).
 */
export async function cli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliResult> {
  const proc = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off", ...env } });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

/**
 * Interrupt a running child at a known point however fast the machine is: wait (up to
 * `timeoutMs`) for `marker` to exist, freeze the child (SIGSTOP), deliver `signals`, and let
 * it go on (SIGCONT), so they land right after the marker appeared. Returns whether the
 * marker existed when the child was frozen: a run that got nowhere, or finished first, fails
 * the caller's check of it instead of passing without testing the interrupt.
 */
export async function interruptAt(child: { kill(signal?: NodeJS.Signals): void }, marker: string, signals: NodeJS.Signals[] = ["SIGINT"], timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(marker) && Date.now() < deadline) await Bun.sleep(2);
  child.kill("SIGSTOP");
  const reached = existsSync(marker);
  for (const s of signals) child.kill(s);
  child.kill("SIGCONT");
  return reached;
}
