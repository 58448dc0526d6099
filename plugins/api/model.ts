// The public model API ("selftune/model"): the run's model service and the native types a
// plugin that generates or scores may use. Kept apart from "selftune" so that a plugin that
// never touches a model never loads the native addon's module. specs/pipeline.md lists it.
export { ModelService } from "../shared/model-service.ts";
export type { AcquireOptions, LoadedModel, ModelLoadOptions, ModelProvenance } from "../shared/model-service.ts";
export type {
  Adapter,
  AdapterUse,
  BuildInfo,
  Context,
  ContextOptions,
  DetokenizeOptions,
  GenerateOptions,
  GenerateOutput,
  GenerateRequest,
  GenerateResult,
  Model,
  ModelInfo as NativeModelInfo,
  SamplingOptions,
  ScoredItem,
  ScoreItem,
  ScoreOptions,
  ScoreOutput,
  StopReason as NativeStopReason,
  TokenizeOptions,
} from "../../native/index.ts";
