// Provenance: what produced an artifact, on what, from which code and config.
import { cpus, totalmem, platform, release, arch, hostname } from "node:os";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ArtifactInfo } from "./artifacts.ts";
import type { GateResult } from "./plugin.ts";

/** The project root (where package.json lives). */
export const PROJECT_ROOT = dirname(import.meta.dir);

/** JSON with sorted keys, so equal configs hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

export function sha256(data: string | Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

export function hashConfig(value: unknown): string {
  return sha256(canonicalJson(value));
}

export interface GitInfo {
  commit: string | null;
  dirty: boolean;
}

export function gitInfo(cwd = PROJECT_ROOT): GitInfo {
  const run = (args: string[]) => Bun.spawnSync(["git", ...args], { cwd, stdout: "pipe", stderr: "ignore" });
  const head = run(["rev-parse", "HEAD"]);
  if (head.exitCode !== 0) return { commit: null, dirty: false };
  const status = run(["status", "--porcelain", "--untracked-files=no"]);
  return { commit: head.stdout.toString().trim(), dirty: status.stdout.toString().trim().length > 0 };
}

export interface Environment {
  bun: string;
  os: string;
  arch: string;
  host: string;
  cpu: { model: string; logicalCores: number };
  memoryBytes: number;
  gpus: { name: string; driver: string; memoryMiB: number }[];
}

function detectGpus(): Environment["gpus"] {
  try {
    const r = Bun.spawnSync(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"], { stdout: "pipe", stderr: "ignore" });
    if (r.exitCode !== 0) return [];
    return r.stdout
      .toString()
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [name = "", driver = "", mem = "0"] = line.split(",").map((s) => s.trim());
        return { name, driver, memoryMiB: Number(mem) };
      });
  } catch {
    return []; // no nvidia-smi on this machine
  }
}

export function environment(): Environment {
  const c = cpus();
  return {
    bun: Bun.version,
    os: `${platform()} ${release()}`,
    arch: arch(),
    host: hostname(),
    cpu: { model: c[0]?.model ?? "unknown", logicalCores: c.length },
    memoryBytes: totalmem(),
    gpus: detectGpus(),
  };
}

/** What every record links to (records carry `_prov: "<run name>/<stage>"`). */
export interface ProvenanceStamp {
  runId: string;
  stage: string;
  plugin: string;
  pluginVersion: string;
  configHash: string;
  git: GitInfo;
  seed: number;
  shard: string | null;
  createdAt: string;
  /** Plugins add their own (model sha256, sampling parameters, native build...). */
  extra: Record<string, unknown>;
}

export interface StageRecord {
  plugin: string;
  pluginVersion: string;
  status: "running" | "done" | "failed" | "interrupted";
  configHash: string;
  inputsHash: string;
  config: unknown;
  inputs: Record<string, { stage: string; file: string; sha256: string }>;
  artifacts: ArtifactInfo[];
  files: { file: string; sha256: string; bytes: number; mtimeMs?: number }[];
  gates: GateResult[];
  gateMode: "stop" | "report";
  provenance: ProvenanceStamp;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  shards: number | null;
  error?: string;
  /** Files changed on disk after the stage wrote them, taken as they are (onChanged: rerun). */
  changedOnDisk?: string[];
}

export interface RunManifest {
  runId: string;
  name: string;
  configPath: string;
  configHash: string;
  /** The `--set key.path=value` overrides of the latest run, as given (in the config hash through the config). */
  overrides: string[];
  createdAt: string;
  updatedAt: string;
  git: GitInfo;
  environment: Environment;
  stages: Record<string, StageRecord>;
}

export function readJsonIfExists<T>(path: string): T | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as T) : null;
}

export function manifestPath(runDir: string): string {
  return join(runDir, "manifest.json");
}
