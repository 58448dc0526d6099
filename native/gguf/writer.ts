// GGUF v3 writer. The header (metadata + tensor table) is built in memory (a few MB at most,
// the vocabulary dominates); tensor data is streamed tensor by tensor, chunk by chunk, so a
// 15 GB model never sits in memory. Output goes to a temporary file beside the target and
// is renamed into place only when complete: readers never see a partial model.

import { mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME_BYTES,
  GGUF_ALIGNMENT_KEY,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_SCALAR_BYTES,
  GGUF_VERSION,
  GgufValueTypeId,
  alignUp,
  ggmlTypeLayout,
  tensorByteSize,
} from "./types.ts";
import type { GgufArray, GgufMetadata, GgufValue } from "./values.ts";

export type TensorChunks = Iterable<ArrayBufferView> | AsyncIterable<ArrayBufferView>;

export interface GgufTensorSource {
  name: string;
  /** ggml order: dims[0] is the row length (n_in for a weight matrix). */
  dims: number[];
  /** ggml type id (GgmlType.*). */
  type: number;
  /**
   * The tensor's bytes, either whole or as a function returning chunks; the function runs
   * when this tensor's turn comes. A yielded chunk must not be modified afterwards (it may
   * still be being written while the next one is produced).
   */
  data: ArrayBufferView | (() => TensorChunks);
}

export interface WriteGgufOptions {
  /** Written in iteration order. */
  metadata: GgufMetadata | Iterable<[string, GgufValue]>;
  tensors: GgufTensorSource[];
  /** Data alignment; when not 32 it is recorded as general.alignment. Default 32. */
  alignment?: number;
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

export interface WrittenGguf {
  path: string;
  bytes: number;
  dataOffset: number;
}

const textEncoder = new TextEncoder();

/**
 * Growable little-endian byte buffer for the header. Each write calls `reserve` before
 * touching `buf`/`dv`: reserve may replace them.
 */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < at + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    this.length += n;
    return at;
  }

  u8(v: number) {
    const at = this.reserve(1);
    this.dv.setUint8(at, v);
  }
  i8(v: number) {
    const at = this.reserve(1);
    this.dv.setInt8(at, v);
  }
  u16(v: number) {
    const at = this.reserve(2);
    this.dv.setUint16(at, v, true);
  }
  i16(v: number) {
    const at = this.reserve(2);
    this.dv.setInt16(at, v, true);
  }
  u32(v: number) {
    const at = this.reserve(4);
    this.dv.setUint32(at, v, true);
  }
  i32(v: number) {
    const at = this.reserve(4);
    this.dv.setInt32(at, v, true);
  }
  f32(v: number) {
    const at = this.reserve(4);
    this.dv.setFloat32(at, v, true);
  }
  f64(v: number) {
    const at = this.reserve(8);
    this.dv.setFloat64(at, v, true);
  }
  u64(v: bigint) {
    const at = this.reserve(8);
    this.dv.setBigUint64(at, v, true);
  }
  i64(v: bigint) {
    const at = this.reserve(8);
    this.dv.setBigInt64(at, v, true);
  }
  raw(bytes: Uint8Array) {
    const at = this.reserve(bytes.length);
    this.buf.set(bytes, at);
  }
  string(s: string) {
    const bytes = textEncoder.encode(s);
    this.u64(BigInt(bytes.length));
    this.raw(bytes);
  }
  padTo(alignment: number) {
    this.reserve(alignUp(this.length, alignment) - this.length); // fresh bytes are zero
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const INT_RANGES: Record<string, [number, number]> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

function checkScalar(key: string, type: string, value: number): void {
  const range = INT_RANGES[type];
  if (range && !(Number.isInteger(value) && value >= range[0] && value <= range[1])) {
    throw new Error(`metadata "${key}": ${value} does not fit a ${type}`);
  }
}

function writeValue(sink: ByteSink, key: string, v: GgufValue): void {
  switch (v.type) {
    case "u8":
    case "i8":
    case "u16":
    case "i16":
    case "u32":
    case "i32":
      checkScalar(key, v.type, v.value);
      sink[v.type](v.value);
      return;
    case "f32":
    case "f64":
      sink[v.type](v.value);
      return;
    case "u64":
      sink.u64(BigInt.asUintN(64, v.value) === v.value ? v.value : fail(key, `${v.value} does not fit a u64`));
      return;
    case "i64":
      sink.i64(BigInt.asIntN(64, v.value) === v.value ? v.value : fail(key, `${v.value} does not fit an i64`));
      return;
    case "bool":
      sink.u8(v.value ? 1 : 0);
      return;
    case "string":
      sink.string(v.value);
      return;
    case "array":
      writeArray(sink, key, v);
      return;
  }
}

function fail(key: string, detail: string): never {
  throw new Error(`metadata "${key}": ${detail}`);
}

function writeArray(sink: ByteSink, key: string, v: GgufArray): void {
  sink.i32(GgufValueTypeId[v.itemType]);
  sink.u64(BigInt(v.value.length));
  switch (v.itemType) {
    case "string":
      for (const s of v.value) sink.string(s);
      return;
    case "bool":
      for (const b of v.value) sink.u8(b ? 1 : 0);
      return;
    case "array":
      for (const inner of v.value) writeValue(sink, key, inner);
      return;
    default: {
      // Typed arrays are already little-endian element bytes on every host we support.
      const arr = v.value;
      if (arr.BYTES_PER_ELEMENT !== GGUF_SCALAR_BYTES[v.itemType]) {
        fail(key, `array of ${v.itemType} backed by a ${arr.constructor.name}`);
      }
      sink.raw(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
    }
  }
}

interface PlannedTensor {
  source: GgufTensorSource;
  offset: number;
  byteSize: number;
}

function planTensors(tensors: GgufTensorSource[], alignment: number): { planned: PlannedTensor[]; dataBytes: number } {
  const names = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (textEncoder.encode(t.name).length > GGML_MAX_NAME_BYTES) {
      throw new Error(`tensor name "${t.name}" is longer than ${GGML_MAX_NAME_BYTES} bytes`);
    }
    if (t.dims.length < 1 || t.dims.length > GGML_MAX_DIMS) {
      throw new Error(`tensor "${t.name}" has ${t.dims.length} dimensions; ggml wants 1..${GGML_MAX_DIMS}`);
    }
    if (!t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`tensor "${t.name}" has invalid dimensions [${t.dims.join(", ")}]`);
    }
    if (!ggmlTypeLayout(t.type)) throw new Error(`tensor "${t.name}" has unknown ggml type id ${t.type}`);
    let byteSize: number;
    try {
      byteSize = tensorByteSize(t.type, t.dims);
    } catch (e) {
      throw new Error(`tensor "${t.name}": ${(e as Error).message}`);
    }
    planned.push({ source: t, offset, byteSize });
    offset = alignUp(offset + byteSize, alignment);
  }
  return { planned, dataBytes: offset };
}

function resolveAlignment(metadata: GgufMetadata, requested: number | undefined): number {
  const stored = metadata.get(GGUF_ALIGNMENT_KEY);
  if (stored && stored.type !== "u32") throw new Error(`${GGUF_ALIGNMENT_KEY} must be a u32, got ${stored.type}`);
  const fromMeta = stored?.type === "u32" ? stored.value : undefined;
  if (fromMeta !== undefined && requested !== undefined && fromMeta !== requested) {
    throw new Error(`alignment ${requested} conflicts with ${GGUF_ALIGNMENT_KEY} = ${fromMeta} in the metadata`);
  }
  const alignment = fromMeta ?? requested ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`alignment ${alignment} is not a power of two`);
  }
  if (fromMeta === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT) {
    metadata.set(GGUF_ALIGNMENT_KEY, { type: "u32", value: alignment });
  }
  return alignment;
}

/** Serializes the header: magic, version, counts, metadata, tensor table, padding. */
function encodeHeader(metadata: GgufMetadata, planned: PlannedTensor[], alignment: number): Uint8Array {
  const sink = new ByteSink();
  sink.raw(textEncoder.encode("GGUF"));
  sink.u32(GGUF_VERSION);
  sink.u64(BigInt(planned.length));
  sink.u64(BigInt(metadata.size));
  for (const [key, value] of metadata) {
    sink.string(key);
    sink.i32(GgufValueTypeId[value.type]);
    writeValue(sink, key, value);
  }
  for (const { source, offset } of planned) {
    sink.string(source.name);
    sink.u32(source.dims.length);
    for (const d of source.dims) sink.i64(BigInt(d));
    sink.i32(source.type);
    sink.u64(BigInt(offset));
  }
  sink.padTo(alignment);
  return sink.bytes();
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array ? view : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Writes a GGUF v3 file atomically (temp file + rename). Returns the final path and size. */
export async function writeGguf(path: string, options: WriteGgufOptions): Promise<WrittenGguf> {
  const metadata: GgufMetadata = new Map(options.metadata);
  const alignment = resolveAlignment(metadata, options.alignment);
  const { planned, dataBytes } = planTensors(options.tensors, alignment);
  const header = encodeHeader(metadata, planned, alignment);
  const dataOffset = header.length;
  const totalBytes = dataOffset + dataBytes;

  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const fh = await open(tmp, "w");
  let position = 0;
  let inFlight: Promise<unknown> | undefined;
  // One write in flight while the next chunk is produced: generation and I/O overlap.
  const emit = async (bytes: Uint8Array) => {
    if (inFlight) await inFlight;
    const at = position;
    position += bytes.length;
    inFlight = (async () => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, at + done);
        done += bytesWritten;
      }
      options.onProgress?.(at + bytes.length, totalBytes);
    })();
  };

  try {
    await emit(header);
    for (const { source, offset, byteSize } of planned) {
      const start = dataOffset + offset;
      if (position < start) await emit(new Uint8Array(start - position));
      let written = 0;
      const chunks = typeof source.data === "function" ? source.data() : [source.data];
      for await (const chunk of chunks) {
        const bytes = asBytes(chunk);
        written += bytes.length;
        if (written > byteSize) break;
        if (bytes.length > 0) await emit(bytes);
      }
      if (written !== byteSize) {
        throw new Error(`tensor "${source.name}": data source gave ${written > byteSize ? "more than" : "only"} ${written} bytes, expected ${byteSize}`);
      }
    }
    if (position < totalBytes) await emit(new Uint8Array(totalBytes - position));
    await inFlight;
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await inFlight?.catch(() => {});
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e instanceof Error ? new Error(`writing ${path}: ${e.message}`, { cause: e }) : e;
  }
  return { path, bytes: totalBytes, dataOffset };
}
