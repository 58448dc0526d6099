// pipeline-evaluator was the evaluator for the run's own variants while the core had no
// optional inputs; with them, `evaluator` takes the run's model and adapters itself
// (plugins/evaluator, specs/evaluation.md §7). This stub stays so that a config naming it
// gets a config error (file, line, key) saying what to write instead, before anything runs.
import { z } from "zod";
import { definePlugin, optional } from "../../core/plugin.ts";
import { DpoAdapterKind } from "../dpo/kinds.ts";
import { EvaluationRateKind } from "../evaluator/outputs.ts";
import { ModelInfoKind, TestInstructionKind } from "../shared/kinds.ts";
import { LoraAdapterKind } from "../sft/kinds.ts";

export const FOLDED =
  "the pipeline-evaluator plugin was folded into `evaluator`: write `plugin: evaluator` " +
  "(add `id: pipeline-evaluator` to keep the stage folder's name) and keep `inputs: { sft: sft, dpo: dpo, dpo-only: dpo-only }`; " +
  "the run's model comes from the loader, and the variants are base plus one per wired adapter. " +
  "`compare: [[a, b], ...]` is now `pairs:`; `gate: { alpha }` still gates every compared pair; " +
  "custom variant names or scales: give path `variants:` (specs/evaluation.md §7)";

export default definePlugin({
  name: "pipeline-evaluator",
  version: "0.2.0",
  description: "folded into `evaluator` (a config naming it gets an error saying what to write instead)",
  // Any config is refused with the message; the slots match the old ones so that `inputs:` is not an error too.
  config: z.record(z.string(), z.unknown()).superRefine((_c, ctx) => ctx.addIssue({ code: "custom", message: FOLDED })),
  consumes: { tests: TestInstructionKind, model: optional(ModelInfoKind), sft: optional(LoraAdapterKind), dpo: optional(DpoAdapterKind), "dpo-only": optional(DpoAdapterKind) },
  produces: { rates: EvaluationRateKind },
  async run() {
    throw new Error(FOLDED);
  },
});
