// PEFT export and import: safetensors written and read back, tensor names and PyTorch shapes
// as PEFT writes them, values equal to the GGUF adapter's (with llama's q/k rows put back in
// HF order, checked against llama.cpp's own converter code), and the round trip GGUF -> PEFT
// -> GGUF bit-identical.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { readGguf, readTensorBytes } from "../../native/gguf/reader.ts";
import { plain } from "../../native/gguf/values.ts";
import { llamaCppDirs } from "../../native/gguf/vocab.ts";
import { readLoraAdapter } from "../../native/export/lora.ts";
import { exportPeft, importPeft, permuteRows, PEFT_CONFIG, PEFT_WEIGHTS } from "../../native/export/peft.ts";
import { decodeSafetensors, encodeSafetensors, readSafetensors } from "../../native/export/safetensors.ts";
import { tempDir } from "../helpers.ts";
import { testProvenance, writeRandomLora } from "./helpers.ts";

setDefaultTimeout(120_000);

let dir: string;
beforeAll(() => {
  dir = tempDir("selftune-export-peft-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("safetensors", () => {
  test("round trip: names, shapes, values, metadata; data starts 8-byte aligned", () => {
    const tensors = [
      { name: "a", shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-30, -0, 7]) },
      { name: "b.weight", shape: [1], data: Float32Array.from([Math.PI]) },
    ];
    const bytes = encodeSafetensors(tensors, { format: "pt", x: "y" });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString());
    expect(header.a).toEqual({ dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
    expect(header["b.weight"]).toEqual({ dtype: "F32", shape: [1], data_offsets: [24, 28] });
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ format: "pt", x: "y" });
    expect(back.tensors.map((t) => [t.name, t.shape, Array.from(t.data)])).toEqual(tensors.map((t) => [t.name, t.shape, Array.from(t.data)]));
  });

  test("reads F16 and BF16 (PEFT saves in the model's dtype) and refuses overlapping data", () => {
    const header = JSON.stringify({ h: { dtype: "F16", shape: [2], data_offsets: [0, 4] }, g: { dtype: "BF16", shape: [1], data_offsets: [4, 6] } });
    const head = Buffer.from(header);
    const bytes = new Uint8Array(8 + head.length + 6);
    const dv = new DataView(bytes.buffer);
    dv.setBigUint64(0, BigInt(head.length), true);
    bytes.set(head, 8);
    dv.setUint16(8 + head.length, 0x3c00, true); // 1.0
    dv.setUint16(8 + head.length + 2, 0xc000, true); // -2.0
    dv.setUint16(8 + head.length + 4, 0x4040, true); // bf16 3.0
    const t = decodeSafetensors(bytes).tensors;
    expect(Array.from(t.find((x) => x.name === "h")!.data)).toEqual([1, -2]);
    expect(Array.from(t.find((x) => x.name === "g")!.data)).toEqual([3]);
    const bad = JSON.stringify({ h: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, g: { dtype: "F32", shape: [1], data_offsets: [2, 6] } });
    const b2 = new Uint8Array(8 + bad.length + 6);
    new DataView(b2.buffer).setBigUint64(0, BigInt(bad.length), true);
    b2.set(Buffer.from(bad), 8);
    expect(() => decodeSafetensors(b2, "x.safetensors")).toThrow(/x\.safetensors: tensor data does not tile/);
  });
});

describe("export to PEFT", () => {
  test("qwen2: PEFT names, (r, in) / (out, r), the GGUF values unchanged, the config", async () => {
    const base = await tinyModel({ arch: "qwen2", type: "f16" });
    const adapterPath = await writeRandomLora(join(dir, "q.gguf"), base, { rank: 4, alpha: 8 });
    const out = join(dir, "peft-qwen2");
    await exportPeft(adapterPath, base, out, testProvenance({ runId: "r-1" }), { baseModelName: "Qwen/Qwen2.5-0.5B" });
    const st = readSafetensors(join(out, PEFT_WEIGHTS));
    expect(st.metadata.format).toBe("pt");
    const byName = new Map(st.tensors.map((t) => [t.name, t]));
    const gguf = readLoraAdapter(adapterPath);
    expect(st.tensors.length).toBe(gguf.pairs.length * 2);
    const module: Record<string, string> = { attn_q: "self_attn.q_proj", attn_k: "self_attn.k_proj", attn_v: "self_attn.v_proj", attn_output: "self_attn.o_proj", ffn_gate: "mlp.gate_proj", ffn_up: "mlp.up_proj", ffn_down: "mlp.down_proj" };
    for (const p of gguf.pairs) {
      const [, layer, stem] = /^blk\.(\d+)\.(\w+)\.weight$/.exec(p.base)!;
      const a = byName.get(`base_model.model.model.layers.${layer}.${module[stem!]}.lora_A.weight`)!;
      const b = byName.get(`base_model.model.model.layers.${layer}.${module[stem!]}.lora_B.weight`)!;
      expect(a.shape).toEqual([4, p.nIn]);
      expect(b.shape).toEqual([p.nOut, 4]);
      expect(Array.from(a.data)).toEqual(Array.from(p.a));
      expect(Array.from(b.data)).toEqual(Array.from(p.b)); // qwen2 is converted unpermuted
    }
    const config = JSON.parse(readFileSync(join(out, PEFT_CONFIG), "utf8"));
    expect(config).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 4, lora_alpha: 8, base_model_name_or_path: "Qwen/Qwen2.5-0.5B", bias: "none", fan_in_fan_out: false, use_rslora: false });
    expect(config.target_modules).toEqual(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
    expect(JSON.parse(readFileSync(join(out, "provenance.json"), "utf8")).runId).toBe("r-1");
  });

  const hasNumpy = Bun.spawnSync(["python3", "-c", "import numpy"], { stderr: "ignore" }).exitCode === 0;
  const converter = llamaCppDirs().map((d) => join(d, "conversion", "llama.py")).find((p) => Bun.file(p).size > 0);

  test.skipIf(!hasNumpy || !converter)("llama: q/k rows are llama.cpp's converter permutation undone (its own permute() as the oracle)", () => {
    // LlamaModel.permute from conversion/llama.py, run on numpy arrays: HF order -> GGUF order.
    const script = `
import ast, json, sys, numpy as np
src = open(sys.argv[1]).read()
fn = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == "permute")
fn.decorator_list = []
ns = {"Tensor": object}
exec(compile(ast.Module([fn], []), "permute", "exec"), ns)
job = json.load(sys.stdin)
out = []
for c in job:
    hf = np.arange(c["rows"] * c["r"], dtype=np.float32).reshape(c["rows"], c["r"])
    out.append(ns["permute"](hf, c["heads"], c["kv"]).reshape(-1).tolist())
print(json.dumps(out))`;
    const jobs = [
      { rows: 64, r: 4, heads: 4, kv: 4 }, // q of the tiny llama: 4 heads of 16
      { rows: 32, r: 4, heads: 4, kv: 2 }, // k: 2 kv heads
      { rows: 96, r: 3, heads: 6, kv: 6 },
    ];
    const r = Bun.spawnSync(["python3", "-c", script, converter!], { stdin: Buffer.from(JSON.stringify(jobs)), stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    const ggufOrder = JSON.parse(r.stdout.toString()) as number[][];
    jobs.forEach((j, i) => {
      const hf = Float32Array.from({ length: j.rows * j.r }, (_, k) => k);
      const heads = j.heads === j.kv ? j.heads : j.kv; // permute() uses n_head_kv when they differ
      expect(Array.from(permuteRows(hf, j.rows, j.r, heads, false))).toEqual(ggufOrder[i]!);
      expect(Array.from(permuteRows(Float32Array.from(ggufOrder[i]!), j.rows, j.r, heads, true))).toEqual(Array.from(hf));
    });
  });

  test("llama export permutes B of q and k only (by the model's head counts)", async () => {
    const base = await tinyModel({ arch: "llama", type: "f16" });
    const adapterPath = await writeRandomLora(join(dir, "l.gguf"), base);
    const out = join(dir, "peft-llama");
    await exportPeft(adapterPath, base, out, testProvenance());
    const st = new Map(readSafetensors(join(out, PEFT_WEIGHTS)).tensors.map((t) => [t.name, t]));
    const g = new Map(readLoraAdapter(adapterPath).pairs.map((p) => [p.base, p]));
    const meta = readGguf(base).metadata;
    const heads = plain(meta.get("llama.attention.head_count")!) as number;
    const kv = plain(meta.get("llama.attention.head_count_kv")!) as number;
    const q = g.get("blk.0.attn_q.weight")!;
    const k = g.get("blk.0.attn_k.weight")!;
    const v = g.get("blk.0.attn_v.weight")!;
    expect(Array.from(st.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!.data)).toEqual(Array.from(permuteRows(q.b, q.nOut, 4, heads, true)));
    expect(Array.from(st.get("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight")!.data)).toEqual(Array.from(permuteRows(k.b, k.nOut, 4, kv, true)));
    expect(Array.from(st.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!.data)).not.toEqual(Array.from(q.b));
    expect(Array.from(st.get("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight")!.data)).toEqual(Array.from(v.b));
    expect(Array.from(st.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")!.data)).toEqual(Array.from(q.a));
  });
});

describe("import-adapter: PEFT -> GGUF", () => {
  for (const arch of ["qwen2", "llama"] as const) {
    test(`${arch}: GGUF -> PEFT -> GGUF gives the same tensors, bit for bit, and the same alpha`, async () => {
      const base = await tinyModel({ arch, type: "f16" });
      const adapterPath = await writeRandomLora(join(dir, `rt-${arch}.gguf`), base, { rank: 4, alpha: 16 });
      const peftDir = join(dir, `rt-${arch}`);
      await exportPeft(adapterPath, base, peftDir, testProvenance());
      const back = join(dir, `rt-${arch}-back.gguf`);
      const r = await importPeft(peftDir, base, back);
      expect(r).toMatchObject({ pairs: 14, rank: 4, alpha: 16 });
      const a = readGguf(adapterPath);
      const b = readGguf(back);
      expect(plain(b.metadata.get("adapter.lora.alpha")!)).toBe(16);
      expect(plain(b.metadata.get("general.architecture")!)).toBe(arch);
      expect(b.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(a.tensors.map((t) => [t.name, t.dims, t.type]));
      for (const t of a.tensors) expect(Buffer.from(readTensorBytes(b, t.name)).equals(Buffer.from(readTensorBytes(a, t)))).toBe(true);
    });
  }

  test("rsLoRA's alpha becomes llama.cpp's (alpha·sqrt(r)); DoRA and a missing file are refused by name", async () => {
    const base = await tinyModel({ arch: "qwen2", type: "f16" });
    const peftDir = join(dir, "rt-qwen2");
    const cfgPath = join(peftDir, PEFT_CONFIG);
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, use_rslora: true }));
    expect((await importPeft(peftDir, base, join(dir, "rs.gguf"))).alpha).toBe(32); // 16 * sqrt(4)
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, use_dora: true }));
    await expect(importPeft(peftDir, base, join(dir, "d.gguf"))).rejects.toThrow(/DoRA/);
    await expect(importPeft(join(dir, "nowhere"), base, join(dir, "n.gguf"))).rejects.toThrow(/adapter_config\.json: missing/);
    writeFileSync(cfgPath, JSON.stringify(cfg));
  });
});
