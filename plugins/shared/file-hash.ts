// sha256 of large files (model weights), hashed once and cached.
//
// Hashing a 15 GB GGUF takes a minute; provenance needs the hash on every load.
// The digest is cached in memory and on disk, keyed by the file's real path,
// size and modification time (ms): a file replaced or touched is hashed again.
// The disk cache is one small JSON file per (path, digest kind) under
// $SELFTUNE_HASH_CACHE, default <project>/.cache/hashes (git-ignored).
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { atomicWriteFile, sha256File } from "../../core/artifacts.ts";
import { PROJECT_ROOT, sha256 } from "../../core/provenance.ts";

export function hashCacheDir(): string {
  return process.env.SELFTUNE_HASH_CACHE ?? join(PROJECT_ROOT, ".cache", "hashes");
}

interface Entry {
  path: string;
  kind: string;
  size: number;
  mtimeMs: number;
  digest: string;
}

const memory = new Map<string, Entry>();
const pending = new Map<string, Promise<string>>();

/** Statistics for tests and logs: how many digests were computed rather than cached. */
export const hashStats = { computed: 0, cached: 0 };

/**
 * A digest of `path` computed by `compute` (default: sha256 of the bytes), cached by
 * (real path, kind, size, mtime). `kind` separates different digests of one file.
 */
export async function cachedFileDigest(path: string, kind = "sha256", compute: (path: string) => Promise<string> | string = sha256File): Promise<string> {
  const real = realpathSync(path);
  const st = statSync(real);
  const id = sha256(`${kind}\u0000${real}`);
  const fresh = (e: Entry | undefined): e is Entry => !!e && e.path === real && e.kind === kind && e.size === st.size && e.mtimeMs === st.mtimeMs;
  const mem = memory.get(id);
  if (fresh(mem)) {
    hashStats.cached++;
    return mem.digest;
  }
  const file = join(hashCacheDir(), `${id.slice(0, 32)}.json`);
  if (existsSync(file)) {
    try {
      const disk = JSON.parse(readFileSync(file, "utf8")) as Entry;
      if (fresh(disk)) {
        memory.set(id, disk);
        hashStats.cached++;
        return disk.digest;
      }
    } catch {} // a corrupt cache entry is recomputed
  }
  const key = `${id}:${st.size}:${st.mtimeMs}`;
  const inFlight = pending.get(key);
  if (inFlight) return inFlight;
  const job = (async () => {
    const digest = await compute(real);
    hashStats.computed++;
    const entry: Entry = { path: real, kind, size: st.size, mtimeMs: st.mtimeMs, digest };
    memory.set(id, entry);
    try {
      mkdirSync(hashCacheDir(), { recursive: true });
      atomicWriteFile(file, JSON.stringify(entry) + "\n");
    } catch {} // a read-only cache only costs time
    return digest;
  })().finally(() => pending.delete(key));
  pending.set(key, job);
  return job;
}

/** sha256 of a file's bytes, cached (see above). */
export function sha256FileCached(path: string): Promise<string> {
  return cachedFileDigest(path, "sha256");
}

/** Forget the in-memory cache (tests). */
export function clearHashMemory(): void {
  memory.clear();
}
