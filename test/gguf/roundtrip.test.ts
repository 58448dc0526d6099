import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readGguf, readTensorBytes, readTensorF32 } from "../../native/gguf/reader.ts";
import { GgmlType, alignUp } from "../../native/gguf/types.ts";
import * as gv from "../../native/gguf/values.ts";
import { plain, type GgufMetadata, type GgufValue } from "../../native/gguf/values.ts";
import { llamaCppDirs, vocabPath } from "../../native/gguf/vocab.ts";
import { writeGguf, type GgufTensorSource } from "../../native/gguf/writer.ts";
import { pseudoRandomBytes, tempDir } from "./helpers.ts";

const dir = tempDir("gguf-roundtrip");

function everyValueType(): GgufMetadata {
  const m: GgufMetadata = new Map<string, GgufValue>([
    ["general.architecture", gv.str("test")],
    ["t.u8", gv.u8(255)],
    ["t.i8", gv.i8(-128)],
    ["t.u16", gv.u16(65535)],
    ["t.i16", gv.i16(-32768)],
    ["t.u32", gv.u32(4294967295)],
    ["t.i32", gv.i32(-2147483648)],
    ["t.f32", gv.f32(3.5)],
    ["t.f64", gv.f64(0.1)],
    ["t.bool.true", gv.bool(true)],
    ["t.bool.false", gv.bool(false)],
    ["t.string.empty", gv.str("")],
    ["t.string.unicode", gv.str("héllo ✓ 😀 \u0000 nul inside")],
    ["t.u64", gv.u64(2n ** 64n - 1n)],
    ["t.i64", gv.i64(-(2n ** 63n))],
    ["t.arr.u8", gv.numbers("u8", new Uint8Array([0, 1, 255]))],
    ["t.arr.i8", gv.numbers("i8", new Int8Array([-128, 0, 127]))],
    ["t.arr.u16", gv.numbers("u16", new Uint16Array([0, 65535]))],
    ["t.arr.i16", gv.numbers("i16", new Int16Array([-32768, 32767]))],
    ["t.arr.u32", gv.numbers("u32", new Uint32Array([0, 4294967295]))],
    ["t.arr.i32", gv.numbers("i32", new Int32Array([-1, 7, 2147483647]))],
    ["t.arr.f32", gv.numbers("f32", new Float32Array([1.5, -0, Infinity, NaN]))],
    ["t.arr.f64", gv.numbers("f64", new Float64Array([Math.PI, -1e300]))],
    ["t.arr.u64", gv.numbers("u64", new BigUint64Array([0n, 2n ** 64n - 1n]))],
    ["t.arr.i64", gv.numbers("i64", new BigInt64Array([-(2n ** 63n), 5n]))],
    ["t.arr.bool", gv.bools([true, false, true])],
    ["t.arr.string", gv.strings(["", "a", "Ġthe", "日本語", "😀"])],
    ["t.arr.empty", gv.numbers("f32", new Float32Array(0))],
    ["t.arr.empty.strings", gv.strings([])],
    ["t.arr.nested", gv.arrays([gv.numbers("u8", new Uint8Array([9, 8])), gv.strings(["x", "y"]), gv.arrays([gv.bools([false])])])],
  ]);
  return m;
}

/** Plain, comparable form of metadata (typed arrays to arrays, NaN to a string). */
function comparable(m: GgufMetadata): unknown {
  const norm = (v: GgufValue): unknown => {
    if (v.type !== "array") return { type: v.type, value: typeof v.value === "number" && Number.isNaN(v.value) ? "NaN" : v.value };
    if (v.itemType === "array") return { itemType: "array", value: v.value.map(norm) };
    return {
      itemType: v.itemType,
      ctor: v.value.constructor.name,
      value: Array.from(v.value as ArrayLike<unknown>, (x) => (typeof x === "number" && Number.isNaN(x) ? "NaN" : Object.is(x, -0) ? "-0" : x)),
    };
  };
  return [...m].map(([k, v]) => [k, norm(v)]);
}

const tensorSpecs: { name: string; dims: number[]; type: number; bytes: number }[] = [
  { name: "f32.matrix", dims: [5, 3], type: GgmlType.F32, bytes: 60 },
  { name: "f16.vector", dims: [7], type: GgmlType.F16, bytes: 14 },
  { name: "bf16.3d", dims: [4, 2, 2], type: GgmlType.BF16, bytes: 32 },
  { name: "q8_0", dims: [64, 3], type: GgmlType.Q8_0, bytes: 2 * 3 * 34 },
  { name: "q4_k", dims: [256, 2], type: GgmlType.Q4_K, bytes: 2 * 144 },
  { name: "q4_0", dims: [32], type: GgmlType.Q4_0, bytes: 18 },
  { name: "i8.4d", dims: [3, 1, 1, 2], type: GgmlType.I8, bytes: 6 },
  { name: "iq2_xxs", dims: [256], type: GgmlType.IQ2_XXS, bytes: 66 },
];

describe("write -> read round trip", () => {
  for (const alignment of [32, 64, 1]) {
    test(`every value type and tensor type, alignment ${alignment}`, async () => {
      const path = join(dir, `all-${alignment}.gguf`);
      const data = tensorSpecs.map((t, i) => pseudoRandomBytes(t.bytes, i + 1));
      const tensors: GgufTensorSource[] = tensorSpecs.map((t, i) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        // Alternate between whole buffers, sync chunk generators and async ones.
        data:
          i % 3 === 0
            ? data[i]!
            : i % 3 === 1
              ? function* () {
                  for (let at = 0; at < t.bytes; at += 5) yield data[i]!.slice(at, at + 5);
                }
              : async function* () {
                  yield data[i]!.slice(0, 3);
                  yield new Uint8Array(0);
                  yield data[i]!.slice(3);
                },
      }));
      const metadata = everyValueType();
      const written = await writeGguf(path, { metadata, tensors, alignment });
      const file = readGguf(path);

      expect(file.version).toBe(3);
      expect(file.alignment).toBe(alignment);
      const expectedMeta = everyValueType();
      if (alignment !== 32) expectedMeta.set("general.alignment", gv.u32(alignment));
      expect(comparable(file.metadata)).toEqual(comparable(expectedMeta));

      expect(file.dataOffset % alignment).toBe(0);
      expect(file.dataOffset).toBe(written.dataOffset);
      expect(file.fileSize).toBe(written.bytes);
      expect(file.tensors.map((t) => [t.name, t.dims, t.type, t.byteSize])).toEqual(tensorSpecs.map((t) => [t.name, t.dims, t.type, t.bytes]));
      let expectedOffset = 0;
      for (const [i, t] of file.tensors.entries()) {
        expect(t.offset).toBe(expectedOffset); // contiguous, as llama.cpp requires
        expect(t.fileOffset % alignment).toBe(0);
        expect(readTensorBytes(file, t)).toEqual(data[i]!);
        expectedOffset = alignUp(t.offset + t.byteSize, alignment);
      }
      expect(file.fileSize).toBe(file.dataOffset + expectedOffset);
      // Padding is zeros.
      const raw = readFileSync(path);
      expect(raw.subarray(file.headerEnd, file.dataOffset).every((b) => b === 0)).toBe(true);
    });
  }

  test("typed-array data sources and float decoding", async () => {
    const path = join(dir, "floats.gguf");
    const values = new Float32Array([0, 1, -2.5, 65504, 1e-8, 3.25]);
    const halves = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]);
    const bf = new Uint16Array([0x3f80, 0xbfc0]);
    await writeGguf(path, {
      metadata: [["general.architecture", gv.str("test")]],
      tensors: [
        { name: "a", dims: [6], type: GgmlType.F32, data: values },
        { name: "b", dims: [2, 2], type: GgmlType.F16, data: halves },
        { name: "c", dims: [2], type: GgmlType.BF16, data: bf },
      ],
    });
    const file = readGguf(path);
    expect(Array.from(readTensorF32(file, "a"))).toEqual(Array.from(values));
    expect(Array.from(readTensorF32(file, "b"))).toEqual([1, -2, 65504, 2 ** -24]);
    expect(Array.from(readTensorF32(file, "c"))).toEqual([1, -1.5]);
    expect(readTensorBytes(file, "a", 4, 8)).toEqual(new Uint8Array(values.buffer.slice(4, 8)));
  });

  test("a 3 MB string and 200k strings cross the reader's 1 MiB window", async () => {
    const path = join(dir, "big-strings.gguf");
    const big = "x".repeat(3 << 20) + "é";
    const many = Array.from({ length: 200_000 }, (_, i) => (i % 7 === 0 ? `Ġtök${i}` : `t${i}`.repeat(1 + (i % 5))));
    await writeGguf(path, {
      metadata: [
        ["a.many", gv.strings(many)],
        ["b.big", gv.str(big)],
        ["c.after", gv.u32(42)],
      ],
      tensors: [{ name: "w", dims: [3], type: GgmlType.F32, data: new Float32Array([1, 2, 3]) }],
    });
    const file = readGguf(path);
    expect(file.metadata.get("a.many")).toEqual(gv.strings(many));
    expect(file.metadata.get("b.big")).toEqual(gv.str(big));
    expect(file.metadata.get("c.after")).toEqual(gv.u32(42));
    expect(Array.from(readTensorF32(file, "w"))).toEqual([1, 2, 3]);
  });

  test("a real vocabulary's metadata is re-serialized byte for byte", async () => {
    const source = vocabPath("qwen2");
    const original = readFileSync(source);
    const path = join(dir, "vocab-copy.gguf");
    await writeGguf(path, { metadata: readGguf(source).metadata, tensors: [] });
    const copy = readFileSync(path);
    // The writer pads the header to the alignment even with no tensors (as llama.cpp's does).
    expect(copy.length).toBe(alignUp(original.length, 32));
    expect(Buffer.compare(copy.subarray(0, original.length), original)).toBe(0);
  });

  test("creates missing parent directories", async () => {
    const path = join(dir, "new", "nested", "m.gguf");
    await writeGguf(path, { metadata: [["k", gv.str("v")]], tensors: [] });
    expect(readGguf(path).metadata.get("k")).toEqual(gv.str("v"));
  });

  test("replaces an existing file atomically and leaves no temp files", async () => {
    const sub = join(dir, "atomic");
    const path = join(sub, "model.gguf");
    await Bun.write(join(sub, "keep"), "");
    writeFileSync(path, "old contents");
    await writeGguf(path, { metadata: [["k", gv.u8(1)]], tensors: [] });
    expect(readGguf(path).metadata.get("k")).toEqual(gv.u8(1));
    expect(readdirSync(sub).sort()).toEqual(["keep", "model.gguf"]);
  });
});

describe("writer rejects bad input, leaving nothing behind", () => {
  const cases: [string, Parameters<typeof writeGguf>[1], RegExp][] = [
    ["too few bytes", { metadata: [], tensors: [{ name: "w", dims: [4], type: GgmlType.F32, data: new Uint8Array(12) }] }, /tensor "w".*only 12 bytes, expected 16/],
    ["too many bytes", { metadata: [], tensors: [{ name: "w", dims: [2], type: GgmlType.F32, data: () => [new Uint8Array(4), new Uint8Array(8)] }] }, /tensor "w".*more than/],
    ["duplicate tensor", { metadata: [], tensors: [{ name: "w", dims: [1], type: GgmlType.F32, data: new Uint8Array(4) }, { name: "w", dims: [1], type: GgmlType.F32, data: new Uint8Array(4) }] }, /duplicate tensor name "w"/],
    ["long name", { metadata: [], tensors: [{ name: "n".repeat(64), dims: [1], type: GgmlType.F32, data: new Uint8Array(4) }] }, /longer than 63 bytes/],
    ["partial block", { metadata: [], tensors: [{ name: "q", dims: [16], type: GgmlType.Q8_0, data: new Uint8Array(0) }] }, /tensor "q".*multiple of 32/],
    ["five dims", { metadata: [], tensors: [{ name: "d", dims: [1, 1, 1, 1, 1], type: GgmlType.F32, data: new Uint8Array(4) }] }, /5 dimensions/],
    ["u8 out of range", { metadata: [["k", gv.u8(300)]], tensors: [] }, /metadata "k": 300 does not fit a u8/],
    ["alignment not a power of two", { metadata: [], tensors: [], alignment: 48 }, /not a power of two/],
    ["alignment key of the wrong type", { metadata: [["general.alignment", gv.u64(64)]], tensors: [] }, /general.alignment must be a u32/],
  ];
  for (const [name, options, message] of cases) {
    test(name, async () => {
      const sub = join(dir, `bad-${name.replaceAll(" ", "-")}`);
      await Bun.write(join(sub, "keep"), "");
      const path = join(sub, "out.gguf");
      await expect(writeGguf(path, options)).rejects.toThrow(message);
      expect(existsSync(path)).toBe(false);
      expect(readdirSync(sub)).toEqual(["keep"]);
    });
  }
});

// An independent reader: gguf-py from the llama.cpp tree, when python3 has numpy (nothing is installed).
const ggufPy = llamaCppDirs().map((d) => join(d, "gguf-py")).find((d) => existsSync(join(d, "gguf", "gguf_reader.py")));
const hasNumpy = ggufPy !== undefined && spawnSync("python3", ["-c", "import numpy"]).status === 0;

describe.skipIf(!hasNumpy)("cross-check with llama.cpp's gguf-py reader", () => {
  test("keys, value types, values and tensors read the same", async () => {
    const path = join(dir, "for-gguf-py.gguf");
    // gguf-py cannot render nested arrays, and JSON has no NaN: leave those out here.
    const metadata = new Map([...everyValueType()].filter(([k]) => k !== "t.arr.nested" && k !== "t.arr.f32"));
    metadata.set("t.arr.f32", gv.numbers("f32", new Float32Array([1.5, -0.25])));
    const q8 = pseudoRandomBytes(2 * 34, 7);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff]);
    await writeGguf(path, {
      metadata,
      tensors: [
        { name: "blk.0.attn_q.weight", dims: [2, 2], type: GgmlType.F16, data: f16 },
        { name: "q", dims: [64], type: GgmlType.Q8_0, data: q8 },
        { name: "v", dims: [3], type: GgmlType.F32, data: new Float32Array([1, 2, 3]) },
      ],
      alignment: 64,
    });
    const script = `
import json, sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
fields = {k: [[t.name for t in f.types], f.contents()] for k, f in r.fields.items() if not k.startswith("GGUF.")}
tensors = [[t.name, [int(x) for x in t.shape], t.tensor_type.name, int(t.data_offset), t.data.tobytes().hex()] for t in r.tensors]
print(json.dumps({"fields": fields, "tensors": tensors, "alignment": r.alignment}, default=lambda o: o.item()))`;
    const run = spawnSync("python3", ["-c", script, path], { env: { ...process.env, PYTHONPATH: ggufPy }, encoding: "utf8" });
    expect(run.stderr).toBe("");
    const py = JSON.parse(run.stdout);
    const file = readGguf(path);
    expect(py.alignment).toBe(64);
    const pyTypeName: Record<string, string> = { UINT8: "u8", INT8: "i8", UINT16: "u16", INT16: "i16", UINT32: "u32", INT32: "i32", FLOAT32: "f32", BOOL: "bool", STRING: "string", ARRAY: "array", UINT64: "u64", INT64: "i64", FLOAT64: "f64" };
    const ours = Object.fromEntries(
      [...file.metadata].map(([k, v]) => {
        // gguf-py records no item type for an empty array.
        const types = v.type === "array" ? (v.value.length > 0 ? ["array", v.itemType] : ["array"]) : [v.type];
        const value = plain(v);
        const jsonish = (x: unknown) => (typeof x === "bigint" ? Number(x) : x);
        return [k, [types, Array.isArray(value) ? value.map(jsonish) : jsonish(value)]];
      }),
    );
    const theirs = Object.fromEntries(
      Object.entries(py.fields as Record<string, [string[], unknown]>).map(([k, [types, value]]) => [k, [types.map((t) => pyTypeName[t.replace("GGUFValueType.", "")] ?? t), value]]),
    );
    expect(theirs).toEqual(ours);
    expect(py.tensors).toEqual(
      file.tensors.map((t) => [t.name, t.dims, t.typeName, t.fileOffset, Buffer.from(readTensorBytes(file, t)).toString("hex")]),
    );
  });
});
