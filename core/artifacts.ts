// The artifact store: streaming JSONL / MessagePack writers and readers with
// schema validation, atomic commits and resume after a crash.
//
// Crash safety: records are appended to `<file>.partial` in batches. A commit
// that names a cursor is a resume point: once its records are on disk (fsync), a
// tiny `<file>.commit.json` (records, bytes, cursor) is replaced atomically. On
// reopen, the partial file is truncated to the last resume point, so whatever
// the plugin wrote after its last cursor — buffered, flushed by a cursor-less
// commit, or torn by a SIGKILL — is discarded: the plugin writes it again from
// its cursor and nothing is duplicated. The final name appears only when the
// stage finishes.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, truncateSync, writeSync, readFileSync } from "node:fs";
import { dirname, basename } from "node:path";
import { decodeMultiStream, encode, ExtensionCodec } from "@msgpack/msgpack";
import { z } from "zod";
import type { ArtifactKind } from "./plugin.ts";

export class RecordError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "RecordError";
  }
}

/** Every record carries `_prov: "<run name>/<stage>"`, a link to its stage record (and run id) in the manifest. */
export const PROV_FIELD = "_prov";

/** Write a whole file atomically: temp file in the same directory, fsync, rename. */
export function atomicWriteFile(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

// Typed arrays survive MessagePack round trips with their element type intact.
const TYPED = [Float32Array, Int32Array, Uint32Array, Float64Array, Uint16Array] as const;
export const msgpackCodec = new ExtensionCodec();
TYPED.forEach((Ctor, i) => {
  msgpackCodec.register({
    type: 0x10 + i,
    encode: (v: unknown) => (v instanceof Ctor ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : null),
    decode: (data: Uint8Array) => {
      const copy = data.slice(); // align to the element size
      return new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT);
    },
  });
});

export interface ArtifactInfo {
  slot: string;
  kind: string;
  file: string;
  sha256: string;
  records: number;
  bytes: number;
  /** The file's mtime when its sha256 was taken: a cheap "unchanged" check before re-hashing. */
  mtimeMs?: number;
}

interface CommitState {
  records: number;
  bytes: number;
  cursor: unknown;
}

export function artifactFileName(slot: string, kind: ArtifactKind<unknown>): string {
  return kind.format === "msgpack" ? `${slot}.msgpack` : `${slot}.jsonl`;
}

function encodeRecord(format: ArtifactKind["format"], rec: unknown): Uint8Array {
  return format === "msgpack" ? encode(rec, { extensionCodec: msgpackCodec }) : Buffer.from(JSON.stringify(rec) + "\n");
}

export class ArtifactWriter<T> {
  readonly partialPath: string;
  private readonly commitPath: string;
  private pending: Uint8Array[] = [];
  private pendingRecords = 0;
  /** The last resume point (what commit.json says). */
  private state: CommitState;
  /** Everything on disk in the partial file, resume point or not. */
  private flushed: { records: number; bytes: number };

  constructor(
    readonly path: string,
    readonly slot: string,
    readonly kind: ArtifactKind<T>,
    private readonly stamp: string,
  ) {
    this.partialPath = `${path}.partial`;
    this.commitPath = `${path}.commit.json`;
    mkdirSync(dirname(path), { recursive: true });
    this.state = { records: 0, bytes: 0, cursor: null };
    if (existsSync(this.commitPath) && existsSync(this.partialPath)) {
      this.state = JSON.parse(readFileSync(this.commitPath, "utf8")) as CommitState;
      // Anything after the last commit is a torn or uncommitted tail: drop it.
      if (statSync(this.partialPath).size > this.state.bytes) truncateSync(this.partialPath, this.state.bytes);
    } else {
      atomicWriteFile(this.partialPath, new Uint8Array());
      rmSync(this.commitPath, { force: true });
    }
    this.flushed = { records: this.state.records, bytes: this.state.bytes };
  }

  /** Records committed by an earlier, interrupted attempt (0 on a fresh start). */
  get committedRecords(): number {
    return this.state.records;
  }
  /** The plugin's own resume position as of the last commit (null on a fresh start). */
  get cursor(): unknown {
    return this.state.cursor;
  }
  get totalRecords(): number {
    return this.flushed.records + this.pendingRecords;
  }

  /** Validate and buffer one record. Nothing reaches disk until commit(). */
  write(record: T): void {
    const parsed = this.kind.schema.safeParse(record);
    if (!parsed.success) {
      throw new RecordError(this.path, this.totalRecords + 1, `record does not match kind '${this.kind.name}': ${z.prettifyError(parsed.error)}`);
    }
    const value = parsed.data as Record<string, unknown>;
    const stamped = typeof value === "object" && value !== null && !Array.isArray(value) ? { ...value, [PROV_FIELD]: this.stamp } : value;
    this.pending.push(encodeRecord(this.kind.format, stamped));
    this.pendingRecords++;
  }

  /**
   * Write the buffered records to disk. With a `cursor` (any JSON but null: the
   * plugin's position in its inputs, matching exactly the records written so far)
   * this is a resume point. Without one it only frees memory: an interrupted run
   * resumes from the last cursor and drops the records flushed after it, because
   * the plugin cannot know they were written.
   */
  commit(cursor?: unknown): void {
    if (this.pending.length) {
      const fd = openSync(this.partialPath, "r+");
      let bytes = this.flushed.bytes;
      try {
        for (const chunk of this.pending) bytes += writeSync(fd, chunk, 0, chunk.length, bytes);
        if (cursor !== undefined && cursor !== null) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.flushed = { records: this.flushed.records + this.pendingRecords, bytes };
      this.pending = [];
      this.pendingRecords = 0;
    }
    if (cursor === undefined || cursor === null) return;
    this.state = { ...this.flushed, cursor };
    atomicWriteFile(this.commitPath, JSON.stringify(this.state));
  }

  /** Read back what is already committed (for resume). */
  committed(): ArtifactReader<T> {
    return new ArtifactReader(this.partialPath, this.kind, this.state.bytes);
  }

  /** Write the rest, move into place and describe the result. */
  async finalize(): Promise<ArtifactInfo> {
    this.commit();
    const fd = openSync(this.partialPath, "r+");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(this.partialPath, this.path);
    rmSync(this.commitPath, { force: true });
    const { records, bytes } = this.flushed;
    return { slot: this.slot, kind: this.kind.name, file: basename(this.path), sha256: await sha256File(this.path), records, bytes, mtimeMs: statSync(this.path).mtimeMs };
  }
}

/**
 * How long a loop over a reader runs before the reader gives the event loop a turn. Reading
 * a buffered file and a plugin's per-record `await` on settled promises are microtasks only,
 * so without a turn Ctrl-C (a signal handler, a macrotask) would not be seen until the loop
 * ended; with one, `ctx.signal` is aborted within about this long, between two records.
 */
const TURN_EVERY_MS = 10;

/** Yields a turn of the event loop when TURN_EVERY_MS have passed since the last one. */
function eventLoopTurns(): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    if (performance.now() - last < TURN_EVERY_MS) return undefined;
    return new Promise<void>((resolve) => setImmediate(() => {
      last = performance.now();
      resolve();
    }));
  };
}

export class ArtifactReader<T> implements AsyncIterable<T> {
  constructor(
    readonly path: string,
    readonly kind: ArtifactKind<T>,
    /** Read only this many bytes (a partial file's committed prefix). */
    private readonly limitBytes?: number,
  ) {}

  private stream(): ReadableStream<Uint8Array> {
    if (!existsSync(this.path)) throw new Error(`${this.path}: artifact file not found`);
    const f = Bun.file(this.path);
    return (this.limitBytes === undefined ? f : f.slice(0, this.limitBytes)).stream();
  }

  private validate(raw: unknown, line: number): T {
    if (raw && typeof raw === "object" && !Array.isArray(raw)) delete (raw as Record<string, unknown>)[PROV_FIELD];
    const parsed = this.kind.schema.safeParse(raw);
    if (!parsed.success) throw new RecordError(this.path, line, `invalid '${this.kind.name}' record: ${z.prettifyError(parsed.error)}`);
    return parsed.data;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    const turn = eventLoopTurns();
    if (this.kind.format === "msgpack") {
      let n = 0;
      try {
        for await (const raw of decodeMultiStream(this.stream(), { extensionCodec: msgpackCodec })) {
          await turn();
          yield this.validate(raw, ++n);
        }
      } catch (e) {
        if (e instanceof RecordError) throw e;
        throw new RecordError(this.path, n + 1, `bad MessagePack record: ${(e as Error).message}`);
      }
      return;
    }
    const decoder = new TextDecoder();
    let buf = "";
    let line = 0;
    const parseLine = (text: string): T | undefined => {
      line++;
      if (text.trim() === "") return undefined;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        throw new RecordError(this.path, line, `not valid JSON: ${(e as Error).message}`);
      }
      return this.validate(raw, line);
    };
    for await (const chunk of this.stream()) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const rec = parseLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        await turn();
        if (rec !== undefined) yield rec;
      }
    }
    buf += decoder.decode();
    if (buf.length > 0) {
      const rec = parseLine(buf);
      if (rec !== undefined) yield rec;
    }
  }

  async all(): Promise<T[]> {
    const out: T[] = [];
    for await (const r of this) out.push(r);
    return out;
  }
}

/** A single-file artifact (an adapter, a report) plus a validated metadata record. */
export class FileArtifact<M> {
  constructor(
    readonly dir: string,
    readonly slot: string,
    readonly kind: ArtifactKind<M>,
    private fileName: string | null,
  ) {}

  get path(): string {
    if (!this.fileName) throw new Error(`file artifact '${this.slot}' has not been written`);
    return `${this.dir}/${this.fileName}`;
  }

  meta(): M {
    const raw = JSON.parse(readFileSync(`${this.path}.meta.json`, "utf8"));
    const parsed = this.kind.schema.safeParse(raw);
    if (!parsed.success) throw new RecordError(`${this.path}.meta.json`, 1, z.prettifyError(parsed.error));
    return parsed.data;
  }

  /** `produce` writes to the temp path it is given; the file is renamed into place on success. */
  async write(fileName: string, meta: M, produce: (tmpPath: string) => Promise<void> | void): Promise<void> {
    const parsed = this.kind.schema.safeParse(meta);
    if (!parsed.success) throw new Error(`metadata for '${this.slot}' does not match kind '${this.kind.name}': ${z.prettifyError(parsed.error)}`);
    mkdirSync(this.dir, { recursive: true });
    const final = `${this.dir}/${fileName}`;
    const tmp = `${final}.tmp-${process.pid}`;
    await produce(tmp);
    if (!existsSync(tmp)) throw new Error(`file artifact '${this.slot}': the producer wrote nothing to ${tmp}`);
    atomicWriteFile(`${final}.meta.json`, JSON.stringify(parsed.data, null, 2));
    renameSync(tmp, final);
    this.fileName = fileName;
  }

  async info(): Promise<ArtifactInfo> {
    const p = this.path;
    const st = statSync(p);
    return { slot: this.slot, kind: this.kind.name, file: basename(p), sha256: await sha256File(p), records: 1, bytes: st.size, mtimeMs: st.mtimeMs };
  }

  get written(): boolean {
    return this.fileName !== null && existsSync(this.path);
  }
}
