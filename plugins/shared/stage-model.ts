// Which base model a training stage works on: the one its config names, else the one the
// run's loader stage loaded. Shared by sft and dpo so both train on the same file.
import { dirname, join, resolve } from "node:path";
import { ArtifactReader } from "../../core/artifacts.ts";
import type { StageContext } from "../../core/plugin.ts";
import { ModelInfoKind } from "./kinds.ts";

type Ctx = Pick<StageContext<unknown, never, never>, "readManifest" | "run">;

/** The model file the run's loader stage loaded, from its model-info record. */
export async function loaderModelPath(ctx: Ctx, stage: string): Promise<string> {
  const manifest = await ctx.readManifest(ctx.run.dir);
  const loader = Object.entries(manifest?.stages ?? {}).find(([, s]) => s.plugin === "loader" && s.status === "done");
  const art = loader?.[1].artifacts.find((a) => a.kind === "model-info");
  if (!loader || !art) throw new Error(`${stage}: no \`model:\` given and no finished loader stage in this run to take the model from`);
  for await (const rec of new ArtifactReader(join(ctx.run.dir, loader[0], art.file), ModelInfoKind)) return rec.path;
  throw new Error(`${stage}: the loader's ${art.file} holds no model-info record`);
}

/** `model` (relative to the config file) when given, else the loader's model. */
export function stageModelPath(ctx: Ctx, model: string | undefined, stage: string): Promise<string> {
  return model ? Promise.resolve(resolve(dirname(resolve(ctx.run.configPath)), model)) : loaderModelPath(ctx, stage);
}
