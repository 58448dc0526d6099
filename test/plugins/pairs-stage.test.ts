// The pairs stage end to end through the real CLI on the tiny synthesized model:
// loader -> canned sft-examples -> qc -> sft (a few steps: a real adapter) -> pairs.
// Random weights write no good text, so this checks mechanics and the per-kind
// properties on the stage's real output: both sources present, the mix followed, each
// synthetic negative worse in its kind, records valid for DPO, the summary, and a resume
// after SIGKILL giving the same bytes as an uninterrupted run.
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { loadModel } from "../../native/index.ts";
import { findLeakage } from "../../plugins/prompts/clean.ts";
import { isRefusal } from "../../plugins/prompts/negatives.ts";
import { trainingText } from "../../plugins/prompts/prompts.ts";
import { checkNegative } from "../../plugins/pairs/negatives.ts";
import { contentWords, coverage, overlap } from "../../plugins/pairs/text.ts";
import { PreferencePair } from "../../plugins/shared/kinds.ts";
import { cli, ROOT, tempDir, writeConfig } from "../helpers.ts";
import { expectOk, manifest, readJsonl } from "./generate-helpers.ts";

setDefaultTimeout(300_000);

// Written outside the checkout: a bare "zod" would not resolve there (no node_modules above it).
const FAKE_GENERATE = `
import { z } from "${ROOT}/node_modules/zod";
import { definePlugin } from "${ROOT}/core/plugin.ts";
import { SftExampleKind } from "${ROOT}/plugins/shared/kinds.ts";
import { criticVerdict } from "${ROOT}/plugins/prompts/prompts.ts";
const Item = z.strictObject({ instruction: z.string(), response: z.string() });
export default definePlugin({
  name: "fake-generate", version: "0.0.1", description: "canned responses (test)",
  config: z.strictObject({ items: z.array(Item) }),
  consumes: {}, produces: { examples: SftExampleKind },
  async run(ctx) {
    const sampling = { temperature: 0.3, topP: 0.85, topK: 0, repetitionPenalty: 1.15, maxTokens: 80 };
    ctx.config.items.forEach((it, i) => {
      const n = (it.response.match(/\\S+/g) ?? []).length;
      ctx.outputs.examples.write({
        id: "res-" + i, instructionId: "ins-" + i, instruction: it.instruction, response: it.response, raw: " " + it.response + "\\nEND",
        stopReason: "END", hitMaxTokens: false, responseTokens: n, generatedTokens: n + 2,
        fewShotIds: [], sampling, seed: i, critic: criticVerdict(2, 0, 1),
      });
    });
  },
});
`;

const ITEMS = [
  ["What is the capital of France?", "The capital of France is Paris."],
  ["Add 12 and 30.", "12 plus 30 is 42."],
  ["Is the sun a star?", "Yes, the sun is a star."],
  ["Name three kinds of fruit.", "Apples, pears and plums."],
  ["Explain why ice floats on water.", "Ice is less dense than liquid water, so it floats."],
  ["Give a synonym for happy.", "Joyful."],
  ["How many legs does a spider have?", "A spider has 8 legs."],
  ["Name a mammal that lives in the sea.", "The whale is a mammal that lives in the sea."],
  ["What color is grass?", "Grass is green."],
  ["Translate hello into Spanish.", "Hola."],
  ["What is the boiling point of water in Celsius?", "Water boils at 100 degrees Celsius at sea level."],
  ["Name the largest planet.", "Jupiter is the largest planet in the solar system."],
  ["Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."],
  ["What do bees make?", "Bees make honey and wax."],
  ["Suggest a name for a pet dog.", "Biscuit would be a good name for a dog."],
  ["What is 9 minus 4?", "9 minus 4 is 5."],
  ["Name a tool used to cut paper.", "Scissors cut paper."],
  ["What season comes after winter?", "Spring comes after winter."],
  ["Describe the taste of lemon.", "A lemon tastes sour."],
  ["Is ice cold or hot?", "Ice is cold."],
].map(([instruction, response]) => ({ instruction: instruction!, response: response! }));

const dir = tempDir("selftune-pairs-");
writeFileSync(join(dir, "fake-generate.ts"), FAKE_GENERATE);
const cfg = writeConfig(
  dir,
  "pairs.yaml",
  `name: pairs-test
seed: 11
stages:
  - id: load
    plugin: loader
    config:
      synthesize: { arch: qwen2, preset: tiny, type: f16 }
      contextSize: 2048
      parallel: 8
      threads: 1
      sentinels: { maxTokens: 8 }
  - id: responses
    plugin: ./fake-generate.ts
    config:
      items: ${JSON.stringify(ITEMS)}
  - plugin: qc
    gate: report
  - plugin: sft
    config:
      lora: { rank: 4, alpha: 8 }
      epochs: 25
      microBatch: 4
      gradAccum: 1
      lr: 0.05
      warmupSteps: 0
      threads: 1
      force: true
  - plugin: pairs
    gate: report
    config:
      batch: 4
      # Random weights barely learn to stop: sample widely (temperature 1, no top-k) and 8 a
      # prompt, so that some instructions get a candidate fit to be chosen (3 at topK 8, 0.7 gave
      # none after the x86-64-v3 build changed the numerics).
      bestOfN: { n: 8, minMarginGap: 0, limit: 6, sampling: { temperature: 1.0, topP: 1, topK: 0, repetitionPenalty: 1, maxTokens: 24 } }
      synthetic: { sampling: { temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1.1, maxTokens: 16 } }
`,
);
const reference = join(dir, "reference");
const PAIRS = "pairs/pairs.jsonl";

type Pair = ReturnType<typeof PreferencePair.parse>;
const pairsOf = (runDir: string) => readJsonl(join(runDir, PAIRS)).map(({ _prov, ...r }) => PreferencePair.parse(r) as Pair);

beforeAll(async () => {
  await tinyModel({ type: "f16" });
});

describe("pairs stage", () => {
  test("both sources, the mix, and every negative worse in its kind on real output", async () => {
    const t0 = performance.now();
    expectOk(await cli(["run", cfg, "--run-dir", reference]));
    console.log(`pairs e2e run: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const pairs = pairsOf(reference);
    const bon = pairs.filter((p) => p.source === "best-of-n");
    const syn = pairs.filter((p) => p.source === "synthetic");
    expect(bon.length).toBeGreaterThan(0);
    expect(bon.length).toBeLessThanOrEqual(6);
    // 20 examples, default mix 30/25/20/15/10: 6/5/4/3/2, minus any item whose edit failed its check.
    const want = { refusal: 6, "format-violation": 5, incorrect: 4, "off-topic": 3, verbose: 2 };
    const m = manifest(reference).stages.pairs!;
    const summary = m.provenance.extra.summary as { byKind: Record<string, number>; skipped: Record<string, number>; bySource: Record<string, number>; length: { all: { difference: { count: number } } } };
    for (const [k, n] of Object.entries(want)) {
      const skipped = Object.entries(summary.skipped).filter(([r]) => r.startsWith(`${k}:`)).reduce((s, [, v]) => s + v, 0);
      expect(syn.filter((p) => p.negativeKind === k).length + skipped).toBe(n);
    }
    expect(syn.length).toBeGreaterThanOrEqual(18);
    const byId = new Map<string, { instruction: string; response: string }>(ITEMS.map((it, i) => [`res-${i}`, it]));
    const tok = (t: string) => t.split(/\s+/).length;
    for (const p of pairs) {
      expect(p.chosen).not.toBe(p.rejected);
      expect(() => trainingText(p.instruction, p.chosen)).not.toThrow();
      expect(() => trainingText(p.instruction, p.rejected, { allowDelimiters: true })).not.toThrow();
      expect(p.marginGap).toBeCloseTo(p.chosenMargin! - p.rejectedMargin!, 9);
    }
    for (const p of bon) {
      expect(p.chosenId).toMatch(new RegExp(`^bon-${p.instructionId}-[0-7]$`));
      expect(p.rejectedId).toMatch(new RegExp(`^bon-${p.instructionId}-[0-7]$`));
      expect(p.marginGap!).toBeGreaterThan(0);
      expect(p.seed).not.toBeNull();
    }
    for (const p of syn) {
      const c = byId.get(p.chosenId!)!;
      expect(p.chosen).toBe(c.response);
      const chosen = { id: p.chosenId!, instruction: p.instruction, response: p.chosen };
      expect(checkNegative(p.negativeKind!, chosen, p.rejected, { tokens: tok, verboseRatio: 1.5, offTopicMaxOverlap: 0.2 })).toBeNull();
      const cw = contentWords(p.chosen);
      const rw = contentWords(p.rejected);
      switch (p.negativeKind) {
        case "refusal":
          expect(isRefusal(p.rejected)).toBe(true);
          expect(coverage(cw, rw)).toBeLessThanOrEqual(0.2);
          break;
        case "format-violation":
          expect(findLeakage(p.rejected).length).toBeGreaterThan(0);
          expect(findLeakage(p.chosen)).toEqual([]);
          break;
        case "incorrect":
          expect(p.rejected).not.toBe(p.chosen);
          break;
        case "off-topic":
          expect(overlap(rw, contentWords(p.instruction))).toBeLessThanOrEqual(0.2);
          expect(p.rejectedId).toMatch(/^res-\d+$/);
          expect(p.rejectedId).not.toBe(p.chosenId);
          break;
        case "verbose":
          expect(p.rejectedTokens).toBeGreaterThanOrEqual(2 * p.chosenTokens);
          break;
      }
      // Deterministic edits carry no seed; model-made ones carry the generation's.
      if (p.seed !== null) expect(p.rejectedId).toBe(`neg-${p.chosenId}-${p.negativeKind}`);
    }
    const keys = pairs.map((p) => `${p.instruction}\0${p.chosen}\0${p.rejected}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(pairs.map((p) => p.id)).size).toBe(pairs.length);
    expect(summary.bySource).toEqual({ "best-of-n": bon.length, synthetic: syn.length });
    expect(summary.length.all.difference.count).toBe(pairs.length);
    expect(JSON.parse(readFileSync(join(reference, "pairs/pairs-summary.json"), "utf8")).pairs).toBe(pairs.length);
    const adapter = m.provenance.extra.adapter as { path: string; applied: boolean };
    expect(adapter.applied).toBe(true);
    expect(adapter.path).toBe(join(reference, "sft/adapter.gguf"));
    // Best-of-N work items that gave no pair are counted, by reason.
    const bonSkipped = Object.entries(summary.skipped).filter(([r]) => r.startsWith("best-of-n:")).reduce((s, [, v]) => s + v, 0);
    expect(bon.length + bonSkipped).toBe(6);
  });

  test("the SFT adapter changes what the stage's generator samples (applied per call, base model loaded once)", async () => {
    const load = manifest(reference).stages.pairs!.provenance.extra as { modelPath: string };
    const model = await loadModel(load.modelPath, { contextSize: 512, threads: 1 });
    try {
      const { nativeGenerator } = await import("../../plugins/shared/native-generator.ts");
      const adapter = await model.loadAdapter(join(reference, "sft/adapter.gguf"));
      const prompt = model.tokenize("Instruction: Name a fruit.\nResponse:", { addSpecial: false, parseSpecial: false });
      const req = [{ prompt, sampling: { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1, maxTokens: 16, seed: 1, stop: [] } }];
      const base = await nativeGenerator(model).generate(req);
      const sft = await nativeGenerator(model, { adapters: [{ adapter, scale: 1 }] }).generate(req);
      const again = await nativeGenerator(model).generate(req);
      expect(again[0]!.tokens).toEqual(base[0]!.tokens);
      expect(sft[0]!.tokens).not.toEqual(base[0]!.tokens);
      adapter.dispose();
    } finally {
      model.dispose();
    }
  });

  test("SIGKILL in the middle of the stage, then the same command: the same bytes", async () => {
    const runDir = join(dir, "killed");
    const child = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", cfg, "--run-dir", runDir], { stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
    const commitFile = join(runDir, `${PAIRS}.commit.json`);
    for (let i = 0; i < 9600; i++) {
      try {
        if (existsSync(commitFile) && JSON.parse(readFileSync(commitFile, "utf8")).records > 0) break;
      } catch {}
      await Bun.sleep(25);
    }
    child.kill("SIGKILL");
    await child.exited;
    expect(existsSync(join(runDir, PAIRS))).toBe(false);
    expectOk(await cli(["run", cfg, "--run-dir", runDir]));
    expect(readFileSync(join(runDir, PAIRS), "utf8")).toBe(readFileSync(join(reference, PAIRS), "utf8"));
    expect(readFileSync(join(runDir, "pairs/pairs-summary.json"), "utf8")).toBe(readFileSync(join(reference, "pairs/pairs-summary.json"), "utf8"));
  });
});

// The pairs QC gate on the stage's real output: a failed gate stops the run (gate: stop) or,
// reported, makes dpo refuse the pairs until forced; with shards it covers the merged whole.
// Each test works on a copy of the reference run, so only the stages whose config changed run.
function copyOfReference(name: string): string {
  const to = join(dir, name);
  cpSync(reference, to, { recursive: true });
  return to;
}

/** The reference config with the pairs stage's header and QC changed, and stages appended. */
function variant(file: string, o: { pairsHeader?: string; qc?: string; after?: string }): string {
  // Random weights: the reference's critic rarely separates best-of-N samples, so it reports.
  const header = "  - plugin: pairs\n    gate: report\n";
  let text = readFileSync(cfg, "utf8").replace(header, o.pairsHeader ?? header);
  if (o.qc) text = text.replace("      batch: 4\n", `      batch: 4\n      qc: ${o.qc}\n`);
  return writeConfig(dir, file, text + (o.after ?? ""));
}

const DPO = (force: boolean) => `  - plugin: dpo
    config: { lora: { rank: 4, alpha: 8 }, maxSteps: 2, microBatch: 2, gradAccum: 1, threads: 1, force: ${force} }
`;

describe("pairs QC gate", () => {
  test("an unsharded run gates its own pairs; the decision is in the manifest and pairs-summary.json", () => {
    const m = manifest(reference).stages.pairs!;
    expect(m.gates.map((g) => g.name)).toEqual(["pairs", "best-of-n-kept", "duplicate-rate", "identical-sides", "chosen-leakage", "kind-mix", "length-difference"]);
    const summary = JSON.parse(readFileSync(join(reference, "pairs/pairs-summary.json"), "utf8"));
    expect(summary.qc.gates.map((g: { passed: boolean }) => g.passed)).toEqual(m.gates.map((g) => g.passed));
    expect(summary.work).toEqual({ bestOfN: 6, synthetic: 20 });
    expect((m.gates[0] as { summary?: string }).summary).toBe(`${pairsOf(reference).length} pairs >= 1`);
  });

  test("a failed pairs gate stops the run; reported, it stops dpo; force: true trains and records it", async () => {
    const runDir = copyOfReference("gated");
    const qc = "{ minPairs: 1000, minBestOfNKept: null }";
    const stopped = await cli(["run", variant("gated-stop.yaml", { pairsHeader: "  - plugin: pairs\n    gate: stop\n", qc, after: DPO(false) }), "--run-dir", runDir]);
    expect(stopped.exitCode).toBe(3);
    expect(stopped.stderr).toContain("gate 'pairs' of stage 'pairs' failed:");
    expect(manifest(runDir).stages.dpo).toBeUndefined();

    // The gate mode is not the stage's identity: pairs is not recomputed, dpo refuses.
    const reported = variant("gated-report.yaml", { pairsHeader: "  - plugin: pairs\n    gate: report\n", qc, after: DPO(false) });
    const refused = await cli(["run", reported, "--run-dir", runDir]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("stage 'pairs': unchanged, skipped");
    expect(refused.stderr).toContain("dpo: refusing pairs whose QC did not pass (stage 'pairs', failed: pairs)");
    expect(existsSync(join(runDir, "dpo/adapter.gguf"))).toBe(false);

    const forced = await cli(["run", variant("gated-force.yaml", { pairsHeader: "  - plugin: pairs\n    gate: report\n", qc, after: DPO(true) }), "--run-dir", runDir]);
    expectOk(forced);
    const meta = JSON.parse(readFileSync(join(runDir, "dpo/adapter.gguf.meta.json"), "utf8"));
    expect(meta.qc).toEqual({ stage: "pairs", passed: false, failedGates: ["pairs"], forced: true });
    expect(manifest(runDir).stages.dpo!.provenance.extra.dpo).toMatchObject({ qcPassed: false, qcForced: true });
  });

  test("sharded: the summary and the gate cover the merged whole, not a shard's share", async () => {
    const runDir = copyOfReference("sharded");
    // 6 best-of-N instructions and 20 chosen examples over 2 shards: at most 3 + 10 = 13 pairs
    // a shard, so a shard alone fails 14 and the merged whole (>= 18 synthetic) passes.
    expectOk(await cli(["run", variant("sharded.yaml", { pairsHeader: "  - plugin: pairs\n    gate: report\n    shards: 2\n", qc: "{ minPairs: 14 }" }), "--run-dir", runDir]));
    const pairs = pairsOf(runDir);
    const st = manifest(runDir).stages.pairs!;
    expect(st.gates.map((g) => g.name)).toEqual(["pairs", "best-of-n-kept", "duplicate-rate", "identical-sides", "chosen-leakage", "kind-mix", "length-difference"]);
    expect(st.gates[0]).toMatchObject({ passed: true, summary: `${pairs.length} pairs >= 14` });
    expect((st as unknown as { files: { file: string }[] }).files.map((f) => f.file)).toEqual(["pairs-summary.json"]);
    const whole = JSON.parse(readFileSync(join(runDir, "pairs/pairs-summary.json"), "utf8"));
    const parts = [0, 1].map((i) => JSON.parse(readFileSync(join(runDir, `pairs/shards/${i}-of-2/pairs-summary.json`), "utf8")));
    for (const p of parts) {
      expect(p.pairs).toBeLessThan(14);
      expect(p.qc).toBeNull();
    }
    expect(whole.pairs).toBe(pairs.length);
    expect(whole.pairs).toBe(parts[0].pairs + parts[1].pairs);
    expect(whole.work).toEqual({ bestOfN: 6, synthetic: 20 });
    expect(whole.duplicates).toBe(parts[0].duplicates + parts[1].duplicates);
    expect(whole.bySource).toEqual({ "best-of-n": pairs.filter((p) => p.source === "best-of-n").length, synthetic: pairs.filter((p) => p.source === "synthetic").length });
    expect(whole.length.all.difference.count).toBe(pairs.length);
    const skipped = (s: { skipped: Record<string, number> }) => Object.values(s.skipped).reduce((a, b) => a + b, 0);
    expect(skipped(whole)).toBe(skipped(parts[0]) + skipped(parts[1]));
    expect(st.provenance.extra.summary).toEqual(whole);
  });
});
