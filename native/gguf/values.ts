// Typed GGUF metadata values. Every value keeps its on-disk type so that a file read and
// written back is byte-identical in its metadata (llama.cpp checks key types strictly: a
// u32 hyper-parameter stored as i32 fails to load).
//
// Numeric arrays are typed arrays (a 151k-entry token-type list stays compact); u64/i64
// use bigint because such keys may exceed 2^53.

import type { GgufValueTypeName } from "./types.ts";

export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigIntType = "u64" | "i64";

export type GgufScalar =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string };

/** Typed-array class backing each numeric array item type. */
export interface NumericArrayTypes {
  u8: Uint8Array;
  i8: Int8Array;
  u16: Uint16Array;
  i16: Int16Array;
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
  u64: BigUint64Array;
  i64: BigInt64Array;
}
export type GgufNumericItemType = keyof NumericArrayTypes;

export type GgufArray =
  | { [K in GgufNumericItemType]: { type: "array"; itemType: K; value: NumericArrayTypes[K] } }[GgufNumericItemType]
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "array"; value: GgufArray[] };

export type GgufValue = GgufScalar | GgufArray;

/** Metadata in file order. A Map keeps insertion order, which the writer preserves. */
export type GgufMetadata = Map<string, GgufValue>;

export const NUMERIC_ARRAY_CTORS = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
} as const;

export function isNumericItemType(t: GgufValueTypeName): t is GgufNumericItemType {
  return t in NUMERIC_ARRAY_CTORS;
}

// Constructors, so call sites read `gv.u32(896)` rather than spelling out objects.
export const u8 = (value: number): GgufScalar => ({ type: "u8", value });
export const i8 = (value: number): GgufScalar => ({ type: "i8", value });
export const u16 = (value: number): GgufScalar => ({ type: "u16", value });
export const i16 = (value: number): GgufScalar => ({ type: "i16", value });
export const u32 = (value: number): GgufScalar => ({ type: "u32", value });
export const i32 = (value: number): GgufScalar => ({ type: "i32", value });
export const f32 = (value: number): GgufScalar => ({ type: "f32", value });
export const f64 = (value: number): GgufScalar => ({ type: "f64", value });
export const u64 = (value: bigint | number): GgufScalar => ({ type: "u64", value: BigInt(value) });
export const i64 = (value: bigint | number): GgufScalar => ({ type: "i64", value: BigInt(value) });
export const bool = (value: boolean): GgufScalar => ({ type: "bool", value });
export const str = (value: string): GgufScalar => ({ type: "string", value });
export const strings = (value: string[]): GgufArray => ({ type: "array", itemType: "string", value });
export const bools = (value: boolean[]): GgufArray => ({ type: "array", itemType: "bool", value });
export function numbers<K extends GgufNumericItemType>(itemType: K, value: NumericArrayTypes[K]): GgufArray {
  return { type: "array", itemType, value } as GgufArray;
}
export const arrays = (value: GgufArray[]): GgufArray => ({ type: "array", itemType: "array", value });

/** The value as plain JS (number, bigint, string, boolean or an array of them), type dropped. */
export function plain(v: GgufValue): unknown {
  if (v.type !== "array") return v.value;
  if (v.itemType === "array") return v.value.map(plain);
  return Array.from(v.value as ArrayLike<unknown>);
}

/** Short human rendering for summaries and errors; long arrays are elided. */
export function describeValue(v: GgufValue, maxItems = 4): string {
  if (v.type === "string") return JSON.stringify(v.value.length > 80 ? `${v.value.slice(0, 77)}...` : v.value);
  if (v.type !== "array") return `${String(v.value)} (${v.type})`;
  const items = v.itemType === "array" ? v.value : Array.from(v.value as ArrayLike<unknown>);
  const shown = items.slice(0, maxItems).map((x) => (typeof x === "object" && x !== null ? describeValue(x as GgufValue, 2) : JSON.stringify(typeof x === "bigint" ? x.toString() : x)));
  const more = items.length > maxItems ? `, ... ${items.length - maxItems} more` : "";
  return `[${shown.join(", ")}${more}] (${v.itemType}[${items.length}])`;
}
