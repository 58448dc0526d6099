// Fetches the pinned llama.cpp source tree for the native addon.
//
// The tree comes from the npm registry only: node-llama-cpp ships it as a git bundle
// (package/llama/gitRelease.bundle). We take the tarball itself (never `npm install`,
// which would pull hundreds of MB of optional prebuilt binaries), check its sha512
// against the pin below, extract just the bundle and clone it into native/deps/llama.cpp.
//
// LLAMA_CPP_DIR=<tree> uses the user's own llama.cpp checkout instead.
// SELFTUNE_LLAMA_TARBALL=<file.tgz> uses a local copy of the tarball (still verified).
//
// Usage: bun scripts/fetch-llama.ts        prints the tree's path on the last line

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const LLAMA_SOURCE = {
  package: "node-llama-cpp",
  version: "3.22.1",
  integrity:
    "sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==",
} as const;

const ROOT = resolve(import.meta.dir, "..");
export const DEPS_DIR = join(ROOT, "native", "deps");
export const DEFAULT_TREE = join(DEPS_DIR, "llama.cpp");
// Sits beside the tree, not inside it, so the tree stays a clean git checkout
// (ggml marks its commit "-dirty" otherwise).
export const SOURCE_RECORD = join(DEPS_DIR, "llama.cpp.source.json");

export interface LlamaSourceRecord {
  package: string;
  version: string;
  integrity: string;
  tag: string | null;
  commit: string;
}

function tarballName(): string {
  return `${LLAMA_SOURCE.package}-${LLAMA_SOURCE.version}.tgz`;
}

function run(cmd: string[], cwd?: string): string {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} failed (exit ${p.exitCode}): ${p.stderr.toString().trim()}`);
  }
  return p.stdout.toString().trim();
}

function integrityOf(file: string): string {
  return "sha512-" + createHash("sha512").update(readFileSync(file)).digest("base64");
}

function isTree(dir: string): boolean {
  return existsSync(join(dir, "include", "llama.h")) && existsSync(join(dir, "CMakeLists.txt"));
}

async function downloadTarball(destDir: string): Promise<string> {
  const dest = join(destDir, tarballName());
  // npm pack honours the user's registry, proxy and auth settings and its cache,
  // and fetches the one tarball without its dependencies.
  if (Bun.which("npm")) {
    run(
      ["npm", "pack", `${LLAMA_SOURCE.package}@${LLAMA_SOURCE.version}`, "--pack-destination", destDir, "--silent"],
      destDir,
    );
    if (existsSync(dest)) return dest;
  }
  const registry = (process.env.npm_config_registry ?? "https://registry.npmjs.org/").replace(/\/?$/, "/");
  const url = `${registry}${LLAMA_SOURCE.package}/-/${tarballName()}`;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  await Bun.write(dest, res);
  return dest;
}

async function obtainTarball(): Promise<string> {
  const local = process.env.SELFTUNE_LLAMA_TARBALL;
  const cached = join(DEPS_DIR, tarballName());
  const candidates = [local, cached].filter((p): p is string => !!p && existsSync(p));
  for (const c of candidates) {
    if (integrityOf(c) === LLAMA_SOURCE.integrity) return c;
    console.warn(`[fetch-llama] ignoring ${c}: integrity mismatch`);
  }
  const file = await downloadTarball(DEPS_DIR);
  const got = integrityOf(file);
  if (got !== LLAMA_SOURCE.integrity) {
    rmSync(file, { force: true });
    throw new Error(
      `[fetch-llama] ${tarballName()} integrity mismatch:\n  expected ${LLAMA_SOURCE.integrity}\n  got      ${got}`,
    );
  }
  return file;
}

function readRecord(): LlamaSourceRecord | null {
  try {
    return JSON.parse(readFileSync(SOURCE_RECORD, "utf8")) as LlamaSourceRecord;
  } catch {
    return null;
  }
}

/** Returns the llama.cpp tree to build against, fetching it when needed. */
export async function fetchLlama(opts: { quiet?: boolean } = {}): Promise<string> {
  const log = (m: string) => opts.quiet || console.log(`[fetch-llama] ${m}`);

  const user = process.env.LLAMA_CPP_DIR;
  if (user) {
    const dir = resolve(user);
    if (!isTree(dir)) throw new Error(`LLAMA_CPP_DIR=${user} is not a llama.cpp tree (no include/llama.h)`);
    log(`using LLAMA_CPP_DIR ${dir}`);
    return dir;
  }

  const rec = readRecord();
  if (isTree(DEFAULT_TREE) && rec?.version === LLAMA_SOURCE.version && rec.integrity === LLAMA_SOURCE.integrity) {
    log(`llama.cpp ${rec.tag ?? ""} ${rec.commit} already at ${DEFAULT_TREE}`);
    return DEFAULT_TREE;
  }

  mkdirSync(DEPS_DIR, { recursive: true });
  const t0 = performance.now();
  const tgz = await obtainTarball();
  log(`verified ${tgz}`);

  const scratch = join(tmpdir(), `selftune-llama-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  try {
    run(["tar", "-xzf", tgz, "-C", scratch, "package/llama/gitRelease.bundle", "package/llama/llama.cpp.info.json"]);
    const bundle = join(scratch, "package", "llama", "gitRelease.bundle");
    let tag: string | null = null;
    try {
      tag = JSON.parse(readFileSync(join(scratch, "package", "llama", "llama.cpp.info.json"), "utf8")).tag ?? null;
    } catch {
      tag = null;
    }

    // Clone next to the destination and rename, so an interrupted fetch never
    // leaves a half tree that looks complete.
    const staging = `${DEFAULT_TREE}.partial`;
    rmSync(staging, { recursive: true, force: true });
    run(["git", "clone", "--quiet", bundle, staging]);
    const commit = run(["git", "rev-parse", "HEAD"], staging);
    rmSync(DEFAULT_TREE, { recursive: true, force: true });
    renameSync(staging, DEFAULT_TREE);

    const record: LlamaSourceRecord = { ...LLAMA_SOURCE, tag, commit };
    writeFileSync(SOURCE_RECORD, JSON.stringify(record, null, 2) + "\n");
    log(`llama.cpp ${tag ?? ""} ${commit.slice(0, 10)} -> ${DEFAULT_TREE} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return DEFAULT_TREE;
}

if (import.meta.main) {
  try {
    console.log(await fetchLlama());
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
