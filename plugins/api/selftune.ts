// The public plugin API: what `import ... from "selftune"` gives a user's plugin. Everything
// not re-exported here (or from "selftune/model") is internal and may change without notice.
// specs/pipeline.md ("Public API") lists it; change both together.
//
// `z` is re-exported so that a plugin needs one specifier only: its schemas are then built by
// the same zod the core validates them with, wherever the plugin lives.
export { z } from "zod";

export { definePlugin, defineKind, optional } from "../../core/plugin.ts";
export type {
  ArtifactKind,
  GateResult,
  Inputs,
  Logger,
  MergeContext,
  OptionalInput,
  Outputs,
  PluginDefinition,
  RunManifestLike,
  Services,
  StageContext,
} from "../../core/plugin.ts";
export { RecordError } from "../../core/artifacts.ts";
export type { ArtifactReader, ArtifactWriter, FileArtifact } from "../../core/artifacts.ts";
export type { Progress } from "../../core/progress.ts";
export type { ProvenanceStamp } from "../../core/provenance.ts";

export {
  CriticVerdict,
  Instruction,
  InstructionKind,
  ModelInfo,
  ModelInfoKind,
  NegativeKind,
  PairSource,
  PreferencePair,
  PreferencePairKind,
  PromptSpec,
  PromptSpecKind,
  QcReport,
  QcReportKind,
  SamplingParams,
  SftExample,
  SftExampleKind,
  StopReason,
  TestInstruction,
  TestInstructionKind,
} from "../shared/kinds.ts";

export { instructionRecord, preferencePairRecord, sftExampleRecord, testInstructionRecord, RECORD_ORIGINS, type RecordOrigin } from "../shared/records.ts";
