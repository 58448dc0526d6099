// Issue 11 item 4 / issue 12 item 6 / issue 13 item 4: one evaluator run over base, the in-context
// baseline base+few-shot, SFT, DPO and DPO-only: the
// smoke config on its tiny synthesized model, the run's model and adapters wired as the
// evaluator's (optional) inputs, one model load for the four variants (adapters applied per
// call), and a report whose paired rows and gates cover SFT vs base, DPO vs SFT and DPO vs
// DPO-only, and SFT and DPO vs base+few-shot. A config still naming the folded `pipeline-evaluator` gets a config error.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, ROOT, tempDir } from "../helpers.ts";
import { expectOk, manifest } from "../plugins/generate-helpers.ts";
import { sha256 } from "../../core/provenance.ts";
import { fewShotPool } from "../../plugins/evaluator/fewshot.ts";
import { buildResponsePrompt } from "../../plugins/prompts/prompts.ts";

setDefaultTimeout(300_000);

describe("the evaluator on the run's own variants", () => {
  test("base, base+few-shot, sft, dpo and dpo-only in one run; the report covers the five comparisons, each gated", async () => {
    const dir = tempDir();
    const config = join(dir, "pipeline.yaml");
    // The smoke config ends with testset + evaluator over the run's sft, dpo and dpo-only
    // stages: the README's main job is this test's pipeline.
    const smoke = readFileSync(join(ROOT, "configs/smoke.yaml"), "utf8");
    expect(smoke).toContain("  - plugin: evaluator\n    inputs: { sft: sft, dpo: dpo, dpo-only: dpo-only }");
    writeFileSync(config, smoke.replace(/^name: smoke$/m, "name: pipeline-eval"));
    const runDir = join(dir, "run");
    const r = await cli(["run", config, "--run-dir", runDir]);
    expectOk(r);
    const m = manifest(runDir);
    const ev = m.stages.evaluator!;
    expect(ev.status).toBe("done");
    const wired = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).stages.evaluator.inputs;
    expect(Object.fromEntries(Object.entries(wired).map(([slot, w]) => [slot, (w as { stage: string }).stage]))).toEqual({ tests: "testset", model: "load", sft: "sft", dpo: "dpo", "dpo-only": "dpo-only" });
    const PAIRS = ["sft/base", "sft/base+few-shot", "dpo/sft", "dpo/base+few-shot", "dpo/dpo-only"];
    expect(ev.gates.map((g) => g.name)).toEqual(PAIRS.map((p) => `significance ${p.replace("/", " vs ")}`));
    // The four variants were one model load: the last one before the evaluator started (the
    // training stages release the service's model), none after.
    const log = r.stderr.slice(r.stderr.indexOf("stage 'evaluator' (evaluator"));
    expect(log.match(/model service: loaded /g)?.length).toBe(1);

    const results = JSON.parse(readFileSync(join(runDir, "evaluator/evaluation_results.json"), "utf8"));
    const overall = results.analysis.pairs.filter((p: { scope: string }) => p.scope === "overall").map((p: { candidate: string; baseline: string }) => `${p.candidate}/${p.baseline}`);
    expect(overall).toEqual(PAIRS);
    expect(results.analysis.gates.map((g: { candidate: string; baseline: string }) => `${g.candidate}/${g.baseline}`)).toEqual(PAIRS);
    // The variants differ in their adapters only, and each adapter is the wired stage's file.
    const variants = results.variants as { name: string; model: { sha256: string }; adapters: { path: string }[] }[];
    expect(variants.map((v) => v.name)).toEqual(["base", "base+few-shot", "sft", "dpo", "dpo-only"]);
    expect(new Set(variants.map((v) => v.model.sha256)).size).toBe(1);
    expect(variants.map((v) => v.adapters.map((a) => a.path))).toEqual([[], [], [join(runDir, "sft/adapter.gguf")], [join(runDir, "dpo/adapter.gguf")], [join(runDir, "dpo-only/adapter.gguf")]]);
    // The in-context baseline (issue 13 item 4) was prompted with the builder's few-shot prompt
    // (seed 0, k 3, one header), base zero-shot; its provenance says so.
    const lines = (v: string) => readFileSync(join(runDir, `evaluator/${v}.responses.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { instruction: string; promptSha256: string });
    const fewShot = lines("base+few-shot");
    expect(fewShot.map((r) => r.promptSha256)).toEqual(fewShot.map((r) => sha256(buildResponsePrompt(r.instruction, { seed: 0, key: "evaluation", k: 3, pool: fewShotPool(fewShot.map((x) => x.instruction)) }).prompt)));
    expect(lines("base").map((r) => r.promptSha256)).toEqual(fewShot.map((r) => sha256(`Instruction: ${r.instruction}\nResponse:`)));
    expect(ev.provenance.extra.fewShotBaseline).toMatchObject({ variant: "base+few-shot", prompt: { fewShot: 3, fewShotSeed: 0 } });
    // The self-judge (issue 13 item 5): the base model's pair critic judged every response (each
    // smoke test type has checks), against the checks' strict verdict, per variant and type.
    const judged = readFileSync(join(runDir, "evaluator/self_judge.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { variant: string; id: string; margin: number; threshold: number; accepted: boolean });
    expect(judged.length).toBe(5 * fewShot.length);
    for (const x of judged) expect(x.accepted).toBe(x.margin >= x.threshold);
    const sj = results.selfJudge as { metric: string; skipped: number; critic: { method: string }; rows: { variant: string; scope: string; n: number; table: Record<string, number>; agreement: number | null; kappa: number | null }[] };
    expect(sj).toMatchObject({ metric: "strict", skipped: 0, threshold: 1 });
    expect(["single-token", "summed-log-probs"]).toContain(sj.critic.method);
    const overallRows = sj.rows.filter((r) => r.scope === "overall");
    expect(overallRows.map((r) => r.variant)).toEqual(["base", "base+few-shot", "sft", "dpo", "dpo-only"]);
    for (const row of overallRows) {
      const t = row.table;
      expect(t.tp! + t.fp! + t.fn! + t.tn!).toBe(row.n);
      expect(row.n).toBe(fewShot.length);
      // The critic's accepts are the verdicts' (the table joins them with the checks' outcomes).
      const acc = judged.filter((x) => x.variant === row.variant && x.accepted).length;
      expect(t.tp! + t.fp!).toBe(acc);
    }
    // The judge is the base model with no adapter: a response judged twice (same instruction and
    // text under two variants) gets the same margin.
    const full = (v: string) => readFileSync(join(runDir, `evaluator/${v}.responses.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; response: string });
    const margin = new Map(judged.map((x) => [`${x.variant}/${x.id}`, x.margin]));
    for (const r of full("sft")) for (const v of ["dpo", "dpo-only"]) {
      const o = full(v).find((x) => x.id === r.id)!;
      if (o.response === r.response) expect(margin.get(`${v}/${r.id}`)!).toBeCloseTo(margin.get(`sft/${r.id}`)!, 3);
    }
    expect(readFileSync(join(runDir, "evaluator/summary.txt"), "utf8")).toContain("self-judge (pair critic, base model");
    // report.html shows every comparison's gate, not only the first.
    const html = readFileSync(join(runDir, "evaluator/report.html"), "utf8");
    expect([...html.matchAll(/<p class="gate" data-candidate="([^"]+)" data-baseline="([^"]+)"/g)].map((x) => `${x[1]}/${x[2]}`)).toEqual(PAIRS);
    // `selftune report` rebuilds the same analysis (the default pairs come from the run's own variants).
    const before = results.analysis;
    const rebuilt = await cli(["report", runDir]);
    expect(rebuilt.exitCode).toBe(0);
    const after = JSON.parse(readFileSync(join(runDir, "evaluator/evaluation_results.json"), "utf8"));
    expect(after.analysis).toEqual(before);
    expect(after.selfJudge).toEqual(results.selfJudge);
  });

  test("a config naming pipeline-evaluator is refused before anything runs, saying what to write instead", async () => {
    const dir = tempDir();
    const smoke = readFileSync(join(ROOT, "configs/smoke.yaml"), "utf8");
    const old = smoke.replace("  - plugin: evaluator\n", "  - plugin: pipeline-evaluator\n");
    expect(old).not.toBe(smoke);
    const config = join(dir, "old.yaml");
    writeFileSync(config, old);
    const r = await cli(["run", config, "--run-dir", join(dir, "run")]);
    expect(r.exitCode).toBe(2);
    const line = old.split("\n").findIndex((l) => l === "  - plugin: pipeline-evaluator") + 1;
    expect(r.stderr).toContain(`${config}:`);
    expect(r.stderr).toMatch(new RegExp(`old\\.yaml:(${line}|${line + 3}): stages\\[\\d+\\]\\.config: the pipeline-evaluator plugin was folded into \`evaluator\`: write \`plugin: evaluator\``));
    expect(r.stderr).not.toContain("has no input slot");
    expect(existsSync(join(dir, "run"))).toBe(false);
  });
});
