// Which base model a training stage works on: the file its config names (`model:`), else the
// one in its `model` input — the loader's model-info record, a declared input of the stage
// (optional(ModelInfoKind, { wantedBy: (c) => !c.model }): the planner wires it to the
// nearest loader exactly when the config names no file). Shared by sft and dpo so both train
// on the same file.
import { dirname, resolve } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import type { StageContext } from "../../core/plugin.ts";
import { readModelInfo } from "../loader/open.ts";
import type { ModelInfo } from "./kinds.ts";

type Ctx = Pick<StageContext<unknown, never, never>, "run">;
type ModelInput = (AsyncIterable<ModelInfo> & { path?: string }) | undefined;

/** The model file and its sha256: `model` (relative to the config file) when given, else the input's record. */
export async function stageModel(ctx: Ctx, model: string | undefined, input: ModelInput, stage: string): Promise<{ path: string; sha256: string }> {
  if (model && input) throw new Error(`${stage}: both \`model: ${model}\` and a wired \`model\` input: name the file or wire the loader's model-info, not both`);
  if (model) {
    const path = resolve(dirname(resolve(ctx.run.configPath)), model);
    return { path, sha256: await sha256File(path) };
  }
  if (!input) throw new Error(`${stage}: no \`model:\` given and no \`model\` input wired`); // the planner wires it; a direct caller may not
  const info = await readModelInfo(input);
  const sha256 = await sha256File(info.path);
  // The record is what the run was planned on: a file replaced since would train something else.
  if (sha256 !== info.sha256) throw new Error(`${stage}: model ${info.path} changed since the load stage recorded it (sha256 ${sha256.slice(0, 12)}, recorded ${info.sha256.slice(0, 12)}): re-run from the load stage`);
  return { path: info.path, sha256 };
}
