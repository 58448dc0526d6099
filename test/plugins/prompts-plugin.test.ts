// The prompts stage through the CLI: prompt-spec records for provenance.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PromptSpec } from "../../plugins/shared/kinds.ts";
import { PROMPT_FORMAT_VERSION } from "../../plugins/prompts/prompts.ts";
import { promptFormatsSha256, promptSpecs } from "../../plugins/prompts/spec.ts";
import { cli, tempDir, writeConfig } from "../helpers.ts";

describe("prompts plugin", () => {
  test("records every format and pool, pinned by hash", () => {
    const specs = promptSpecs();
    expect(specs.map((s) => s.name)).toEqual(["response", "instruction-list", "instruction-critic", "pair-critic", "training", "refusal-negative", "incorrect-negative", "pool:response", "pool:seed-tasks", "pool:negatives", "pool:critic-examples"]);
    for (const s of specs) expect(PromptSpec.parse(s)).toEqual(s);
    expect(promptSpecs()).toEqual(specs);
    // Pinned: a change to any format or pool text changes the hash, and must come with a new
    // PROMPT_FORMAT_VERSION (then add its hash here) — never the same version with other text.
    const PINNED: Record<string, string> = { "1.0.0": "9c74ef55a07d26cd34199a40cc818fd252ba26da30e949c2bdd5a3a407c68355" };
    expect(PINNED[PROMPT_FORMAT_VERSION], `no hash pinned for PROMPT_FORMAT_VERSION ${PROMPT_FORMAT_VERSION}`).toBeString();
    expect(promptFormatsSha256(), `the prompt formats changed under version ${PROMPT_FORMAT_VERSION}: bump it`).toBe(PINNED[PROMPT_FORMAT_VERSION]!);
    expect(specs.find((s) => s.name === "training")!.example).toBe("Instruction: Name two planets of the solar system.\nResponse: Mars and Venus.\nEND");
  });

  test("runs with no inputs and writes prompt-spec records, prompts.txt and the formats hash", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "p.yaml", `name: p\nstages:\n  - plugin: prompts\n`);
    const r = await cli(["run", cfg, "--run-dir", join(dir, "run")]);
    expect(r.exitCode).toBe(0);
    const lines = readFileSync(join(dir, "run/prompts/formats.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(11);
    expect(lines[0].version).toBe(PROMPT_FORMAT_VERSION);
    const m = JSON.parse(readFileSync(join(dir, "run/manifest.json"), "utf8"));
    expect(m.stages.prompts.pluginVersion).toBe(PROMPT_FORMAT_VERSION);
    expect(m.stages.prompts.provenance.extra.promptFormatsSha256).toBe(promptFormatsSha256());
    expect(readFileSync(join(dir, "run/prompts/prompts.txt"), "utf8")).toContain("=== pair-critic");
  });

  test("the data plugins are listed with their config schemas", async () => {
    const r = await cli(["plugins", "--json"]);
    expect(r.exitCode).toBe(0);
    const all = JSON.parse(r.stdout) as { name: string; consumes: Record<string, string>; produces: Record<string, string>; config: { properties?: Record<string, unknown> } }[];
    const byName = Object.fromEntries(all.map((p) => [p.name, p]));
    expect(byName.prompts!.produces).toEqual({ formats: "prompt-spec" });
    expect(byName.qc!.consumes).toEqual({ examples: "sft-example" });
    expect(Object.keys(byName.qc!.config.properties ?? {})).toContain("maxRunawayRate");
    expect(byName.testset!.produces).toEqual({ tests: "test-instruction" });
    expect(byName.testset!.consumes).toEqual({});
  });
});
