// The model and the starting adapter of the training stages are declared inputs (issue 12
// item 6; optional inputs in core/plugin.ts): sft and dpo take the loader's model-info unless
// their config names a file, and dpo reads the SFT adapter only for `from: sft`, so a
// DPO-only run needs no sft stage. Plan-time wiring through the real CLI.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { DpoConfig } from "../../plugins/dpo/config.ts";
import { runDpo } from "../../plugins/dpo/run.ts";
import { join } from "node:path";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";
import { patternPairs } from "./helpers.ts";

setDefaultTimeout(300_000);

const pairs = `  - id: pairs\n    plugin: ${FIXTURE_PLUGINS}/canned-pairs.ts\n    config:\n      pairs: ${JSON.stringify(patternPairs(4))}\n`;
const load = `  - id: load\n    plugin: loader\n    config: { synthesize: { arch: qwen2, preset: tiny, type: f32 } }\n`;
const wiring = (out: string) => out.split("\n").filter((l) => /^\s+(sft|dpo|dpo-only)\s/.test(l)).join("\n");

describe("training stages' declared inputs", () => {
  test("a DPO-only run plans without an sft stage; its model comes from the loader, by wiring", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: dpo-only\nstages:\n${load}${pairs}  - id: dpo-only\n    plugin: dpo\n    config: { from: base }\n`);
    const r = await cli(["validate", cfg]);
    expect(r.exitCode).toBe(0);
    expect(wiring(r.stdout)).toContain("inputs: pairs<-pairs.pairs, model<-load.model");
    expect(wiring(r.stdout)).not.toContain("adapter<-");
  });

  test("from: sft wires the nearest sft adapter; `model:` in the config leaves the model input unwired", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: w\nstages:\n${load}${pairs}  - id: sft\n    plugin: ${FIXTURE_PLUGINS}/fake-adapter.ts\n  - plugin: dpo\n    config: { model: ./m.gguf }\n  - id: dpo-only\n    plugin: dpo\n    config: { from: base }\n`);
    const r = await cli(["validate", cfg]);
    expect(r.exitCode).toBe(0);
    const lines = wiring(r.stdout).split("\n");
    expect(lines.find((l) => /^\s+dpo\s/.test(l))).toContain("inputs: pairs<-pairs.pairs, adapter<-sft.adapter");
    expect(lines.find((l) => /^\s+dpo\s/.test(l))).not.toContain("model<-");
    expect(lines.find((l) => /^\s+dpo-only\s/.test(l))).toContain("inputs: pairs<-pairs.pairs, model<-load.model");
  });

  test("sft with neither `model:` nor a loader upstream is a plan error naming the slot and the line", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", `name: s\nstages:\n${pairs}  - plugin: sft\n`);
    const r = await cli(["validate", cfg]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("stage 'sft' consumes kind 'model-info' (slot 'model') but no stage before it produces it");
    expect(r.stderr).toContain("the slot is optional; this stage's config uses it");
    expect(r.stderr).toContain(`${cfg}:`);
  });

  test("from: base with an adapter wired by hand is refused with what to write instead", async () => {
    const dir = tempDir();
    const model = join(dir, "m.gguf");
    writeFileSync(model, "not read: the refusal comes first");
    const ctx = {
      config: DpoConfig.parse({ from: "base", model }),
      inputs: { pairs: null, adapter: { path: join(dir, "sft/adapter.gguf") } },
      run: { dir, configPath: join(dir, "a.yaml") },
      stage: { id: "dpo-only", dir },
      services: { get: () => undefined, getOrCreate: async (_k: string, create: () => unknown) => create() },
      readManifest: async () => null,
      log: { info() {}, warn() {} },
    };
    await expect(runDpo(ctx as never)).rejects.toThrow("dpo: from: base trains a fresh LoRA on the bare base and reads no adapter; remove `adapter` from this stage's inputs");
  });
});
