// The merged GGUF equals base + adapter: llama.cpp's logits of the merged file against
// llama.cpp's logits of the base with the adapter applied (the addon's loadAdapter /
// evalLogits), on synthesized models of both architectures and every base type the merge
// decodes; for quantized bases also against the training engine's f32 forward, which
// dequantizes through ggml itself (to_float), so our dequantization is checked bit-near.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { readGguf, readTensorBytes } from "../../native/gguf/reader.ts";
import { plain } from "../../native/gguf/values.ts";
import { quantize, type QuantType } from "../../native/index.ts";
import { loadTrainModel } from "../../native/train.ts";
import { TRAINING_CHAT_TEMPLATE, CHAT_STOP_STRINGS } from "../../native/export/chat-template.ts";
import { writeMergedGguf } from "../../native/export/gguf-export.ts";
import { tempDir } from "../helpers.ts";
import { compareLogits, loadReference, testProvenance, writeRandomLora } from "./helpers.ts";

setDefaultTimeout(300_000);

const TEXT = "Instruction: Name three primary colors.\nResponse: Red, yellow and blue.\nEND";
let dir: string;
beforeAll(() => {
  dir = tempDir("selftune-export-merge-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** llama.cpp logits of base + adapter and of the merged file, and of the base alone (to show the adapter matters). */
async function llamaLogits(basePath: string, adapterPath: string, mergedPath: string) {
  const model = await loadReference(basePath);
  const tokens = model.tokenize(TEXT);
  const vocab = model.info.vocabSize;
  const adapter = await model.loadAdapter(adapterPath);
  const withAdapter = await model.evalLogits(tokens, { adapters: [{ adapter }] });
  const baseOnly = await model.evalLogits(tokens);
  adapter.dispose();
  model.dispose();
  const merged = await loadReference(mergedPath);
  const mergedLogits = await merged.evalLogits(tokens);
  merged.dispose();
  return { tokens, vocab, withAdapter, baseOnly, merged: mergedLogits };
}

// Bounds on max |Δlogit| (logits span about ±10). f32: the merge is exact up to f32 summation
// order (measured 4.8e-6). f16/bf16: W + s·B·A rounded once to the stored type, where llama.cpp
// adds s·B·A in f32 after the f16 product (measured 1.0e-2 for f16, 0.088 for bf16).
const FLOAT_CASES: { arch: "qwen2" | "llama"; type: "f32" | "f16"; merged?: "f32" | "f16" | "bf16"; bound: number }[] = [
  { arch: "qwen2", type: "f32", bound: 1e-4 },
  { arch: "llama", type: "f32", bound: 1e-4 },
  { arch: "qwen2", type: "f16", bound: 0.05 },
  { arch: "llama", type: "f16", merged: "bf16", bound: 0.3 },
];

describe("float bases: merged logits = llama.cpp's base + adapter", () => {
  for (const c of FLOAT_CASES) {
    test(`${c.arch} ${c.type} -> ${c.merged ?? c.type} within ${c.bound}`, async () => {
      const base = await tinyModel({ arch: c.arch, type: c.type });
      const adapterPath = await writeRandomLora(join(dir, `a-${c.arch}-${c.type}.gguf`), base);
      const out = join(dir, `m-${c.arch}-${c.type}.gguf`);
      const written = await writeMergedGguf(base, adapterPath, out, testProvenance(), { type: c.merged });
      expect(written.mergedTensors).toBe(14); // 7 projections x 2 layers
      expect(written.mergedTypes).toEqual([c.merged ?? c.type]);
      const r = await llamaLogits(base, adapterPath, out);
      const d = compareLogits(r.merged, r.withAdapter, r.vocab);
      if (process.env.SELFTUNE_EXPORT_VERBOSE) console.log(c, d);
      expect(d.maxAbs).toBeLessThan(c.bound);
      expect(d.top1Agreement).toBe(1);
      // The adapter moves the logits far more than the merge error: the comparison has teeth.
      expect(compareLogits(r.baseOnly, r.withAdapter, r.vocab).maxAbs).toBeGreaterThan(10 * c.bound);
    });
  }
});

describe("metadata of the merged file", () => {
  test("the training format as chat template, no BOS, stop strings, provenance; untouched tensors byte-identical", async () => {
    const base = await tinyModel({ arch: "qwen2", type: "f16" });
    const adapterPath = await writeRandomLora(join(dir, "meta-a.gguf"), base);
    const out = join(dir, "meta-m.gguf");
    const prov = testProvenance({ runId: "run-7", stage: "dpo" });
    await writeMergedGguf(base, adapterPath, out, prov);
    const b = readGguf(base);
    const m = readGguf(out);
    expect(b.metadata.get("tokenizer.chat_template")).toBeDefined(); // Qwen's ChatML, replaced:
    expect(plain(m.metadata.get("tokenizer.chat_template")!)).toBe(TRAINING_CHAT_TEMPLATE);
    expect(plain(m.metadata.get("tokenizer.ggml.add_bos_token")!)).toBe(false);
    expect(plain(m.metadata.get("selftune.stop")!)).toEqual([...CHAT_STOP_STRINGS]);
    expect(plain(m.metadata.get("selftune.export.run_id")!)).toBe("run-7");
    expect(plain(m.metadata.get("selftune.export.stage")!)).toBe("dpo");
    expect(plain(m.metadata.get("selftune.export.base_model_sha256")!)).toBe(prov.baseModel.sha256);
    expect(plain(m.metadata.get("selftune.export.data_sha256")!)).toBe(prov.data.textSha256);
    expect(JSON.parse(plain(m.metadata.get("selftune.export.provenance")!) as string)).toEqual(prov);
    for (const [k, v] of b.metadata) {
      if (k === "tokenizer.chat_template" || k === "tokenizer.ggml.add_bos_token") continue;
      expect(m.metadata.get(k)).toEqual(v);
    }
    expect(m.tensors.map((t) => t.name)).toEqual(b.tensors.map((t) => t.name));
    for (const t of b.tensors) {
      if (/\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$/.test(t.name)) continue;
      expect(Buffer.from(readTensorBytes(m, t.name)).equals(Buffer.from(readTensorBytes(b, t)))).toBe(true);
    }
  });
});

// Quantized bases: K-quants need 256-element rows, so hidden 256 / ffn 512. q4_k is llama.cpp's
// Q4_K_M mix (Q4_K + Q6_K); q5_k_m mixes Q5_K and Q6_K: every block format dequantize.ts decodes.
const QUANTS: QuantType[] = ["q8_0", "q4_0", "q4_k", "q5_k_m"];

describe("quantized bases", () => {
  for (const q of QUANTS) {
    test(`${q}: merged = base + adapter (training engine within 1e-4, llama.cpp within 0.6)`, async () => {
      const f32 = await tinyModel({ arch: "llama", type: "f32", shape: { hidden: 256, ffn: 512 } });
      const base = join(dir, `base-${q}.gguf`);
      await quantize(f32, base, q, { threads: 1 });
      const adapterPath = await writeRandomLora(join(dir, `qa-${q}.gguf`), base);
      const asF32 = join(dir, `qm32-${q}.gguf`);
      const asF16 = join(dir, `qm16-${q}.gguf`);
      await writeMergedGguf(base, adapterPath, asF32, testProvenance(), { type: "f32" });
      const dflt = await writeMergedGguf(base, adapterPath, asF16, testProvenance());
      expect(dflt.mergedTypes).toEqual(["f16"]); // a quantized base's merged weights default to f16

      // The training engine: f32 forward over ggml's dequantization, LoRA applied unmerged.
      const tm = await loadTrainModel(base, { backend: "cpu" });
      const session = tm.createSession({ adapter: adapterPath, threads: 1 });
      const tokens = Array.from({ length: 24 }, (_, i) => (i * 7919 + 13) % tm.info.vocabSize);
      const ref = await session.logits(tokens, { useLora: true });
      const refBase = await session.logits(tokens, { useLora: false });
      const vocab = tm.info.vocabSize;
      session.dispose();
      tm.dispose();
      const mm = await loadTrainModel(asF32, { backend: "cpu" });
      const ms = mm.createSession({ threads: 1 });
      const got = await ms.logits(tokens, { useLora: false });
      ms.dispose();
      mm.dispose();
      expect(compareLogits(got, ref, vocab).maxAbs).toBeLessThan(1e-4); // measured 1.6e-5 .. 1.8e-5
      expect(compareLogits(refBase, ref, vocab).maxAbs).toBeGreaterThan(0.5);

      // llama.cpp: the quantized product rounds activations to 8 bits (q8_0 / q8_K), the merged
      // f16 weights do not; specs/training.md §9's quantized bound (measured 0.16 .. 0.32).
      const r = await llamaLogits(base, adapterPath, asF16);
      const d = compareLogits(r.merged, r.withAdapter, r.vocab);
      expect(d.maxAbs).toBeLessThan(0.6);
      expect(d.top1Agreement).toBeGreaterThanOrEqual(0.8);
    });
  }
});
