// The critic stage re-judges sft-example records with the pair critic.
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { cli, tempDir } from "../helpers.ts";
import { expectOk, manifest, readJsonl, smallConfig } from "./generate-helpers.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

beforeAll(async () => {
  await tinyModel({ type: "f16" });
});

describe("critic stage", () => {
  test("keeps every record with a fresh verdict, or drops the rejected ones", async () => {
    const dir = tempDir();
    const cfg = smallConfig(dir, "c.yaml", {
      name: "critic",
      count: 4,
      after: `  - id: rejudged
    plugin: critic
    config: { threshold: -1000 }
  - id: strict
    plugin: critic
    inputs: { examples: responses }
    config: { threshold: 1000, drop: true }
  - id: engine
    plugin: critic
    inputs: { examples: responses }
    config: { threshold: -1000, scorer: engine }
`,
    });
    const runDir = join(dir, "run");
    expectOk(await cli(["run", cfg, "--run-dir", runDir]));
    const before = readJsonl(join(runDir, "responses/examples.jsonl"));
    const after = readJsonl(join(runDir, "rejudged/examples.jsonl"));
    expect(after.map((r) => r.id)).toEqual(before.map((r) => r.id));
    // Judged responses to compare, not only empty ones (the loop below would pass over none).
    expect(after.filter((r) => String(r.response).trim() !== "").length).toBeGreaterThan(0);
    for (const [i, r] of after.entries()) {
      const b = before[i]!;
      const c = r.critic as { margin: number; threshold: number; accepted: boolean } | null;
      if (String(r.response).trim() === "") expect(c).toBeNull();
      else {
        expect(c!.threshold).toBe(-1000);
        expect(c!.accepted).toBe(true);
        // Same prompt, same model: the same margin up to batch-shape rounding (f16 KV).
        expect(Math.abs(c!.margin - (b.critic as { margin: number }).margin)).toBeLessThan(0.05);
      }
    }
    expect(readJsonl(join(runDir, "strict/examples.jsonl")).length).toBe(0);

    // The training engine's forward (its CPU backend here) gives the same margins within
    // twice the engine-vs-llama.cpp log-prob tolerance (specs/training.md §14), and says so.
    const engine = readJsonl(join(runDir, "engine/examples.jsonl"));
    expect(engine.map((r) => r.id)).toEqual(after.map((r) => r.id));
    expect(after.filter((r) => r.critic !== null).length).toBeGreaterThan(0);
    for (const [i, r] of engine.entries()) {
      const c = r.critic as { margin: number } | null;
      const l = after[i]!.critic as { margin: number } | null;
      if (l === null) expect(c).toBeNull();
      else expect(Math.abs(c!.margin - l.margin)).toBeLessThan(0.12);
    }
    const m = manifest(runDir);
    expect(m.stages.engine!.provenance.extra.scorer).toMatchObject({ scorer: "engine", requested: "engine", backend: "cpu" });
    expect(m.stages.rejudged!.provenance.extra.scorer).toMatchObject({ scorer: "llama.cpp", requested: "auto" });
    // Which labels the critic read and how (Qwen2's vocabulary has " A" and " B" as single tokens).
    expect(m.stages.rejudged!.provenance.extra.critic).toMatchObject({ labels: { accept: " A", reject: " B" }, method: "single-token", tokens: { accept: [362], reject: [425] }, default: true });
  });
});
