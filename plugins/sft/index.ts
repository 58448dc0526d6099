// The sft stage (SPEC §6): LoRA SFT of the base model on the trainable sft-example
// records, loss on response tokens only, on our own training engine (native/train.ts).
// Refuses a dataset whose QC did not pass unless `force: true` (recorded). Writes the
// adapter in llama.cpp's GGUF LoRA format (with the training manifest as its metadata),
// the loss curve, and training-manifest.json. Interrupted, it resumes from its checkpoint.
import { definePlugin, optional } from "../../core/plugin.ts";
import { ModelInfoKind, QcReportKind, SftExampleKind } from "../shared/kinds.ts";
import { SftConfig } from "./config.ts";
import { LoraAdapterKind, TrainStepKind } from "./kinds.ts";
import { runSft, SFT_VERSION } from "./run.ts";

export default definePlugin({
  name: "sft",
  version: SFT_VERSION,
  description: "LoRA SFT on response tokens only; writes a llama.cpp GGUF LoRA adapter, loss curve and training manifest",
  config: SftConfig,
  // The base model: the loader's model-info (wired from the nearest loader) unless the config names a file.
  consumes: { examples: SftExampleKind, qc: QcReportKind, model: optional(ModelInfoKind, { wantedBy: (c: SftConfig) => c.model === undefined }) },
  produces: { adapter: LoraAdapterKind, lossCurve: TrainStepKind },
  run: runSft,
});
