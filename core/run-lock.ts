// Run-directory locks: one process owns a run directory (and one a shard of it)
// at a time, so two runs never write the same files. A lock is a small JSON file
// created with O_EXCL; a lock whose process is gone (same host, pid not alive)
// is stale and taken over.
import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  /** Unique per acquisition: a process-mode shard child inherits its parent's run lock by it. */
  token: string;
  command: string;
  /** The pid of the run that spawned this process (process-mode shards), if any. */
  parentPid: number | null;
}

export class LockedError extends Error {
  constructor(readonly path: string, readonly holder: LockHolder) {
    super(`${path} is held by pid ${holder.pid} on ${holder.host} since ${holder.startedAt} (${holder.command}); wait for that run to end or stop it${holder.host === hostname() ? "" : `, or delete the lock file if that host's run is gone`}`);
    this.name = "LockedError";
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readLock(path: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as LockHolder;
  } catch {
    return null; // absent (locks are linked into place whole, never seen half-written)
  }
}

/** Alive for all we can tell: another host's pids cannot be checked. */
export function lockLive(h: LockHolder): boolean {
  return h.host !== hostname() || pidAlive(h.pid);
}

/** A process-mode shard whose parent run died: it stops by itself within moments. */
function orphaned(h: LockHolder): boolean {
  return h.host === hostname() && h.parentPid !== null && !pidAlive(h.parentPid);
}

export interface Lock {
  readonly path: string;
  readonly token: string;
  release(): void;
}

// Written aside and hard-linked into place: a lock file is never seen empty.
function tryCreate(path: string, holder: LockHolder): boolean {
  const tmp = `${path}.${holder.token}`;
  writeFileSync(tmp, JSON.stringify(holder));
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Take the lock at `path` or throw LockedError naming its holder. Stale locks are
 * taken over. `waitForOrphansMs`: how long to wait for a holder that is a shard
 * child of a dead run (it notices and stops) before giving up.
 */
export async function acquireLock(path: string, opts: { parentPid?: number | null; waitForOrphansMs?: number; onTakeover?: (stale: LockHolder) => void } = {}): Promise<Lock> {
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`,
    command: process.argv.slice(1).join(" "),
    parentPid: opts.parentPid ?? null,
  };
  const deadline = Date.now() + (opts.waitForOrphansMs ?? 0);
  for (let attempt = 0; ; attempt++) {
    if (tryCreate(path, holder)) break;
    const cur = readLock(path);
    if (cur && lockLive(cur)) {
      if (orphaned(cur) && Date.now() < deadline) {
        await Bun.sleep(100);
        continue;
      }
      throw new LockedError(path, cur);
    }
    // Stale. Re-read right before
    // removing so a lock another process just took over is not removed as well.
    const again = readLock(path);
    if (again && (again.token !== cur?.token || lockLive(again))) continue;
    if (cur) opts.onTakeover?.(cur);
    rmSync(path, { force: true });
    if (attempt > 50) throw new Error(`${path}: could not take the lock (contended)`);
  }
  let held = true;
  return {
    path,
    token: holder.token,
    release() {
      if (!held) return;
      held = false;
      if (readLock(path)?.token === holder.token) rmSync(path, { force: true });
    },
  };
}
