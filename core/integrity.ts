// Before a finished stage is trusted (skipped, or read by a later stage), its
// recorded files are checked against the manifest: size and mtime first, the full
// sha256 only when those differ, so an untouched run directory costs one stat a file.
import { existsSync, statSync } from "node:fs";
import { sha256File } from "./artifacts.ts";

/** What the manifest recorded of one file (an artifact or an extra file). */
export interface RecordedFile {
  file: string;
  sha256: string;
  bytes: number;
  mtimeMs?: number;
}

export type FileCheck =
  | { status: "ok" }
  /** Same content, new mtime (touched, copied): the manifest's mtime is refreshed. */
  | { status: "touched"; mtimeMs: number }
  | { status: "missing" }
  | { status: "changed"; sha256: string; bytes: number; mtimeMs: number };

export async function checkFile(path: string, rec: RecordedFile): Promise<FileCheck> {
  if (!existsSync(path)) return { status: "missing" };
  const st = statSync(path);
  if (st.size === rec.bytes && rec.mtimeMs !== undefined && st.mtimeMs === rec.mtimeMs) return { status: "ok" };
  const sha256 = await sha256File(path);
  if (sha256 === rec.sha256) return { status: "touched", mtimeMs: st.mtimeMs };
  return { status: "changed", sha256, bytes: st.size, mtimeMs: st.mtimeMs };
}

/** What to do when a finished stage's file no longer matches its manifest. */
export type OnChanged = "stop" | "rerun";

export class ChangedFileError extends Error {
  constructor(readonly path: string, recorded: string, actual: string, stage: string) {
    super(
      `${path} was changed after stage '${stage}' recorded it (sha256 ${recorded.slice(0, 12)} in the manifest, ${actual.slice(0, 12)} on disk). ` +
        `Run with --on-changed rerun (or onChanged: rerun) to use the file as it is now and re-run the stages that read it, ` +
        `or delete it (or run --from ${stage}) to produce it again.`,
    );
    this.name = "ChangedFileError";
  }
}
