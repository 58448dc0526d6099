// The dpo stage (SPEC §7): DPO of the run's SFT adapter on preference pairs (`from: sft`), or
// the DPO-only baseline from the bare base (`from: base`), on our own training engine
// (native/train.ts, specs/training.md §15-16). The reference is the frozen starting policy,
// its log-probs computed once by the engine and cached in the stage folder. Refuses pairs
// whose QC failed unless `force: true` (recorded). Writes a GGUF LoRA adapter (the training
// manifest as its metadata), the metrics curve and training-manifest.json; resumes from its
// checkpoint after an interruption.
import { definePlugin, optional } from "../../core/plugin.ts";
import { ModelInfoKind, PreferencePairKind } from "../shared/kinds.ts";
import { LoraAdapterKind } from "../sft/kinds.ts";
import { DpoConfig } from "./config.ts";
import { DpoAdapterKind, DpoStepKind } from "./kinds.ts";
import { DPO_VERSION, runDpo } from "./run.ts";

export default definePlugin({
  name: "dpo",
  version: DPO_VERSION,
  description: "DPO (or IPO) from the SFT adapter or the bare base on preference pairs; writes a GGUF LoRA adapter, metrics curve and training manifest",
  config: DpoConfig,
  consumes: {
    pairs: PreferencePairKind,
    // The SFT adapter to start from: wired (nearest sft stage) only for `from: sft`; the DPO-only baseline reads none.
    adapter: optional(LoraAdapterKind, { wantedBy: (c: DpoConfig) => c.from === "sft" }),
    // The base model: the loader's model-info unless the config names a file.
    model: optional(ModelInfoKind, { wantedBy: (c: DpoConfig) => c.model === undefined }),
  },
  produces: { adapter: DpoAdapterKind, metrics: DpoStepKind },
  run: runDpo,
});
