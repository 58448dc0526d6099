// `selftune export` on a real run: the smoke pipeline trains its sft and dpo adapters, then
// each export format is written through the CLI and checked: the merged GGUF's logits equal
// base + the trained adapter (the training engine's f32 forward, and llama.cpp's), the Ollama
// folder and the PEFT adapter carry the run's provenance, and bad input fails naming what is
// wrong.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readGguf, readTensorBytes } from "../../native/gguf/reader.ts";
import { plain } from "../../native/gguf/values.ts";
import { loadTrainModel } from "../../native/train.ts";
import { readLoraAdapter } from "../../native/export/lora.ts";
import { readSafetensors } from "../../native/export/safetensors.ts";
import { TRAINING_CHAT_TEMPLATE } from "../../native/export/chat-template.ts";
import type { RunManifest } from "../../core/provenance.ts";
import { ROOT, cli, tempDir } from "../helpers.ts";
import { compareLogits, loadReference } from "./helpers.ts";

setDefaultTimeout(600_000);

let dir: string;
let run: string;
let manifest: RunManifest;
beforeAll(async () => {
  dir = tempDir("selftune-export-cli-");
  run = join(dir, "run");
  const r = await cli(["run", join(ROOT, "configs/smoke.yaml"), "--run-dir", run]);
  if (r.exitCode !== 0) throw new Error(`smoke run failed (${r.exitCode}):\n${r.stderr.slice(-3000)}`);
  manifest = JSON.parse(readFileSync(join(run, "manifest.json"), "utf8"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = "Instruction: Name three primary colors.\nResponse: Red, yellow and blue.\nEND";

describe("export --to gguf of the trained sft adapter", () => {
  test("merged = base + adapter: training engine within 1e-4, llama.cpp within 0.03; provenance in the metadata", async () => {
    const out32 = join(dir, "gguf32");
    const out16 = join(dir, "gguf16");
    for (const [out, type] of [[out32, ["--type", "f32"]], [out16, []]] as const) {
      const r = await cli(["export", run, "--stage", "sft", "--to", "gguf", "--out", out, ...type]);
      expect(r.stderr).toBe("");
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain(`exported sft of run ${manifest.runId} as gguf`);
    }
    const meta = JSON.parse(readFileSync(join(run, "sft", "adapter.gguf.meta.json"), "utf8"));
    const base: string = meta.baseModel.path;
    const adapterPath = join(run, "sft", "adapter.gguf");

    // llama.cpp: the f16 base with the adapter applied (and without, for scale).
    const lm = await loadReference(base);
    const V = lm.info.vocabSize;
    const tokens = lm.tokenize(TEXT);
    const adapter = await lm.loadAdapter(adapterPath);
    const lref = await lm.evalLogits(tokens, { adapters: [{ adapter }] });
    const lbase = await lm.evalLogits(tokens);
    adapter.dispose();
    lm.dispose();

    // The training engine: f32 arithmetic on the same dequantized weights, LoRA unmerged.
    const tm = await loadTrainModel(base, { backend: "cpu" });
    const s = tm.createSession({ adapter: adapterPath, threads: 1 });
    const ref = await s.logits(tokens, { useLora: true });
    const baseLogits = await s.logits(tokens, { useLora: false });
    s.dispose();
    tm.dispose();
    const mm = await loadTrainModel(join(out32, "model.gguf"), { backend: "cpu" });
    const ms = mm.createSession({ threads: 1 });
    const merged = await ms.logits(tokens, { useLora: false });
    ms.dispose();
    mm.dispose();
    const effect = compareLogits(baseLogits, ref, V).maxAbs; // what 4 training steps moved (~0.06)
    const engine = compareLogits(merged, ref, V).maxAbs; // measured 7.6e-6
    expect(engine).toBeLessThan(1e-4);
    expect(effect).toBeGreaterThan(100 * engine);

    // llama.cpp vs the merged f16 file: its f16 product rounds activations to f16, the adapter
    // path does not (measured 0.012; the adapter's own effect there 0.058).
    const m16 = await loadReference(join(out16, "model.gguf"));
    const l16 = await m16.evalLogits(tokens);
    m16.dispose();
    const d = compareLogits(l16, lref, V);
    expect(d.maxAbs).toBeLessThan(0.03);
    expect(d.top1Agreement).toBe(1);
    expect(d.maxAbs).toBeLessThan(compareLogits(lbase, lref, V).maxAbs / 3);

    const g = readGguf(join(out16, "model.gguf"));
    const sft = manifest.stages.sft!;
    expect(plain(g.metadata.get("tokenizer.chat_template")!)).toBe(TRAINING_CHAT_TEMPLATE);
    expect(plain(g.metadata.get("selftune.export.run_id")!)).toBe(manifest.runId);
    expect(plain(g.metadata.get("selftune.export.stage")!)).toBe("sft");
    expect(plain(g.metadata.get("selftune.export.base_model_sha256")!)).toBe(meta.baseModel.sha256);
    expect(plain(g.metadata.get("selftune.export.adapter_sha256")!)).toBe(sft.artifacts.find((a) => a.kind === "lora-adapter")!.sha256);
    expect(plain(g.metadata.get("selftune.export.data_sha256")!)).toBe(meta.data.textSha256);
    expect(plain(g.metadata.get("selftune.export.config_hash")!)).toBe(sft.configHash);
    const prov = JSON.parse(readFileSync(join(out16, "provenance.json"), "utf8"));
    expect(prov.data.inputs.examples).toContain(sft.inputs.examples!.sha256);
  });

  test("the default stage is dpo, and its adapter is the one merged", async () => {
    const out = join(dir, "dflt");
    const r = await cli(["export", run, "--out", out]);
    expect(r.exitCode).toBe(0);
    const g = readGguf(join(out, "model.gguf"));
    expect(plain(g.metadata.get("selftune.export.stage")!)).toBe("dpo");
    expect(plain(g.metadata.get("selftune.export.adapter_sha256")!)).toBe(manifest.stages.dpo!.artifacts.find((a) => a.file === "adapter.gguf")!.sha256);
  });
});

describe("export --to ollama and --to peft", () => {
  test("ollama: model.gguf and a Modelfile naming it, with the run in its comments", async () => {
    const out = join(dir, "ollama");
    const r = await cli(["export", run, "--stage", "sft", "--to", "ollama", "--out", out]);
    expect(r.exitCode).toBe(0);
    const mf = readFileSync(join(out, "Modelfile"), "utf8");
    expect(mf).toContain("FROM ./model.gguf\n");
    expect(mf).toContain(`# run_id ${manifest.runId}`);
    expect(existsSync(join(out, "model.gguf"))).toBe(true);
    expect(plain(readGguf(join(out, "model.gguf")).metadata.get("tokenizer.chat_template")!)).toBe(TRAINING_CHAT_TEMPLATE);
  });

  test("peft: the trained adapter's tensors, named and shaped as PEFT writes them; import-adapter gives the adapter back", async () => {
    const out = join(dir, "peft");
    const r = await cli(["export", run, "--stage", "sft", "--to", "peft", "--out", out, "--hf-base", "Qwen/Qwen2.5-0.5B"]);
    expect(r.exitCode).toBe(0);
    const adapterPath = join(run, "sft", "adapter.gguf");
    const gguf = readLoraAdapter(adapterPath);
    const st = new Map(readSafetensors(join(out, "adapter_model.safetensors")).tensors.map((t) => [t.name, t]));
    const q0 = gguf.pairs.find((p) => p.base === "blk.0.attn_q.weight")!;
    expect(st.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")!.shape).toEqual([gguf.rank, q0.nIn]);
    expect(Array.from(st.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!.data)).toEqual(Array.from(q0.b));
    const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    expect(config).toMatchObject({ r: 4, lora_alpha: 8, base_model_name_or_path: "Qwen/Qwen2.5-0.5B" });
    expect(JSON.parse(readFileSync(join(out, "provenance.json"), "utf8"))).toMatchObject({ runId: manifest.runId, stage: "sft" });

    const meta = JSON.parse(readFileSync(`${adapterPath}.meta.json`, "utf8"));
    const back = join(dir, "imported.gguf");
    const imp = await cli(["import-adapter", out, "--base", meta.baseModel.path, "--out", back]);
    expect(imp.exitCode).toBe(0);
    const a = readGguf(adapterPath);
    const b = readGguf(back);
    for (const t of a.tensors) expect(Buffer.from(readTensorBytes(b, t.name)).equals(Buffer.from(readTensorBytes(a, t)))).toBe(true);
  });
});

describe("bad input fails naming what is wrong", () => {
  test("not a run directory", async () => {
    const r = await cli(["export", join(dir, "nothing")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("no manifest.json (not a run directory)");
  });

  test("a stage the run does not have, or one that wrote no adapter", async () => {
    const r = await cli(["export", run, "--stage", "nope"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("has no stage 'nope'; stages with an adapter: sft, dpo, dpo-only");
    const q = await cli(["export", run, "--stage", "qc"]);
    expect(q.stderr).toContain("stage 'qc' (qc) wrote no LoRA adapter");
  });

  test("an unfinished stage", async () => {
    const copy = join(dir, "unfinished");
    cpSync(run, copy, { recursive: true });
    const m = JSON.parse(readFileSync(join(copy, "manifest.json"), "utf8")) as RunManifest;
    m.stages.sft!.status = "interrupted";
    writeFileSync(join(copy, "manifest.json"), JSON.stringify(m));
    const r = await cli(["export", copy, "--stage", "sft"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("stage 'sft' is interrupted, not done");
  });

  test("a base model that is missing or not the file the adapter was trained on", async () => {
    const missing = await cli(["export", run, "--stage", "sft", "--base", join(dir, "gone.gguf"), "--out", join(dir, "x")]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/base model .*gone\.gguf not found \(the adapter of 'sft' was trained on sha256 [0-9a-f]{64}\); pass --base/);
    const other = join(dir, "other.gguf");
    cpSync(join(dir, "gguf16", "model.gguf"), other);
    const wrong = await cli(["export", run, "--stage", "sft", "--base", other, "--out", join(dir, "y")]);
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stderr).toMatch(/other\.gguf has sha256 [0-9a-f]{64}, but the adapter of 'sft' was trained on [0-9a-f]{64}: not the same model file/);
  });

  test("an adapter changed after training", async () => {
    const copy = join(dir, "tampered");
    cpSync(run, copy, { recursive: true });
    const p = join(copy, "sft", "adapter.gguf");
    const bytes = readFileSync(p);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(p, bytes);
    const r = await cli(["export", copy, "--stage", "sft"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("differs from the manifest's");
  });
});
