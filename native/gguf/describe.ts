// A readable summary of a GGUF file, for `selftune model info` and for logs/provenance.

import { metaArrayLength, metaNumber, metaString, readGguf, type GgufFile } from "./reader.ts";
import { llamaFileTypeName } from "./types.ts";

export interface GgufDescription {
  path: string;
  sizeBytes: number;
  version: number;
  architecture: string | undefined;
  name: string | undefined;
  /** general.file_type as id and name (e.g. 1, "MOSTLY_F16"); undefined when absent. */
  fileType: { id: number; name: string } | undefined;
  parameterCount: number;
  tensorCount: number;
  /** Tensor count per ggml type name, e.g. { F32: 121, F16: 169 }. */
  tensorTypes: Record<string, number>;
  /** Hyper-parameters from `<arch>.*`; a field is undefined when the key is absent. */
  hyperParameters: {
    contextLength: number | undefined;
    embeddingLength: number | undefined;
    blockCount: number | undefined;
    feedForwardLength: number | undefined;
    headCount: number | undefined;
    headCountKv: number | undefined;
    ropeFreqBase: number | undefined;
    rmsEpsilon: number | undefined;
  };
  tokenizerModel: string | undefined;
  vocabSize: number | undefined;
  chatTemplate: boolean;
  /** Output projection shared with token_embd (no output.weight); undefined without token_embd. */
  tiedEmbeddings: boolean | undefined;
  /** Set on models written by synthesizeModel. */
  synthetic: boolean;
  alignment: number;
  metadataCount: number;
}

/** The shortest decimal that is the same f32 (1e-6 rather than 9.999999974752427e-7). */
function shortestF32(x: number | undefined): number | undefined {
  if (x === undefined || !Number.isFinite(x)) return x;
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === x) return candidate;
  }
  return x;
}

/** A number, or the first layer's of a per-layer array (llama.cpp accepts either for head and ffn counts). */
function layerNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v?.type === "array" && v.itemType !== "string" && v.itemType !== "array" && v.itemType !== "bool" && v.value.length > 0) {
    return Number(v.value[0]);
  }
  return metaNumber(file, key);
}

export function describeGgufFile(file: GgufFile): GgufDescription {
  const arch = metaString(file, "general.architecture");
  const archNumber = (key: string) => (arch ? layerNumber(file, `${arch}.${key}`) : undefined);
  const fileTypeId = metaNumber(file, "general.file_type");
  const tensorTypes: Record<string, number> = {};
  let parameterCount = 0;
  for (const t of file.tensors) {
    tensorTypes[t.typeName] = (tensorTypes[t.typeName] ?? 0) + 1;
    parameterCount += t.elementCount;
  }
  const synthetic = file.metadata.get("selftune.synthetic");
  return {
    path: file.path,
    sizeBytes: file.fileSize,
    version: file.version,
    architecture: arch,
    name: metaString(file, "general.name"),
    fileType: fileTypeId === undefined ? undefined : { id: fileTypeId, name: llamaFileTypeName(fileTypeId) },
    parameterCount,
    tensorCount: file.tensors.length,
    tensorTypes,
    hyperParameters: {
      contextLength: archNumber("context_length"),
      embeddingLength: archNumber("embedding_length"),
      blockCount: archNumber("block_count"),
      feedForwardLength: archNumber("feed_forward_length"),
      headCount: archNumber("attention.head_count"),
      headCountKv: archNumber("attention.head_count_kv"),
      ropeFreqBase: shortestF32(archNumber("rope.freq_base")),
      rmsEpsilon: shortestF32(archNumber("attention.layer_norm_rms_epsilon")),
    },
    tokenizerModel: metaString(file, "tokenizer.ggml.model"),
    vocabSize: metaArrayLength(file, "tokenizer.ggml.tokens"),
    chatTemplate: file.metadata.has("tokenizer.chat_template"),
    tiedEmbeddings: file.tensors.some((t) => t.name === "token_embd.weight")
      ? !file.tensors.some((t) => t.name === "output.weight")
      : undefined,
    synthetic: synthetic?.type === "bool" && synthetic.value,
    alignment: file.alignment,
    metadataCount: file.metadata.size,
  };
}

/** Reads only the header of `path` and summarises it. */
export function describeGguf(path: string): GgufDescription {
  return describeGgufFile(readGguf(path));
}

function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** Multi-line text rendering of a description, for the CLI. */
export function formatGgufDescription(d: GgufDescription): string {
  const h = d.hyperParameters;
  const dash = (v: unknown) => (v === undefined ? "-" : String(v));
  const lines = [
    `${d.path}`,
    `  format        GGUF v${d.version}, ${humanBytes(d.sizeBytes)}, alignment ${d.alignment}, ${d.metadataCount} metadata keys`,
    `  model         ${dash(d.architecture)}${d.name ? ` "${d.name}"` : ""}${d.synthetic ? " (synthetic, random weights)" : ""}`,
    d.tensorCount === 0
      ? "  parameters    none (no tensors: a vocabulary-only file)"
      : `  parameters    ${humanCount(d.parameterCount)} in ${d.tensorCount} tensors: ${Object.entries(d.tensorTypes).map(([t, n]) => `${n} ${t}`).join(", ")}`,
    `  file type     ${d.fileType ? `${d.fileType.name} (${d.fileType.id})` : "-"}`,
    `  shape         hidden ${dash(h.embeddingLength)}, layers ${dash(h.blockCount)}, heads ${dash(h.headCount)}/${dash(h.headCountKv)} kv, ffn ${dash(h.feedForwardLength)}, context ${dash(h.contextLength)}`,
    `  rope/norm     freq base ${dash(h.ropeFreqBase)}, rms eps ${dash(h.rmsEpsilon)}, ${d.tiedEmbeddings === undefined ? "no embeddings" : d.tiedEmbeddings ? "tied output embeddings" : "separate output weights"}`,
    `  tokenizer     ${dash(d.tokenizerModel)}, ${dash(d.vocabSize)} tokens, chat template ${d.chatTemplate ? "present" : "absent"}`,
  ];
  return lines.join("\n");
}
