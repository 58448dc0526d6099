// Where each field of a GGUF file's header lies: the magic and counts, every metadata
// entry's key, type and value, every tensor info's name, dimensions, type and offset. The
// mutation corpus (corpus.ts) writes extreme values into exactly these bytes.
//
// Walks a file known to be well formed (one we just synthesized); no validation here.

export type FieldKind =
  | "version"
  | "tensor-count"
  | "kv-count"
  | "key-length"
  | "value-type"
  | "value"
  | "string-length"
  | "array-item-type"
  | "array-length"
  | "name-length"
  | "n-dims"
  | "dim"
  | "tensor-type"
  | "tensor-offset";

export interface Field {
  kind: FieldKind;
  /** Byte offset and size of the field in the file. */
  at: number;
  size: number;
  /** Scalar value type for "value" fields ("u32", "f32", ...). */
  valueType?: string;
  /** The metadata key or tensor name the field belongs to. */
  owner: string;
}

export interface GgufLayout {
  fields: Field[];
  /** End of the tensor table: bytes [0, headerEnd) are header, metadata and tensor infos. */
  headerEnd: number;
  /** Start of the tensor data section. */
  dataOffset: number;
}

const SCALAR_BYTES: Record<number, [string, number]> = {
  0: ["u8", 1], 1: ["i8", 1], 2: ["u16", 2], 3: ["i16", 2], 4: ["u32", 4], 5: ["i32", 4],
  6: ["f32", 4], 7: ["bool", 1], 10: ["u64", 8], 11: ["i64", 8], 12: ["f64", 8],
};
const STRING = 8;
const ARRAY = 9;

export function ggufLayout(bytes: Uint8Array): GgufLayout {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [];
  let pos = 4;
  const u32 = () => dv.getUint32(pos, true);
  const u64 = () => Number(dv.getBigUint64(pos, true));
  const push = (kind: FieldKind, size: number, owner: string, valueType?: string) => {
    fields.push({ kind, at: pos, size, owner, valueType });
    pos += size;
  };
  const text = (n: number) => new TextDecoder().decode(bytes.subarray(pos, pos + n));

  push("version", 4, "header");
  const nTensors = u64();
  push("tensor-count", 8, "header");
  const nKv = u64();
  push("kv-count", 8, "header");
  let alignment = 32;

  const skipValue = (type: number, owner: string, record: boolean) => {
    if (type === STRING) {
      const n = u64();
      if (record) push("string-length", 8, owner);
      else pos += 8;
      pos += n;
    } else if (type === ARRAY) {
      const item = dv.getInt32(pos, true);
      if (record) push("array-item-type", 4, owner);
      else pos += 4;
      const n = u64();
      if (record) push("array-length", 8, owner);
      else pos += 8;
      for (let i = 0; i < n; i++) skipValue(item, owner, false);
    } else {
      const [name, size] = SCALAR_BYTES[type]!;
      if (record) push("value", size, owner, name);
      else pos += size;
    }
  };

  for (let i = 0; i < nKv; i++) {
    const keyLength = u64();
    fields.push({ kind: "key-length", at: pos, size: 8, owner: "" });
    pos += 8;
    const key = text(keyLength);
    fields[fields.length - 1]!.owner = key;
    pos += keyLength;
    const type = dv.getInt32(pos, true);
    push("value-type", 4, key);
    if (key === "general.alignment") alignment = dv.getUint32(pos, true);
    skipValue(type, key, true);
  }
  for (let i = 0; i < nTensors; i++) {
    const nameLength = u64();
    const at = pos;
    pos += 8;
    const name = text(nameLength);
    fields.push({ kind: "name-length", at, size: 8, owner: name });
    pos += nameLength;
    const nDims = u32();
    push("n-dims", 4, name);
    for (let d = 0; d < nDims; d++) push("dim", 8, name);
    push("tensor-type", 4, name);
    push("tensor-offset", 8, name);
  }
  const headerEnd = pos;
  const dataOffset = Math.ceil(headerEnd / alignment) * alignment;
  return { fields, headerEnd, dataOffset };
}
