// GGUF format constants: value types, ggml tensor types and their block layouts, file types.
// Ids are checked against ggml/include/ggml.h, ggml/include/gguf.h and gguf-py/gguf/constants.py
// of the llama.cpp tree we build against (ggml 0.25.1); ids are part of the on-disk format and
// never change meaning, removed types keep their numbers as gaps.

export const GGUF_MAGIC = "GGUF";
/** The version we write. We read 2 and 3 (same layout; v1 used 32-bit counts and is obsolete). */
export const GGUF_VERSION = 3;
export const GGUF_READABLE_VERSIONS: readonly number[] = [2, 3];
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_ALIGNMENT_KEY = "general.alignment";
/** ggml tensors have at most 4 dimensions (GGML_MAX_DIMS). */
export const GGML_MAX_DIMS = 4;
/** ggml keeps tensor names in a 64-byte buffer including the NUL (GGML_MAX_NAME). */
export const GGML_MAX_NAME_BYTES = 63;

/** GGUF metadata value types as stored on disk (enum gguf_type, stored as int32). */
export const GgufValueTypeId = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
export type GgufValueTypeName = keyof typeof GgufValueTypeId;

const valueTypeNameById = new Map<number, GgufValueTypeName>(
  Object.entries(GgufValueTypeId).map(([name, id]) => [id, name as GgufValueTypeName]),
);
export function ggufValueTypeName(id: number): GgufValueTypeName | undefined {
  return valueTypeNameById.get(id);
}

/** Bytes per element of the fixed-size value types (strings and arrays are variable). */
export const GGUF_SCALAR_BYTES: Record<Exclude<GgufValueTypeName, "string" | "array">, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** ggml tensor types (enum ggml_type). */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  // 4, 5: Q4_2, Q4_3 (removed)
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  // 31-33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 (removed from GGUF files; repacked at load time)
  TQ1_0: 34,
  TQ2_0: 35,
  // 36-38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 (removed)
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
  Q2_0: 42,
} as const;
export type GgmlTypeName = keyof typeof GgmlType;
export type GgmlTypeId = (typeof GgmlType)[GgmlTypeName];

export interface GgmlTypeLayout {
  name: GgmlTypeName;
  /** Elements per block; a row's element count must be a multiple of it. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

const QK_K = 256;

// Block layouts from the block_* structs in ggml-common.h (sizes are their static_asserts).
const layouts: Record<GgmlTypeName, [blockSize: number, blockBytes: number]> = {
  F32: [1, 4],
  F16: [1, 2],
  BF16: [1, 2],
  F64: [1, 8],
  I8: [1, 1],
  I16: [1, 2],
  I32: [1, 4],
  I64: [1, 8],
  Q4_0: [32, 2 + 16],
  Q4_1: [32, 2 + 2 + 16],
  Q5_0: [32, 2 + 4 + 16],
  Q5_1: [32, 2 + 2 + 4 + 16],
  Q8_0: [32, 2 + 32],
  Q8_1: [32, 2 + 2 + 32],
  Q2_K: [QK_K, 2 + 2 + QK_K / 16 + QK_K / 4],
  Q3_K: [QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  Q4_K: [QK_K, 2 + 2 + QK_K / 2 + 12],
  Q5_K: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12],
  Q6_K: [QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16],
  Q8_K: [QK_K, 4 + QK_K + (QK_K / 16) * 2],
  IQ2_XXS: [QK_K, 2 + QK_K / 4],
  IQ2_XS: [QK_K, 2 + QK_K / 4 + QK_K / 32],
  IQ3_XXS: [QK_K, 2 + QK_K / 4 + QK_K / 8],
  IQ1_S: [QK_K, 2 + QK_K / 8 + QK_K / 16],
  IQ4_NL: [32, 2 + 16],
  IQ3_S: [QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  IQ2_S: [QK_K, 2 + QK_K / 4 + QK_K / 16],
  IQ4_XS: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 64],
  IQ1_M: [QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  TQ1_0: [QK_K, 2 + 4 * 13],
  TQ2_0: [QK_K, 2 + 64],
  MXFP4: [32, 1 + 16],
  NVFP4: [64, 4 + 32],
  Q1_0: [128, 2 + 16],
  Q2_0: [64, 2 + 16],
};

const layoutById = new Map<number, GgmlTypeLayout>(
  (Object.keys(GgmlType) as GgmlTypeName[]).map((name) => {
    const [blockSize, blockBytes] = layouts[name];
    return [GgmlType[name], { name, blockSize, blockBytes }];
  }),
);

/** Layout of a ggml type id, or undefined for ids this build does not know. */
export function ggmlTypeLayout(type: number): GgmlTypeLayout | undefined {
  return layoutById.get(type);
}

export function ggmlTypeName(type: number): string {
  return layoutById.get(type)?.name ?? `unknown(${type})`;
}

export function ggmlTypeByName(name: string): GgmlTypeId | undefined {
  const upper = name.toUpperCase();
  return upper in GgmlType ? GgmlType[upper as GgmlTypeName] : undefined;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/**
 * Bytes a tensor of this type and shape occupies (unpadded). Throws when the first
 * dimension is not a whole number of blocks, which ggml rejects too.
 */
export function tensorByteSize(type: number, dims: readonly number[]): number {
  const layout = ggmlTypeLayout(type);
  if (!layout) throw new Error(`unknown ggml type id ${type}`);
  const rowLength = dims[0] ?? 1;
  if (rowLength % layout.blockSize !== 0) {
    throw new Error(
      `a ${layout.name} row must hold a multiple of ${layout.blockSize} elements, got ${rowLength}`,
    );
  }
  return (elementCount(dims) / layout.blockSize) * layout.blockBytes;
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/**
 * general.file_type values (enum llama_ftype): what most tensors are stored as.
 * "Mostly" because 1-D tensors (norms, biases) stay F32 in every file type.
 */
export const LlamaFileType = {
  ALL_F32: 0,
  MOSTLY_F16: 1,
  MOSTLY_Q4_0: 2,
  MOSTLY_Q4_1: 3,
  MOSTLY_Q8_0: 7,
  MOSTLY_Q5_0: 8,
  MOSTLY_Q5_1: 9,
  MOSTLY_Q2_K: 10,
  MOSTLY_Q3_K_S: 11,
  MOSTLY_Q3_K_M: 12,
  MOSTLY_Q3_K_L: 13,
  MOSTLY_Q4_K_S: 14,
  MOSTLY_Q4_K_M: 15,
  MOSTLY_Q5_K_S: 16,
  MOSTLY_Q5_K_M: 17,
  MOSTLY_Q6_K: 18,
  MOSTLY_IQ2_XXS: 19,
  MOSTLY_IQ2_XS: 20,
  MOSTLY_Q2_K_S: 21,
  MOSTLY_IQ3_XS: 22,
  MOSTLY_IQ3_XXS: 23,
  MOSTLY_IQ1_S: 24,
  MOSTLY_IQ4_NL: 25,
  MOSTLY_IQ3_S: 26,
  MOSTLY_IQ3_M: 27,
  MOSTLY_IQ2_S: 28,
  MOSTLY_IQ2_M: 29,
  MOSTLY_IQ4_XS: 30,
  MOSTLY_IQ1_M: 31,
  MOSTLY_BF16: 32,
  MOSTLY_TQ1_0: 36,
  MOSTLY_TQ2_0: 37,
  MOSTLY_MXFP4_MOE: 38,
  MOSTLY_NVFP4: 39,
  MOSTLY_Q1_0: 40,
  MOSTLY_Q2_0: 41,
} as const;
export type LlamaFileTypeName = keyof typeof LlamaFileType;

const fileTypeNameById = new Map<number, LlamaFileTypeName>(
  Object.entries(LlamaFileType).map(([name, id]) => [id, name as LlamaFileTypeName]),
);
export function llamaFileTypeName(id: number): string {
  return fileTypeNameById.get(id) ?? `unknown(${id})`;
}
