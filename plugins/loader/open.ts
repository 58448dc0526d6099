// How a stage downstream of the loader gets the model: from the `model-info` record
// it consumes, through the run's model service (loaded once, shared; another model
// is unloaded first). The loader leaves `load-options.json` next to its model-info
// artifact, so a stage run alone (`--only`, or a resumed run where the loader was
// skipped) loads the model the same way. The file's sha256 must still match the
// record: a model replaced since the load stage ran is an error, not a silent swap.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger, Services } from "../../core/plugin.ts";
import type { Context, Model } from "../../native/index.ts";
import type { ModelInfo } from "../shared/kinds.ts";
import { ModelService, type LoadedModel, type ModelLoadOptions, type ModelProvenance } from "../shared/model-service.ts";
import { ContaminationGuard } from "./guard.ts";

export const LOAD_OPTIONS_FILE = "load-options.json";

export interface OpenedModel {
  model: Model;
  guard: ContaminationGuard;
  info: ModelInfo;
  provenance: ModelProvenance;
  /** A fresh context with the loader's options (dispose it). */
  workContext(): Promise<Context>;
  /** One batch of work on the model's work context: kept across batches where that cannot change a result, else fresh (LoadedModel.inWorkContext). */
  inWorkContext: LoadedModel["inWorkContext"];
  contexts: LoadedModel["contexts"];
}

/** Read the single model-info record a stage consumes. */
export async function readModelInfo(reader: AsyncIterable<ModelInfo>): Promise<ModelInfo> {
  let info: ModelInfo | null = null;
  for await (const r of reader) {
    if (info) throw new Error("expected one model-info record, found several");
    info = r;
  }
  if (!info) throw new Error("the model-info artifact is empty");
  return info;
}

/** The loader's load options, found next to its model-info artifact (or none). */
export function loadOptionsNextTo(artifactPath: string | undefined): ModelLoadOptions {
  if (!artifactPath) return {};
  const f = join(dirname(artifactPath), LOAD_OPTIONS_FILE);
  if (!existsSync(f)) return {};
  return JSON.parse(readFileSync(f, "utf8")) as ModelLoadOptions;
}

/** The facts a stage puts into `ctx.provenance.extra` about the model it used. */
export function modelProvenanceExtra(p: ModelProvenance): Record<string, unknown> {
  return {
    modelPath: p.path,
    modelSha256: p.sha256,
    tokenizerSha256: p.tokenizerSha256,
    architecture: p.architecture,
    fileType: p.fileType,
    backend: p.backend,
    device: p.device,
    nativeBuild: p.nativeBuild,
    nativeBuildInfo: p.buildInfo,
  };
}

/**
 * The model a model-info record describes, from the run's model service, with the
 * contamination guard the record specifies. `input` is the consumer's model-info reader.
 */
export async function openModel(services: Services, input: AsyncIterable<ModelInfo> & { path?: string }, opts: { signal?: AbortSignal; log?: Logger } = {}): Promise<OpenedModel> {
  const info = await readModelInfo(input);
  const service = await ModelService.of(services);
  if (!existsSync(info.path)) throw new Error(`model ${info.path} (from the model-info record) does not exist`);
  const lm = await service.acquire(info.path, { load: loadOptionsNextTo(input.path), signal: opts.signal, log: opts.log });
  if (lm.provenance.sha256 !== info.sha256) {
    throw new Error(`model ${info.path} changed since the load stage recorded it (sha256 ${lm.provenance.sha256.slice(0, 12)}, recorded ${info.sha256.slice(0, 12)}): re-run from the load stage (--from <loader stage>)`);
  }
  if (lm.provenance.tokenizerSha256 !== info.tokenizerSha256) throw new Error(`model ${info.path}: tokenizer hash differs from the model-info record`);
  const guard = ContaminationGuard.fromInfo(lm.model, info);
  return { model: lm.model, guard, info, provenance: lm.provenance, workContext: lm.workContext, inWorkContext: lm.inWorkContext, contexts: lm.contexts };
}
