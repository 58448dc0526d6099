// Shared test helpers: temp dirs, writing configs, running the CLI as a child process.
import { mkdtempSync, writeFileSync } from "node:fs";
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
