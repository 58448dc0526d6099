// `selftune export` and `selftune import-adapter` (specs/export.md): loaded on demand by
// core/cli.ts, so core stays free of model code.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeMergedGguf } from "./gguf-export.ts";
import type { MergedType } from "./merge.ts";
import { modelfile } from "./modelfile.ts";
import { exportPeft, importPeft } from "./peft.ts";
import { resolveExportSource, type ExportProvenance } from "./source.ts";

export type ExportTarget = "gguf" | "ollama" | "peft";

export interface ExportArgs {
  runDir: string;
  stage?: string;
  to?: ExportTarget;
  out?: string;
  /** The base model's path when it moved since training (same sha256). */
  base?: string;
  /** How merged weights are stored (default: the base's float type, f16 for a quantized base). */
  type?: MergedType;
  /** base_model_name_or_path of the PEFT config: the HF model the GGUF came from. */
  hfBase?: string;
}

export interface ExportResult {
  to: ExportTarget;
  dir: string;
  files: string[];
  provenance: ExportProvenance;
}

const MODEL_FILE = "model.gguf";

export async function runExport(args: ExportArgs): Promise<ExportResult> {
  const to = args.to ?? "gguf";
  const src = await resolveExportSource(args.runDir, { stage: args.stage, base: args.base });
  const prov = src.provenance;
  const dir = resolve(args.out ?? join(src.runDir, "export", `${prov.stage}-${to}`));
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  if (to === "peft") {
    await exportPeft(src.adapterPath, src.basePath, dir, prov, { baseModelName: args.hfBase });
    files.push("adapter_model.safetensors", "adapter_config.json", "provenance.json");
  } else {
    await writeMergedGguf(src.basePath, src.adapterPath, join(dir, MODEL_FILE), prov, { type: args.type });
    files.push(MODEL_FILE);
    if (to === "ollama") {
      writeFileSync(join(dir, "Modelfile"), modelfile(prov, { model: MODEL_FILE }));
      files.push("Modelfile");
    }
    writeFileSync(join(dir, "provenance.json"), `${JSON.stringify({ ...prov, format: to === "ollama" ? "ollama" : "gguf-merged" }, null, 2)}\n`);
    files.push("provenance.json");
  }
  return { to, dir, files, provenance: prov };
}

export async function exportCommand(args: ExportArgs): Promise<number> {
  const r = await runExport(args);
  console.log(`exported ${r.provenance.stage} of run ${r.provenance.runId} as ${r.to} to ${r.dir}`);
  for (const f of r.files) console.log(`  ${f}`);
  if (r.to === "gguf") console.log(`run it: llama-cli -m ${join(r.dir, MODEL_FILE)} --jinja -r "Instruction:" -r "Response:"  (specs/export.md §5)`);
  if (r.to === "ollama") console.log(`run it: cd ${r.dir} && ollama create my-model -f Modelfile && ollama run my-model`);
  return 0;
}

export interface ImportAdapterArgs {
  dir: string;
  base: string;
  out: string;
}

export async function importAdapterCommand(args: ImportAdapterArgs): Promise<number> {
  const r = await importPeft(resolve(args.dir), resolve(args.base), resolve(args.out));
  console.log(`imported ${r.pairs} LoRA projections (rank ${r.rank}, alpha ${r.alpha}) to ${r.path}`);
  return 0;
}
