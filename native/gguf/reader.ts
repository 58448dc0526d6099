// GGUF reader: header, metadata, tensor table. Reads only the front of the file (in
// chunks, through a small window), so describing a 15 GB model costs a few MB of reads.
// Tensor data is read on request, one tensor or slice at a time.
//
// Layout (gguf.h): magic "GGUF", u32 version, i64 tensor count, i64 KV count, KVs, tensor
// infos (name, u32 n_dims, i64 dims, i32 ggml type, u64 offset into the data section), then
// padding to the alignment, then the data section. All little-endian.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { decodeF16, bf16BitsToF32 } from "./f16.ts";
import {
  GGML_MAX_DIMS,
  GGUF_ALIGNMENT_KEY,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_READABLE_VERSIONS,
  GgmlType,
  alignUp,
  elementCount,
  ggmlTypeLayout,
  ggmlTypeName,
  ggufValueTypeName,
  type GgufValueTypeName,
} from "./types.ts";
import {
  NUMERIC_ARRAY_CTORS,
  isNumericItemType,
  type GgufArray,
  type GgufMetadata,
  type GgufValue,
} from "./values.ts";

if (endianness() !== "LE") {
  // Typed arrays over file bytes assume a little-endian host, like ggml itself.
  throw new Error("native/gguf: big-endian hosts are not supported");
}

/** Any problem with a GGUF file; the message always names the file. */
export class GgufError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
    this.name = "GgufError";
  }
}

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the row length (n_in for a weight matrix). */
  dims: number[];
  type: number;
  typeName: string;
  /** Offset inside the data section, as stored. */
  offset: number;
  /** Absolute position of the first byte in the file. */
  fileOffset: number;
  byteSize: number;
  elementCount: number;
}

export interface GgufFile {
  path: string;
  version: number;
  fileSize: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** End of the tensor table, before the padding that aligns the data section. */
  headerEnd: number;
  /** Where the tensor data section starts (end of the tensor table, aligned). */
  dataOffset: number;
}

const WINDOW_BYTES = 1 << 20;
const textDecoder = new TextDecoder("utf-8", { fatal: false });

/** Sequential reads over a file through a refillable window; errors name the file. */
class FileCursor {
  private window = new Uint8Array(0);
  private dv = new DataView(this.window.buffer);
  private windowStart = 0;
  pos = 0;
  /** What is being read, for error messages ("metadata entry 3 \"general.name\""). */
  context = "header";

  constructor(
    private readonly fd: number,
    readonly path: string,
    readonly size: number,
  ) {}

  fail(detail: string): never {
    throw new GgufError(this.path, detail);
  }

  /** Makes `n` bytes from `pos` available, advances past them, returns their window offset. */
  private take(n: number): number {
    let rel = this.pos - this.windowStart;
    if (rel < 0 || rel + n > this.window.length) {
      this.refill(n);
      rel = 0;
    }
    this.pos += n;
    return rel;
  }

  private refill(n: number): void {
    if (this.pos + n > this.size) {
      this.fail(
        `truncated file: ${this.context} needs bytes ${this.pos}..${this.pos + n} but the file has ${this.size} bytes`,
      );
    }
    const length = Math.min(Math.max(n, WINDOW_BYTES), this.size - this.pos);
    const buf = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const r = readSync(this.fd, buf, got, length - got, this.pos + got);
      if (r === 0) this.fail(`truncated file: unexpected end of file at byte ${this.pos + got} in ${this.context}`);
      got += r;
    }
    this.window = buf;
    this.dv = new DataView(buf.buffer);
    this.windowStart = this.pos;
  }

  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.window.subarray(at, at + n);
  }

  // `take` first, then read: it may swap the window (`this.dv.getX(this.take(n))` would read the old one).
  u8(): number {
    const at = this.take(1);
    return this.window[at]!;
  }
  i8(): number {
    const at = this.take(1);
    return this.dv.getInt8(at);
  }
  u16(): number {
    const at = this.take(2);
    return this.dv.getUint16(at, true);
  }
  i16(): number {
    const at = this.take(2);
    return this.dv.getInt16(at, true);
  }
  u32(): number {
    const at = this.take(4);
    return this.dv.getUint32(at, true);
  }
  i32(): number {
    const at = this.take(4);
    return this.dv.getInt32(at, true);
  }
  f32(): number {
    const at = this.take(4);
    return this.dv.getFloat32(at, true);
  }
  f64(): number {
    const at = this.take(8);
    return this.dv.getFloat64(at, true);
  }
  u64(): bigint {
    const at = this.take(8);
    return this.dv.getBigUint64(at, true);
  }
  i64(): bigint {
    const at = this.take(8);
    return this.dv.getBigInt64(at, true);
  }

  /** A u64 count or size that must fit in what is left of the file. */
  length(what: string, bytesPerItem = 1): number {
    // Read as two u32 halves: avoids a bigint per string, and counts above 2^53 are corrupt anyway.
    const start = this.pos;
    const at = this.take(8);
    const lo = this.dv.getUint32(at, true);
    const hi = this.dv.getUint32(at + 4, true);
    const n = hi * 0x100000000 + lo;
    const left = this.size - this.pos;
    if (n * bytesPerItem > left) {
      this.fail(
        `truncated file: ${this.context} declares ${what} ${hi > 0x1fffff ? `${hi}*2^32+${lo}` : n} (${bytesPerItem} byte(s) each) at byte ${start}, but only ${left} bytes follow`,
      );
    }
    return n;
  }

  string(): string {
    const n = this.length("a string of length");
    const at = this.take(n);
    return decodeUtf8(this.window, at, n);
  }
}

/**
 * UTF-8 decoding; vocabularies hold ~300k short strings, mostly ASCII, where TextDecoder's
 * per-call cost dominates, so pure-ASCII short strings are assembled directly.
 */
function decodeUtf8(buf: Uint8Array, at: number, n: number): string {
  if (n <= 16) {
    let s = "";
    for (let i = at; i < at + n; i++) {
      const b = buf[i]!;
      if (b >= 0x80) return textDecoder.decode(buf.subarray(at, at + n));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return textDecoder.decode(buf.subarray(at, at + n));
}

function readValue(cur: FileCursor, type: GgufValueTypeName): GgufValue {
  switch (type) {
    case "u8":
      return { type, value: cur.u8() };
    case "i8":
      return { type, value: cur.i8() };
    case "u16":
      return { type, value: cur.u16() };
    case "i16":
      return { type, value: cur.i16() };
    case "u32":
      return { type, value: cur.u32() };
    case "i32":
      return { type, value: cur.i32() };
    case "f32":
      return { type, value: cur.f32() };
    case "f64":
      return { type, value: cur.f64() };
    case "u64":
      return { type, value: cur.u64() };
    case "i64":
      return { type, value: cur.i64() };
    case "bool":
      return { type, value: cur.u8() !== 0 };
    case "string":
      return { type, value: cur.string() };
    case "array":
      return readArray(cur);
  }
}

function readValueType(cur: FileCursor, what: string): GgufValueTypeName {
  const id = cur.i32();
  const name = ggufValueTypeName(id);
  if (!name) cur.fail(`${cur.context}: unknown ${what} type id ${id}`);
  return name;
}

function readArray(cur: FileCursor): GgufArray {
  const itemType = readValueType(cur, "array item");
  if (isNumericItemType(itemType)) {
    const Ctor = NUMERIC_ARRAY_CTORS[itemType];
    const n = cur.length("an array of length", Ctor.BYTES_PER_ELEMENT);
    // Copy: metadata is not aligned, and typed arrays need element-aligned offsets.
    const copy = cur.bytes(n * Ctor.BYTES_PER_ELEMENT).slice();
    return { type: "array", itemType, value: new Ctor(copy.buffer, 0, n) } as GgufArray;
  }
  if (itemType === "bool") {
    const n = cur.length("an array of length");
    return { type: "array", itemType, value: Array.from(cur.bytes(n), (b) => b !== 0) };
  }
  if (itemType === "string") {
    const n = cur.length("an array of length", 8);
    const value = new Array<string>(n);
    for (let i = 0; i < n; i++) value[i] = cur.string();
    return { type: "array", itemType, value };
  }
  const n = cur.length("an array of length", 12);
  const value: GgufArray[] = [];
  for (let i = 0; i < n; i++) {
    const inner = readValue(cur, "array");
    value.push(inner as GgufArray);
  }
  return { type: "array", itemType: "array", value };
}

/**
 * Reads the header, metadata and tensor table of a GGUF file (v2 or v3). Checks that every
 * tensor's data lies inside the file; does not read the data.
 */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new GgufError(path, `cannot open: ${(e as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new GgufError(path, "not a regular file");
    return parse(new FileCursor(fd, path, stat.size));
  } finally {
    closeSync(fd);
  }
}

function parse(cur: FileCursor): GgufFile {
  if (cur.size < 4) cur.fail(`not a GGUF file: ${cur.size} bytes, too short for the magic`);
  const magic = cur.bytes(4);
  if (textDecoder.decode(magic) !== "GGUF") {
    const shown = Array.from(magic, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
    cur.fail(`not a GGUF file: magic is "${shown}", expected "GGUF"`);
  }
  cur.context = "the header";
  const version = cur.u32();
  if (!GGUF_READABLE_VERSIONS.includes(version)) {
    if ((version & 0xffff) === 0 && GGUF_READABLE_VERSIONS.includes(version >>> 24)) {
      cur.fail(`unsupported GGUF: big-endian file (version bytes ${version.toString(16)}); only little-endian files are supported`);
    }
    cur.fail(`unsupported GGUF version ${version}; supported: ${GGUF_READABLE_VERSIONS.join(", ")}`);
  }
  // Minimum sizes per entry bound the counts, so a corrupt count fails as truncation, not as OOM.
  const tensorCount = cur.length("a tensor count of", 8 + 4 + 4 + 8);
  const kvCount = cur.length("a metadata count of", 8 + 4 + 1);

  const metadata: GgufMetadata = new Map();
  for (let i = 0; i < kvCount; i++) {
    cur.context = `metadata entry ${i}`;
    const key = cur.string();
    cur.context = `metadata entry ${i} "${key}"`;
    const type = readValueType(cur, "value");
    if (metadata.has(key)) cur.fail(`duplicate metadata key "${key}"`);
    metadata.set(key, readValue(cur, type));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignValue = metadata.get(GGUF_ALIGNMENT_KEY);
  if (alignValue) {
    if (alignValue.type !== "u32") cur.fail(`${GGUF_ALIGNMENT_KEY} must be a u32, got ${alignValue.type}`);
    alignment = alignValue.value;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      cur.fail(`${GGUF_ALIGNMENT_KEY} is ${alignment}, not a power of two`);
    }
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    cur.context = `tensor info ${i}`;
    const name = cur.string();
    cur.context = `tensor info ${i} "${name}"`;
    if (names.has(name)) cur.fail(`duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = cur.u32();
    if (nDims > GGML_MAX_DIMS) cur.fail(`tensor "${name}" has ${nDims} dimensions; ggml allows at most ${GGML_MAX_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = cur.i64();
      if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) cur.fail(`tensor "${name}" has dimension ${d} of size ${n}`);
      dims.push(Number(n));
    }
    const type = cur.i32();
    const layout = ggmlTypeLayout(type);
    if (!layout) cur.fail(`tensor "${name}" has unknown ggml type id ${type}`);
    const rowLength = dims[0] ?? 1;
    if (rowLength % layout.blockSize !== 0) {
      cur.fail(`tensor "${name}" (${layout.name}) has rows of ${rowLength} elements, not a multiple of the block size ${layout.blockSize}`);
    }
    const offset = cur.u64();
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) cur.fail(`tensor "${name}" has offset ${offset}`);
    const count = elementCount(dims);
    tensors.push({
      name,
      dims,
      type,
      typeName: layout.name,
      offset: Number(offset),
      fileOffset: 0,
      byteSize: (count / layout.blockSize) * layout.blockBytes,
      elementCount: count,
    });
  }

  // llama.cpp seeks to the aligned data section only when there are tensors.
  const dataOffset = tensors.length > 0 ? alignUp(cur.pos, alignment) : cur.pos;
  for (const t of tensors) {
    if (t.offset % alignment !== 0) {
      cur.fail(`tensor "${t.name}" starts at data offset ${t.offset}, not a multiple of the alignment ${alignment}`);
    }
    t.fileOffset = dataOffset + t.offset;
    const end = t.fileOffset + t.byteSize;
    if (end > cur.size) {
      cur.fail(
        `truncated file: tensor "${t.name}" data spans bytes ${t.fileOffset}..${end} but the file has ${cur.size} bytes`,
      );
    }
  }

  return { path: cur.path, version, fileSize: cur.size, metadata, tensors, alignment, headerEnd: cur.pos, dataOffset };
}

export function findTensor(file: GgufFile, name: string): GgufTensorInfo {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new GgufError(file.path, `no tensor named "${name}"`);
  return t;
}

/** Raw bytes of a tensor, or of the byte range [start, end) inside it. */
export function readTensorBytes(file: GgufFile, tensor: GgufTensorInfo | string, start = 0, end?: number): Uint8Array {
  const t = typeof tensor === "string" ? findTensor(file, tensor) : tensor;
  const stop = end ?? t.byteSize;
  if (start < 0 || stop > t.byteSize || start > stop) {
    throw new GgufError(file.path, `byte range ${start}..${stop} is outside tensor "${t.name}" (${t.byteSize} bytes)`);
  }
  const out = new Uint8Array(stop - start);
  const fd = openSync(file.path, "r");
  try {
    let got = 0;
    while (got < out.length) {
      const r = readSync(fd, out, got, out.length - got, t.fileOffset + start + got);
      if (r === 0) throw new GgufError(file.path, `truncated file while reading tensor "${t.name}"`);
      got += r;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** A float tensor (F32, F16 or BF16) as f32 values; quantized types need the native addon. */
export function readTensorF32(file: GgufFile, tensor: GgufTensorInfo | string): Float32Array {
  const t = typeof tensor === "string" ? findTensor(file, tensor) : tensor;
  const bytes = readTensorBytes(file, t);
  switch (t.type) {
    case GgmlType.F32:
      return new Float32Array(bytes.buffer, 0, t.elementCount);
    case GgmlType.F16: {
      const out = new Float32Array(t.elementCount);
      decodeF16(new Uint16Array(bytes.buffer, 0, t.elementCount), out);
      return out;
    }
    case GgmlType.BF16: {
      const src = new Uint16Array(bytes.buffer, 0, t.elementCount);
      return Float32Array.from(src, bf16BitsToF32);
    }
    default:
      throw new GgufError(file.path, `tensor "${t.name}" is ${ggmlTypeName(t.type)}; only F32, F16 and BF16 decode here`);
  }
}

/** Typed metadata lookups that fail with the file and key named. */
export function metaString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "string") throw new GgufError(file.path, `metadata "${key}" is ${v.type}, expected string`);
  return v.value;
}

export function metaNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  throw new GgufError(file.path, `metadata "${key}" is ${v.type}, expected a number`);
}

export function metaArrayLength(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "array") throw new GgufError(file.path, `metadata "${key}" is ${v.type}, expected an array`);
  return v.value.length;
}
