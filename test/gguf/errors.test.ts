// Every malformed file must fail with a GgufError whose message names the file.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GgufError, readGguf } from "../../native/gguf/reader.ts";
import { GgmlType } from "../../native/gguf/types.ts";
import * as gv from "../../native/gguf/values.ts";
import { writeGguf } from "../../native/gguf/writer.ts";
import { tempDir } from "./helpers.ts";

const dir = tempDir("gguf-errors");
const validPath = join(dir, "valid.gguf");
let valid: Buffer;

beforeAll(async () => {
  await writeGguf(validPath, {
    metadata: [
      ["general.architecture", gv.str("test")],
      ["tokenizer.ggml.tokens", gv.strings(["a", "b", "c"])],
    ],
    tensors: [
      { name: "first", dims: [8, 4], type: GgmlType.F32, data: new Float32Array(32) },
      { name: "second", dims: [64], type: GgmlType.F16, data: new Uint16Array(64) },
    ],
  });
  valid = readFileSync(validPath);
});

/** Writes `bytes` as a file and expects reading it to fail with `message`, naming the file. */
function expectFailure(name: string, bytes: Uint8Array, message: RegExp): GgufError {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  let caught: unknown;
  try {
    readGguf(path);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GgufError);
  const err = caught as GgufError;
  expect(err.path).toBe(path);
  expect(err.message.startsWith(`${path}: `)).toBe(true);
  expect(err.message).toMatch(message);
  return err;
}

function patched(mutate: (b: Buffer) => void): Buffer {
  const copy = Buffer.from(valid);
  mutate(copy);
  return copy;
}

describe("readGguf errors", () => {
  test("the valid file reads", () => {
    expect(readGguf(validPath).tensors.map((t) => t.name)).toEqual(["first", "second"]);
  });

  test("missing file", () => {
    const path = join(dir, "does-not-exist.gguf");
    expect(() => readGguf(path)).toThrow(new RegExp(`^${path}: cannot open`));
  });

  test("a directory", () => {
    expect(() => readGguf(dir)).toThrow(new RegExp(`^${dir}: not a regular file`));
  });

  test("bad magic", () => {
    expectFailure("zip.gguf", new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0]), /not a GGUF file: magic is "PK\\x03\\x04", expected "GGUF"/);
  });

  test("empty and tiny files", () => {
    expectFailure("empty.gguf", new Uint8Array(0), /not a GGUF file: 0 bytes/);
    expectFailure("two.gguf", new Uint8Array([0x47, 0x47]), /not a GGUF file: 2 bytes/);
  });

  test("unsupported versions", () => {
    expectFailure("v1.gguf", patched((b) => b.writeUInt32LE(1, 4)), /unsupported GGUF version 1; supported: 2, 3/);
    expectFailure("v4.gguf", patched((b) => b.writeUInt32LE(4, 4)), /unsupported GGUF version 4/);
    expectFailure("big-endian.gguf", patched((b) => b.writeUInt32BE(3, 4)), /big-endian/);
  });

  test("version 2 reads (same layout as 3)", () => {
    const path = join(dir, "v2.gguf");
    writeFileSync(path, patched((b) => b.writeUInt32LE(2, 4)));
    expect(readGguf(path).version).toBe(2);
  });

  test("truncated inside the header counts", () => {
    expectFailure("cut-12.gguf", valid.subarray(0, 12), /truncated file: the header needs bytes 8\.\.16 but the file has 12 bytes/);
  });

  test("truncated inside the metadata", () => {
    const file = readGguf(validPath);
    const tokensAt = valid.indexOf("tokenizer.ggml.tokens");
    expectFailure("cut-meta.gguf", valid.subarray(0, tokensAt + 30), /truncated file: metadata entry 1 "tokenizer.ggml.tokens"/);
    expect(file.metadata.size).toBe(2);
  });

  test("truncated inside the tensor table", () => {
    const secondAt = valid.indexOf("second");
    expectFailure("cut-table.gguf", valid.subarray(0, secondAt + 10), /truncated file: tensor info 1 "second"/);
  });

  test("tensor data extends past the end of the file", () => {
    const file = readGguf(validPath);
    const second = file.tensors[1]!;
    const err = expectFailure("cut-data.gguf", valid.subarray(0, second.fileOffset + 10), /truncated file: tensor "second" data spans bytes/);
    expect(err.message).toContain(`${second.fileOffset}..${second.fileOffset + second.byteSize}`);
  });

  test("a corrupt length fails as truncation, not as a huge allocation", () => {
    const at = valid.indexOf("tokenizer.ggml.tokens") - 8; // the key's u64 length
    expectFailure("huge-length.gguf", patched((b) => b.writeBigUInt64LE(2n ** 60n, at)), /truncated file: metadata entry 1 declares a string of length/);
  });

  test("misaligned tensor offset", () => {
    const end = readGguf(validPath).headerEnd; // the last tensor's u64 offset ends here
    expectFailure("misaligned.gguf", patched((b) => b.writeBigUInt64LE(b.readBigUInt64LE(end - 8) + 4n, end - 8)), /tensor "second" starts at data offset \d+, not a multiple of the alignment 32/);
  });

  test("unknown ggml type", () => {
    const end = readGguf(validPath).headerEnd; // i32 type sits before the u64 offset
    expectFailure("bad-type.gguf", patched((b) => b.writeInt32LE(99, end - 12)), /tensor "second" has unknown ggml type id 99/);
  });

  test("unknown metadata value type", () => {
    const typeAt = valid.indexOf("general.architecture") + "general.architecture".length;
    expectFailure("bad-kv-type.gguf", patched((b) => b.writeInt32LE(42, typeAt)), /metadata entry 0 "general.architecture": unknown value type id 42/);
  });
});
