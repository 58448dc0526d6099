// What an export starts from: a finished training stage of a run (its adapter, the base
// model it was trained on, checked by sha256) and the provenance every export carries.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { manifestPath, readJsonIfExists, type RunManifest, type StageRecord } from "../../core/provenance.ts";
import { PROMPT_FORMAT_VERSION } from "../../plugins/prompts/prompts.ts";

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExportError";
  }
}

/** The provenance of an export (SPEC §9): written into every format's metadata. */
export interface ExportProvenance {
  runId: string;
  runName: string;
  stage: string;
  plugin: string;
  pluginVersion: string;
  configHash: string;
  gitCommit: string | null;
  gitDirty: boolean;
  adapterSha256: string;
  baseModel: { path: string; sha256: string; architecture: string };
  lora: { rank: number; alpha: number; dropout: number; targets: string[] };
  /** sha256 of the training text / tokens (the adapter's training manifest), and of each input file. */
  data: { textSha256: string | null; tokensSha256: string | null; inputs: Record<string, string> };
  qcForced: boolean;
  promptFormatVersion: string;
  exportedAt: string;
}

export interface ExportSource {
  runDir: string;
  adapterPath: string;
  basePath: string;
  provenance: ExportProvenance;
}

interface AdapterMeta {
  baseModel?: { path?: string; sha256?: string; architecture?: string };
  lora?: { rank?: number; alpha?: number; dropout?: number; targets?: string[] };
  data?: { textSha256?: string; tokensSha256?: string };
  qc?: { forced?: boolean };
}

/** Artifact kinds that are GGUF LoRA adapters (sft writes lora-adapter, dpo dpo-adapter). */
const ADAPTER_KINDS = new Set(["lora-adapter", "dpo-adapter"]);
const adapterArtifact = (s: StageRecord) => s.artifacts.find((a) => ADAPTER_KINDS.has(a.kind));
const isAdapterStage = (s: StageRecord) => adapterArtifact(s) !== undefined;

/**
 * The stage to export: `stage` names a stage id, or a plugin (sft, dpo) run by exactly one
 * stage or by a stage of the same id. Default: the stage `dpo` when the run has it, else `sft`.
 */
export function pickStage(m: RunManifest, stage: string | undefined, runDir: string): [string, StageRecord] {
  const adapterStages = Object.entries(m.stages).filter(([, s]) => isAdapterStage(s));
  const names = adapterStages.map(([id]) => id).join(", ") || "none";
  const want = stage ?? (m.stages["dpo"] ? "dpo" : "sft");
  let hit = m.stages[want] ? ([want, m.stages[want]] as [string, StageRecord]) : undefined;
  if (!hit) {
    const byPlugin = Object.entries(m.stages).filter(([, s]) => s.plugin === want);
    if (byPlugin.length === 1) hit = byPlugin[0];
    else if (byPlugin.length > 1) throw new ExportError(`${runDir}: several stages run the ${want} plugin (${byPlugin.map(([id]) => id).join(", ")}): name one with --stage`);
  }
  if (!hit) throw new ExportError(`${runDir}: run ${m.runId} has no stage '${want}'${stage ? "" : " (the default)"}; stages with an adapter: ${names}`);
  const [id, rec] = hit;
  if (rec.status !== "done") {
    throw new ExportError(`${runDir}: stage '${id}' is ${rec.status}, not done${rec.error ? ` (${rec.error})` : ""}: finish it first (selftune run <config> --run-dir ${runDir})`);
  }
  if (!isAdapterStage(rec)) throw new ExportError(`${runDir}: stage '${id}' (${rec.plugin}) wrote no LoRA adapter; stages with an adapter: ${names}`);
  return hit;
}

export function sha256File(path: string): Promise<string> {
  // Streamed: bases are gigabytes.
  const hasher = new Bun.CryptoHasher("sha256");
  return (async () => {
    for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
    return hasher.digest("hex");
  })();
}

/**
 * Resolves and checks what an export needs. `base` overrides where the base model is (the run
 * records where it was); its sha256 must still be the one the adapter was trained on.
 */
export async function resolveExportSource(runDir: string, opts: { stage?: string; base?: string } = {}): Promise<ExportSource> {
  const dir = resolve(runDir);
  const m = readJsonIfExists<RunManifest>(manifestPath(dir));
  if (!m) throw new ExportError(`${runDir}: no manifest.json (not a run directory)`);
  const [stageId, rec] = pickStage(m, opts.stage, runDir);
  const artifact = adapterArtifact(rec)!;
  const adapterPath = join(dir, stageId, artifact.file);
  if (!existsSync(adapterPath)) throw new ExportError(`${adapterPath}: the adapter of stage '${stageId}' is missing`);
  const adapterSha256 = await sha256File(adapterPath);
  if (adapterSha256 !== artifact.sha256) throw new ExportError(`${adapterPath}: sha256 ${adapterSha256} differs from the manifest's ${artifact.sha256} (changed after training)`);
  const metaPath = `${adapterPath}.meta.json`;
  if (!existsSync(metaPath)) throw new ExportError(`${metaPath}: missing (the training manifest names the base model)`);
  const meta = JSON.parse(readFileSync(metaPath, "utf8")) as AdapterMeta;
  const recorded = meta.baseModel;
  if (!recorded?.sha256 || !recorded.path) throw new ExportError(`${metaPath}: names no base model (baseModel.path, baseModel.sha256)`);
  const basePath = resolve(opts.base ?? recorded.path);
  if (!existsSync(basePath)) {
    throw new ExportError(`base model ${basePath} not found (the adapter of '${stageId}' was trained on sha256 ${recorded.sha256}); pass --base <path> to that file`);
  }
  const baseSha256 = await sha256File(basePath);
  if (baseSha256 !== recorded.sha256) {
    throw new ExportError(`base model ${basePath} has sha256 ${baseSha256}, but the adapter of '${stageId}' was trained on ${recorded.sha256}: not the same model file`);
  }
  const prov = rec.provenance;
  return {
    runDir: dir,
    adapterPath,
    basePath,
    provenance: {
      runId: m.runId,
      runName: m.name,
      stage: stageId,
      plugin: rec.plugin,
      pluginVersion: rec.pluginVersion,
      configHash: rec.configHash,
      gitCommit: prov.git.commit,
      gitDirty: prov.git.dirty,
      adapterSha256,
      baseModel: { path: basePath, sha256: baseSha256, architecture: recorded.architecture ?? "" },
      lora: { rank: meta.lora?.rank ?? 0, alpha: meta.lora?.alpha ?? 0, dropout: meta.lora?.dropout ?? 0, targets: meta.lora?.targets ?? [] },
      data: {
        textSha256: meta.data?.textSha256 ?? null,
        tokensSha256: meta.data?.tokensSha256 ?? null,
        inputs: Object.fromEntries(Object.entries(rec.inputs).map(([slot, i]) => [slot, `${i.stage}/${i.file} sha256 ${i.sha256}`])),
      },
      qcForced: meta.qc?.forced ?? false,
      promptFormatVersion: PROMPT_FORMAT_VERSION,
      exportedAt: new Date().toISOString(),
    },
  };
}
