// Our ids and block layouts are hand-written; check them against the llama.cpp tree itself.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  GgmlType,
  GgufValueTypeId,
  LlamaFileType,
  ggmlTypeLayout,
  tensorByteSize,
  type GgmlTypeName,
} from "../../native/gguf/types.ts";
import { llamaCppDirs } from "../../native/gguf/vocab.ts";

const tree = llamaCppDirs().find((d) => existsSync(join(d, "ggml", "include", "ggml.h")));

function enumEntries(source: string, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of source.split("\n")) {
    const m = line.match(new RegExp(`^\\s*${prefix}(\\w+)\\s*=\\s*(\\d+)\\s*,`));
    if (m && m[1] !== "COUNT") out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe.skipIf(!tree)("against the llama.cpp tree", () => {
  test("ggml type ids match ggml.h", () => {
    const header = enumEntries(readFileSync(join(tree!, "ggml/include/ggml.h"), "utf8"), "GGML_TYPE_");
    expect(header.size).toBeGreaterThan(30);
    expect(Object.fromEntries(header)).toEqual({ ...GgmlType });
  });

  test("GGUF value type ids match gguf.h", () => {
    const header = enumEntries(readFileSync(join(tree!, "ggml/include/gguf.h"), "utf8"), "GGUF_TYPE_");
    const names: Record<string, string> = { UINT8: "u8", INT8: "i8", UINT16: "u16", INT16: "i16", UINT32: "u32", INT32: "i32", FLOAT32: "f32", BOOL: "bool", STRING: "string", ARRAY: "array", UINT64: "u64", INT64: "i64", FLOAT64: "f64" };
    const mapped = Object.fromEntries([...header].map(([k, v]) => [names[k] ?? k, v]));
    expect(mapped).toEqual({ ...GgufValueTypeId });
  });

  test("block sizes and bytes match gguf-py's GGML_QUANT_SIZES", () => {
    const py = readFileSync(join(tree!, "gguf-py/gguf/constants.py"), "utf8");
    const table = py.slice(py.indexOf("GGML_QUANT_SIZES"));
    const rows = [...table.slice(0, table.indexOf("}")).matchAll(/GGMLQuantizationType\.(\w+):\s*\((\w+),\s*([^)]+)\)/g)];
    expect(rows.length).toBeGreaterThan(30);
    for (const [, name, block, bytes] of rows) {
      const evaluate = (expr: string) => {
        const arithmetic = expr.replaceAll("QK_K", "256").replaceAll("//", "/");
        if (!/^[\d\s+*/()-]+$/.test(arithmetic)) throw new Error(`unexpected expression ${expr}`);
        return Function(`return (${arithmetic})`)() as number;
      };
      const layout = ggmlTypeLayout(GgmlType[name as GgmlTypeName]);
      expect({ name, blockSize: layout?.blockSize, blockBytes: layout?.blockBytes }).toEqual({
        name,
        blockSize: evaluate(block!),
        blockBytes: evaluate(bytes!),
      });
    }
  });

  test("file type ids match gguf-py's LlamaFileType", () => {
    const py = readFileSync(join(tree!, "gguf-py/gguf/constants.py"), "utf8");
    const body = py.slice(py.indexOf("class LlamaFileType"), py.indexOf("GUESSED", py.indexOf("class LlamaFileType")));
    const entries = Object.fromEntries([...body.matchAll(/^\s+(\w+)\s*=\s*(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
    expect(entries).toEqual({ ...LlamaFileType });
  });
});

describe("tensorByteSize", () => {
  test("scalar and block types", () => {
    expect(tensorByteSize(GgmlType.F32, [64, 3])).toBe(64 * 3 * 4);
    expect(tensorByteSize(GgmlType.F16, [7])).toBe(14);
    expect(tensorByteSize(GgmlType.Q8_0, [64, 2])).toBe(2 * 2 * 34);
    expect(tensorByteSize(GgmlType.Q4_K, [512, 3])).toBe(2 * 3 * 144);
  });
  test("rejects rows that are not whole blocks", () => {
    expect(() => tensorByteSize(GgmlType.Q4_K, [64, 2])).toThrow(/multiple of 256/);
    expect(() => tensorByteSize(99, [1])).toThrow(/unknown ggml type/);
  });
});
