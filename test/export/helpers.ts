// Shared by the export tests: random LoRA adapters over every projection of a synthesized
// model, a stand-in provenance, and logits comparison through llama.cpp (the addon).
import { readGguf } from "../../native/gguf/reader.ts";
import { writeGguf } from "../../native/gguf/writer.ts";
import * as gv from "../../native/gguf/values.ts";
import { GgmlType } from "../../native/gguf/types.ts";
import type { ExportProvenance } from "../../native/export/source.ts";
import { loadModel, type Model } from "../../native/index.ts";

const PROJECTIONS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

/** An adapter with random A and B (B is not zero, so the merge is visible) on all seven projections of `modelPath`. */
export async function writeRandomLora(out: string, modelPath: string, opts: { rank?: number; alpha?: number; seed?: number; magnitude?: number } = {}): Promise<string> {
  const base = readGguf(modelPath);
  const rank = opts.rank ?? 4;
  let s = (opts.seed ?? 7) >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const mag = opts.magnitude ?? 0.5;
  const tensors = [];
  for (const t of base.tensors) {
    const m = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(t.name);
    if (!m || !PROJECTIONS.includes(m[1]!)) continue;
    const [nIn, nOut] = t.dims as [number, number];
    const a = new Float32Array(nIn * rank).map(() => (rand() * mag) / Math.sqrt(nIn));
    const b = new Float32Array(rank * nOut).map(() => rand() * mag);
    tensors.push({ name: `${t.name}.lora_a`, type: GgmlType.F32, dims: [nIn, rank], data: new Uint8Array(a.buffer) });
    tensors.push({ name: `${t.name}.lora_b`, type: GgmlType.F32, dims: [rank, nOut], data: new Uint8Array(b.buffer) });
  }
  const arch = base.metadata.get("general.architecture")!;
  await writeGguf(out, {
    metadata: [
      ["general.type", gv.str("adapter")],
      ["general.architecture", arch],
      ["adapter.type", gv.str("lora")],
      ["adapter.lora.alpha", gv.f32(opts.alpha ?? 8)],
    ],
    tensors,
  });
  return out;
}

export function testProvenance(over: Partial<ExportProvenance> = {}): ExportProvenance {
  return {
    runId: "test-run",
    runName: "test",
    stage: "sft",
    plugin: "sft",
    pluginVersion: "1.0.0",
    configHash: "c0ffee",
    gitCommit: null,
    gitDirty: false,
    adapterSha256: "ada",
    baseModel: { path: "/base.gguf", sha256: "ba5e", architecture: "qwen2" },
    lora: { rank: 4, alpha: 8, dropout: 0, targets: ["q"] },
    data: { textSha256: "da7a", tokensSha256: null, inputs: {} },
    qcForced: false,
    promptFormatVersion: "1.0.0",
    exportedAt: "2026-01-01T00:00:00.000Z",
    ...over,
  };
}

/** Plain arithmetic in llama.cpp: f32 K/V, no flash attention, one thread. */
export function loadReference(path: string): Promise<Model> {
  return loadModel(path, { contextSize: 256, parallel: 1, kvType: "f32", flashAttention: "off", threads: 1 });
}

export interface LogitDiff {
  maxAbs: number;
  /** logits span, for scale */
  maxLogit: number;
  top1Agreement: number;
}

export function compareLogits(a: Float32Array, b: Float32Array, vocab: number): LogitDiff {
  let maxAbs = 0;
  let maxLogit = 0;
  let agree = 0;
  const rows = a.length / vocab;
  for (let r = 0; r < rows; r++) {
    let ia = 0;
    let ib = 0;
    for (let v = 0; v < vocab; v++) {
      const x = a[r * vocab + v]!;
      const y = b[r * vocab + v]!;
      maxAbs = Math.max(maxAbs, Math.abs(x - y));
      maxLogit = Math.max(maxLogit, Math.abs(x));
      if (x > a[r * vocab + ia]!) ia = v;
      if (y > b[r * vocab + ib]!) ib = v;
    }
    if (ia === ib) agree++;
  }
  return { maxAbs, maxLogit, top1Agreement: agree / rows };
}
