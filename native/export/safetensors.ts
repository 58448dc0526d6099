// safetensors, the file format of PEFT adapters: an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the tensors' raw little-endian bytes, offsets counted from the end of the header.
//
// Written here rather than taken from npm: the only package of that name is an unmaintained
// 0.0.1, and the format is this small. F32 only on write (adapters are small; PEFT loads
// f32 into any dtype); F32, F16 and BF16 on read (PEFT saves in the model's dtype).
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { f16BitsToF32, bf16BitsToF32 } from "../gguf/f16.ts";

export interface SafeTensor {
  name: string;
  /** PyTorch order (row-major): e.g. [r, in] for lora_A. */
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {}

/** Header padded with spaces so the data starts 8-byte aligned (what the reference writer does). */
export function encodeSafetensors(tensors: readonly SafeTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new SafetensorsError(`${t.name}: shape [${t.shape}] holds ${count} values, data has ${t.data.length}`);
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += " ".repeat(pad);
  const head = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: readonly SafeTensor[], metadata: Record<string, string> = {}): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, encodeSafetensors(tensors, metadata));
  renameSync(tmp, path);
}

export interface SafetensorsFile {
  tensors: SafeTensor[];
  metadata: Record<string, string>;
}

/** Reads every tensor as f32 (F32, F16, BF16), checking that offsets tile the data exactly. */
export function decodeSafetensors(bytes: Uint8Array, what = "safetensors"): SafetensorsFile {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${what}: ${why}`);
  };
  if (bytes.length < 8) fail("too short for a header length");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (8 + n > bytes.length) fail(`header of ${n} bytes but the file has ${bytes.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8"));
  } catch (e) {
    return fail(`header is not JSON: ${(e as Error).message}`);
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__") as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
  const spans = entries.map(([, e]) => e.data_offsets).sort((a, b) => a[0] - b[0]);
  let expect = 0;
  for (const [b, e] of spans) {
    if (b !== expect || e < b) fail(`tensor data does not tile the buffer (span ${b}..${e}, expected to start at ${expect})`);
    expect = e;
  }
  if (expect !== dataLength) fail(`tensors cover ${expect} bytes of ${dataLength}`);
  const tensors = entries.map(([name, e]) => {
    const count = e.shape.reduce((a, b) => a * b, 1);
    const [b, end] = e.data_offsets;
    const size = { F32: 4, F16: 2, BF16: 2 }[e.dtype] ?? fail(`${name}: dtype ${e.dtype} not supported (F32, F16, BF16)`);
    if (end - b !== count * size) fail(`${name}: ${e.dtype} [${e.shape}] needs ${count * size} bytes, has ${end - b}`);
    const raw = new Uint8Array(bytes.subarray(dataStart + b, dataStart + end)); // a copy: aligned, and a Buffer's slice() would be a view
    let data: Float32Array;
    if (e.dtype === "F32") data = new Float32Array(raw.buffer, 0, count);
    else {
      const bits = new Uint16Array(raw.buffer, 0, count);
      data = Float32Array.from(bits, e.dtype === "F16" ? f16BitsToF32 : bf16BitsToF32);
    }
    return { name, shape: e.shape, data };
  });
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  return decodeSafetensors(readFileSync(path), path);
}
