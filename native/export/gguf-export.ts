// The merged GGUF: the base with the adapter merged (merge.ts), the training format as its
// chat template, the stop strings and the run's provenance in its metadata.
import { readGguf, type GgufFile } from "../gguf/reader.ts";
import { writeGguf } from "../gguf/writer.ts";
import * as gv from "../gguf/values.ts";
import type { GgufMetadata } from "../gguf/values.ts";
import { CHAT_STOP_STRINGS, TRAINING_CHAT_TEMPLATE } from "./chat-template.ts";
import { readLoraAdapter } from "./lora.ts";
import { planMerge, type MergedType } from "./merge.ts";
import { ExportError, type ExportProvenance } from "./source.ts";

export const CHAT_TEMPLATE_KEY = "tokenizer.chat_template";
const ADD_BOS_KEY = "tokenizer.ggml.add_bos_token";

/**
 * The merged model's metadata: the base's, in order, with
 * - `tokenizer.chat_template` = the training format (named variants such as
 *   `tokenizer.chat_template.tool_use` removed: they are the base's chat format);
 * - `tokenizer.ggml.add_bos_token` = false: training texts had no BOS (SPEC §2), so a chat
 *   prompt gets none either (the base's value is kept in selftune.export.base_add_bos_token);
 * - `selftune.*`: stop strings, the training format, and the provenance.
 */
export function mergedMetadata(base: GgufFile, prov: ExportProvenance, merged: Map<string, MergedType>): GgufMetadata {
  const out: GgufMetadata = new Map();
  let templateSet = false;
  for (const [k, v] of base.metadata) {
    if (k === CHAT_TEMPLATE_KEY) {
      out.set(k, gv.str(TRAINING_CHAT_TEMPLATE));
      templateSet = true;
    } else if (k.startsWith(`${CHAT_TEMPLATE_KEY}.`) || k.startsWith("selftune.export.") || k === "selftune.stop" || k.startsWith("selftune.prompt.")) continue;
    else if (k === ADD_BOS_KEY) out.set(k, gv.bool(false));
    else out.set(k, v);
  }
  if (!templateSet) out.set(CHAT_TEMPLATE_KEY, gv.str(TRAINING_CHAT_TEMPLATE));
  if (!out.has(ADD_BOS_KEY)) out.set(ADD_BOS_KEY, gv.bool(false));
  const baseBos = base.metadata.get(ADD_BOS_KEY);
  for (const [k, v] of exportKeys(prov)) out.set(k, v);
  out.set("selftune.export.base_add_bos_token", gv.str(baseBos?.type === "bool" ? String(baseBos.value) : "absent"));
  out.set("selftune.export.merged_tensors", gv.u32(merged.size));
  out.set("selftune.export.merged_types", gv.strings([...new Set(merged.values())].sort()));
  return out;
}

/** The stop strings, the format and the provenance as `selftune.*` keys. */
export function exportKeys(prov: ExportProvenance): [string, gv.GgufValue][] {
  return [
    ["selftune.stop", gv.strings([...CHAT_STOP_STRINGS])],
    ["selftune.prompt.query", gv.str("Instruction: {instruction}\nResponse:")],
    ["selftune.prompt.turn", gv.str("Instruction: {instruction}\nResponse: {response}\nEND\n\n")],
    ["selftune.prompt.end", gv.str("\nEND")],
    ["selftune.prompt.format_version", gv.str(prov.promptFormatVersion)],
    ["selftune.export.run_id", gv.str(prov.runId)],
    ["selftune.export.stage", gv.str(prov.stage)],
    ["selftune.export.plugin", gv.str(`${prov.plugin}@${prov.pluginVersion}`)],
    ["selftune.export.config_hash", gv.str(prov.configHash)],
    ["selftune.export.git_commit", gv.str(prov.gitCommit ?? "none")],
    ["selftune.export.adapter_sha256", gv.str(prov.adapterSha256)],
    ["selftune.export.base_model_sha256", gv.str(prov.baseModel.sha256)],
    ["selftune.export.data_sha256", gv.str(prov.data.textSha256 ?? "unknown")],
    ["selftune.export.lora_rank", gv.u32(prov.lora.rank)],
    ["selftune.export.lora_alpha", gv.f32(prov.lora.alpha)],
    ["selftune.export.exported_at", gv.str(prov.exportedAt)],
    ["selftune.export.provenance", gv.str(JSON.stringify(prov))],
  ];
}

export interface MergedGguf {
  path: string;
  bytes: number;
  mergedTensors: number;
  mergedTypes: MergedType[];
}

/** Writes base + adapter merged to `out` (atomically). */
export async function writeMergedGguf(basePath: string, adapterPath: string, out: string, prov: ExportProvenance, opts: { type?: MergedType } = {}): Promise<MergedGguf> {
  const base = readGguf(basePath);
  const adapter = readLoraAdapter(adapterPath);
  const arch = base.metadata.get("general.architecture");
  if (arch?.type !== "string" || arch.value !== adapter.architecture) {
    throw new ExportError(`${adapterPath}: an adapter for ${adapter.architecture}, but the base ${basePath} is ${arch?.type === "string" ? arch.value : "of no architecture"}`);
  }
  const plan = planMerge(base, adapter, opts);
  const written = await writeGguf(out, { metadata: mergedMetadata(base, prov, plan.merged), tensors: plan.tensors, alignment: base.alignment });
  return { path: written.path, bytes: written.bytes, mergedTensors: plan.merged.size, mergedTypes: [...new Set(plan.merged.values())].sort() };
}
