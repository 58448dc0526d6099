// GGUF I/O and model synthesis in TypeScript (no native addon needed).
//
//   readGguf(path)                 header, typed metadata, tensor table (reads only the front)
//   readTensorBytes / readTensorF32  one tensor's data on demand
//   writeGguf(path, {metadata, tensors})  streaming, atomic GGUF v3 writer
//   synthesizeModel(opts)          random-weight llama/qwen2 model with a real vocabulary
//   describeGguf(path)             summary for `selftune model info`
//   modelSynth(opts) / modelInfo(path, "text"|"json")   the CLI's two model commands
//   tinyModel(opts)                cached tiny model for tests
//   vocabPath(name)                llama.cpp's models/ggml-vocab-<name>.gguf

export * from "./types.ts";
export * as gv from "./values.ts";
export type { GgufValue, GgufScalar, GgufArray, GgufMetadata } from "./values.ts";
export { describeValue, plain } from "./values.ts";
export {
  GgufError,
  readGguf,
  findTensor,
  readTensorBytes,
  readTensorF32,
  metaString,
  metaNumber,
  metaArrayLength,
  type GgufFile,
  type GgufTensorInfo,
} from "./reader.ts";
export { writeGguf, type GgufTensorSource, type TensorChunks, type WriteGgufOptions, type WrittenGguf } from "./writer.ts";
export {
  f32ToF16Bits,
  f16BitsToF32,
  f32ToBf16Bits,
  bf16BitsToF32,
  encodeF16,
  decodeF16,
  encodeBf16,
} from "./f16.ts";
export {
  synthesizeModel,
  planTensors,
  presetShape,
  resolveShape,
  DEFAULT_VOCAB,
  SYNTH_VERSION,
  type SynthOptions,
  type SynthArch,
  type SynthPreset,
  type SynthType,
  type ModelShape,
  type SynthTensorPlan,
} from "./synth.ts";
export { describeGguf, describeGgufFile, formatGgufDescription, type GgufDescription } from "./describe.ts";
export { modelSynth, modelInfo, type ModelSynthResult } from "./commands.ts";
export { tinyModel, cachedModel, modelCacheDir, type FixtureModelOptions } from "./fixtures.ts";
export { vocabPath, llamaCppDirs } from "./vocab.ts";
