// The tokenizer hash of a GGUF model (model-info.tokenizerSha256, SPEC §2/§9).
//
// Recipe (version "selftune-tokenizer-v1"): take every metadata key that starts
// with "tokenizer." except the chat template keys ("tokenizer.chat_template" and
// "tokenizer.chat_template.*": a template never affects tokenization and is never
// applied), sort the keys by code unit, and feed sha256 with
//   "selftune-tokenizer-v1\n", then per key:
//   u32le(byte length of key) key  u8(type code) value
// where a value is encoded by type:
//   string            u64le(byte length) utf8 bytes
//   bool              one byte 0/1
//   u8 .. f64         the number's little-endian bytes in its own type
//   u64/i64           8 little-endian bytes
//   array             u8(item type code) u64le(count) then each item as above
//                     (numeric arrays: their raw little-endian bytes, in one piece)
// Type codes are GGUF's (u8 0, i8 1, u16 2, i16 3, u32 4, i32 5, f32 6, bool 7,
// string 8, array 9, u64 10, i64 11, f64 12). So two files with the same vocabulary,
// merges, token types, scores, pre-tokenizer and special-token ids hash equally,
// whatever their weights; the chat template and all other metadata do not count.
import { readGguf } from "../../native/gguf/reader.ts";
import type { GgufArray, GgufValue } from "../../native/gguf/values.ts";
import { cachedFileDigest } from "./file-hash.ts";

export const TOKENIZER_HASH_RECIPE = "selftune-tokenizer-v1";

const TYPE_CODE: Record<string, number> = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 };

const enc = new TextEncoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
function u64(n: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

function code(type: string): number {
  const c = TYPE_CODE[type];
  if (c === undefined) throw new Error(`tokenizer hash: unknown GGUF value type '${type}'`);
  return c;
}

function scalarBytes(v: Exclude<GgufValue, GgufArray>): Uint8Array {
  const dv = (n: number) => {
    const b = new Uint8Array(n);
    return { b, d: new DataView(b.buffer) };
  };
  switch (v.type) {
    case "string": {
      const s = enc.encode(v.value);
      const out = new Uint8Array(8 + s.length);
      out.set(u64(s.length), 0);
      out.set(s, 8);
      return out;
    }
    case "bool":
      return Uint8Array.of(v.value ? 1 : 0);
    case "u8": { const { b, d } = dv(1); d.setUint8(0, v.value); return b; }
    case "i8": { const { b, d } = dv(1); d.setInt8(0, v.value); return b; }
    case "u16": { const { b, d } = dv(2); d.setUint16(0, v.value, true); return b; }
    case "i16": { const { b, d } = dv(2); d.setInt16(0, v.value, true); return b; }
    case "u32": { const { b, d } = dv(4); d.setUint32(0, v.value, true); return b; }
    case "i32": { const { b, d } = dv(4); d.setInt32(0, v.value, true); return b; }
    case "f32": { const { b, d } = dv(4); d.setFloat32(0, v.value, true); return b; }
    case "f64": { const { b, d } = dv(8); d.setFloat64(0, v.value, true); return b; }
    case "u64": { const { b, d } = dv(8); d.setBigUint64(0, v.value, true); return b; }
    case "i64": { const { b, d } = dv(8); d.setBigInt64(0, v.value, true); return b; }
  }
}

function feedValue(h: Bun.CryptoHasher, v: GgufValue): void {
  if (v.type !== "array") {
    h.update(scalarBytes(v));
    return;
  }
  h.update(Uint8Array.of(code(v.itemType)));
  h.update(u64(v.value.length));
  switch (v.itemType) {
    case "string":
      for (const s of v.value) h.update(scalarBytes({ type: "string", value: s }));
      return;
    case "bool":
      h.update(Uint8Array.from(v.value, (x) => (x ? 1 : 0)));
      return;
    case "array":
      for (const a of v.value) feedValue(h, a);
      return;
    default: {
      const t = v.value;
      h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    }
  }
}

/** The tokenizer keys a hash covers, in hashing order. */
export function tokenizerKeys(keys: Iterable<string>): string[] {
  return [...keys].filter((k) => k.startsWith("tokenizer.") && k !== "tokenizer.chat_template" && !k.startsWith("tokenizer.chat_template.")).sort();
}

/** Compute the tokenizer hash of a GGUF file (reads only the metadata). */
export function computeTokenizerSha256(path: string): string {
  const file = readGguf(path);
  const keys = tokenizerKeys(file.metadata.keys());
  if (!keys.includes("tokenizer.ggml.tokens")) throw new Error(`${path}: no tokenizer.ggml.tokens in the GGUF metadata: not a model with a vocabulary`);
  const h = new Bun.CryptoHasher("sha256");
  h.update(`${TOKENIZER_HASH_RECIPE}\n`);
  for (const key of keys) {
    const v = file.metadata.get(key)!;
    const k = enc.encode(key);
    h.update(u32(k.length));
    h.update(k);
    h.update(Uint8Array.of(code(v.type)));
    feedValue(h, v);
  }
  return h.digest("hex");
}

/** The tokenizer hash, cached like the file hash (by path, size, mtime). */
export function tokenizerSha256(path: string): Promise<string> {
  return cachedFileDigest(path, TOKENIZER_HASH_RECIPE, computeTokenizerSha256);
}
