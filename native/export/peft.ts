// PEFT's LoRA format <-> llama.cpp's GGUF LoRA.
//
// PEFT (save_pretrained) writes adapter_model.safetensors with, per adapted nn.Linear,
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   (r, in_features)
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight   (out_features, r)
// and adapter_config.json (peft_type LORA, r, lora_alpha, target_modules, ...); it applies
// W·x + (lora_alpha / r)·B·(A·x), the same scale as llama.cpp (use_rslora: alpha/sqrt(r)).
// PyTorch's (r, in) is row-major, which is exactly ggml's [in, r]: the values are the same
// bytes, only the shape is written the other way round. One difference in the weights:
// llama.cpp's convert_hf_to_gguf.py permutes the rows of a llama model's q_proj and k_proj
// (HF rotates halves of each head, GGUF adjacent pairs), so B of q and k has its rows
// permuted back on export and forward on import. qwen2 is converted unpermuted.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readGguf, metaNumber, metaString } from "../gguf/reader.ts";
import { writeGguf, type GgufTensorSource } from "../gguf/writer.ts";
import * as gv from "../gguf/values.ts";
import { GgmlType } from "../gguf/types.ts";
import { ggufTensorOf, hfModuleOf, readLoraAdapter } from "./lora.ts";
import { readSafetensors, writeSafetensors, type SafeTensor } from "./safetensors.ts";
import { ExportError, sha256File, type ExportProvenance } from "./source.ts";

export const PEFT_WEIGHTS = "adapter_model.safetensors";
export const PEFT_CONFIG = "adapter_config.json";

/** transformers' module names, in the order selftune's targets are listed (q k v o gate up down). */
const MODULE_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

const peftName = (layer: number, module: string, ab: "A" | "B") => `base_model.model.model.layers.${layer}.${module}.lora_${ab}.weight`;
const PEFT_NAME = /^base_model\.model\.model\.layers\.(\d+)\.((?:self_attn|mlp)\.[a-z_]+)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/;

interface HeadCounts {
  heads: number;
  headsKv: number;
}

/** Whether llama.cpp's converter permuted this module's rows, and with how many heads. */
function permutedHeads(arch: string, module: string, h: HeadCounts): number | null {
  if (arch !== "llama") return null;
  if (module === "self_attn.q_proj") return h.heads;
  if (module === "self_attn.k_proj") return h.headsKv;
  return null;
}

/**
 * Row order of B (n_out x r, row-major) between the two layouts: per head of `hd` rows,
 * GGUF row h·hd + 2j + t is HF row h·hd + t·hd/2 + j. `toHf` true maps GGUF -> HF.
 */
export function permuteRows(b: Float32Array, nOut: number, r: number, heads: number, toHf: boolean): Float32Array {
  const hd = nOut / heads;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new ExportError(`cannot split ${nOut} rows into ${heads} heads of even size`);
  const out = new Float32Array(b.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < hd / 2; j++) {
      for (let t = 0; t < 2; t++) {
        const g = h * hd + 2 * j + t;
        const f = h * hd + t * (hd / 2) + j;
        const [from, to] = toHf ? [g, f] : [f, g];
        out.set(b.subarray(from * r, from * r + r), to * r);
      }
    }
  }
  return out;
}

function headCounts(basePath: string): { arch: string; heads: HeadCounts; file: ReturnType<typeof readGguf> } {
  const file = readGguf(basePath);
  const arch = metaString(file, "general.architecture") ?? "";
  const heads = metaNumber(file, `${arch}.attention.head_count`) ?? 0;
  const headsKv = metaNumber(file, `${arch}.attention.head_count_kv`) ?? heads;
  return { arch, heads: { heads, headsKv }, file };
}

export interface PeftExport {
  dir: string;
  tensors: number;
  targetModules: string[];
}

/**
 * Writes `dir/adapter_model.safetensors`, `dir/adapter_config.json` and `dir/provenance.json`.
 * `baseModelName` goes into base_model_name_or_path (the HF model the GGUF was converted from).
 */
export async function exportPeft(adapterPath: string, basePath: string, dir: string, prov: ExportProvenance, opts: { baseModelName?: string; dropout?: number } = {}): Promise<PeftExport> {
  const adapter = readLoraAdapter(adapterPath);
  const { arch, heads } = headCounts(basePath);
  if (arch !== adapter.architecture) throw new ExportError(`${adapterPath}: an adapter for ${adapter.architecture}, the base ${basePath} is ${arch}`);
  const tensors: SafeTensor[] = [];
  const modules = new Set<string>();
  for (const p of adapter.pairs) {
    const hf = hfModuleOf(p.base);
    if (!hf) throw new ExportError(`${adapterPath}: "${p.base}" has no transformers module name (PEFT export covers q, k, v, o, gate, up, down)`);
    modules.add(hf.module.split(".")[1]!);
    const n = permutedHeads(arch, hf.module, heads);
    const b = n === null ? p.b : permuteRows(p.b, p.nOut, adapter.rank, n, true);
    tensors.push({ name: peftName(hf.layer, hf.module, "A"), shape: [adapter.rank, p.nIn], data: p.a });
    tensors.push({ name: peftName(hf.layer, hf.module, "B"), shape: [p.nOut, adapter.rank], data: b });
  }
  const targetModules = MODULE_ORDER.filter((m) => modules.has(m));
  const baseName = opts.baseModelName ?? metaString(readGguf(basePath), "general.name") ?? basePath;
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, PEFT_WEIGHTS), tensors, { format: "pt", selftune_run_id: prov.runId, selftune_stage: prov.stage, selftune_adapter_sha256: prov.adapterSha256 });
  // Only keys LoraConfig knows: older PEFT versions refuse unknown ones. Provenance goes beside it.
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseName,
    r: adapter.rank,
    lora_alpha: adapter.alpha === 0 ? adapter.rank : adapter.alpha,
    lora_dropout: opts.dropout ?? prov.lora.dropout,
    target_modules: targetModules,
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    revision: null,
  };
  writeFileSync(join(dir, PEFT_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(dir, "provenance.json"), `${JSON.stringify({ ...prov, format: "peft-lora", baseGgufArchitecture: arch }, null, 2)}\n`);
  return { dir, tensors: tensors.length, targetModules };
}

export interface PeftImport {
  path: string;
  pairs: number;
  rank: number;
  alpha: number;
}

/**
 * A PEFT LoRA (dir with adapter_model.safetensors + adapter_config.json) as a llama.cpp GGUF
 * adapter for the GGUF base `basePath` (its architecture, head counts and shapes).
 */
export async function importPeft(dir: string, basePath: string, out: string): Promise<PeftImport> {
  const configPath = join(dir, PEFT_CONFIG);
  const weightsPath = join(dir, PEFT_WEIGHTS);
  for (const p of [configPath, weightsPath]) if (!existsSync(p)) throw new ExportError(`${p}: missing (a PEFT LoRA folder has ${PEFT_CONFIG} and ${PEFT_WEIGHTS})`);
  const config = JSON.parse(readFileSync(configPath, "utf8")) as { peft_type?: string; r?: number; lora_alpha?: number; use_rslora?: boolean; use_dora?: boolean; fan_in_fan_out?: boolean };
  if (config.peft_type !== "LORA") throw new ExportError(`${configPath}: peft_type ${config.peft_type}, only LORA converts`);
  if (config.use_dora) throw new ExportError(`${configPath}: DoRA (use_dora) has no llama.cpp equivalent`);
  if (config.fan_in_fan_out) throw new ExportError(`${configPath}: fan_in_fan_out (Conv1D layers) is not a llama/qwen2 layout`);
  const { arch, heads, file: base } = headCounts(basePath);
  const weights = readSafetensors(weightsPath);
  const byModule = new Map<string, { layer: number; module: string; a?: SafeTensor; b?: SafeTensor }>();
  for (const t of weights.tensors) {
    const m = PEFT_NAME.exec(t.name);
    if (!m) throw new ExportError(`${weightsPath}: tensor "${t.name}" is not a LoRA weight of a decoder layer's projection`);
    const key = `${m[1]}.${m[2]}`;
    const entry = byModule.get(key) ?? { layer: Number(m[1]), module: m[2]! };
    if (m[3] === "A") entry.a = t;
    else entry.b = t;
    byModule.set(key, entry);
  }
  let rank = -1;
  const tensors: GgufTensorSource[] = [];
  const shapes = new Map(base.tensors.map((t) => [t.name, t.dims]));
  for (const { layer, module, a, b } of byModule.values()) {
    const target = ggufTensorOf(layer, module);
    if (!target) throw new ExportError(`${weightsPath}: layer ${layer} ${module} has no llama.cpp tensor`);
    if (!a || !b) throw new ExportError(`${weightsPath}: ${module} of layer ${layer} lacks lora_${a ? "B" : "A"}`);
    const [r, nIn] = a.shape as [number, number];
    const [nOut, rb] = b.shape as [number, number];
    if (rb !== r || (rank >= 0 && r !== rank)) throw new ExportError(`${weightsPath}: inconsistent ranks at layer ${layer} ${module}`);
    rank = r;
    const dims = shapes.get(target);
    if (!dims || dims[0] !== nIn || dims[1] !== nOut) throw new ExportError(`${weightsPath}: ${module} of layer ${layer} is ${nOut} x ${nIn}, the base ${basePath} has ${target} ${dims ? `[${dims}]` : "missing"}`);
    const n = permutedHeads(arch, module, heads);
    const bData = n === null ? b.data : permuteRows(b.data, nOut, r, n, false);
    tensors.push({ name: `${target}.lora_a`, type: GgmlType.F32, dims: [nIn, r], data: a.data });
    tensors.push({ name: `${target}.lora_b`, type: GgmlType.F32, dims: [r, nOut], data: bData });
  }
  if (rank < 0) throw new ExportError(`${weightsPath}: no LoRA tensors`);
  // llama.cpp's scale is alpha / r; rsLoRA's alpha / sqrt(r) is the same with alpha·sqrt(r).
  const alpha = (config.lora_alpha ?? rank) * (config.use_rslora ? Math.sqrt(rank) : 1);
  // Sorted as llama.cpp's tensor order (layer, then projection) so files compare easily.
  const order = (name: string) => {
    const m = /^blk\.(\d+)\.([a-z_]+)\./.exec(name)!;
    return Number(m[1]) * 100 + ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].indexOf(m[2]!) * 2 + (name.endsWith("lora_b") ? 1 : 0);
  };
  tensors.sort((x, y) => order(x.name) - order(y.name));
  await writeGguf(out, {
    metadata: [
      ["general.type", gv.str("adapter")],
      ["general.architecture", gv.str(arch)],
      ["adapter.type", gv.str("lora")],
      ["adapter.lora.alpha", gv.f32(alpha)],
      ["selftune.import.source", gv.str("peft")],
      ["selftune.import.weights_sha256", gv.str(await sha256File(weightsPath))],
      ["selftune.import.base_model_sha256", gv.str(await sha256File(basePath))],
    ],
    tensors,
  });
  return { path: out, pairs: tensors.length / 2, rank, alpha };
}

