// The evaluator through the real CLI and pipeline, with a deterministic scripted
// generator (a real function of variant and instruction, not a model) plugged in
// by `generator: ./scripted.ts`: outputs, provenance, gate, cache re-runs, one
// variant loaded at a time, and `selftune report` rebuilding the report.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, ROOT, tempDir, writeConfig } from "../helpers.ts";
import type { RunManifest } from "../../core/provenance.ts";
import type { EvaluationResults } from "../../plugins/evaluator/results.ts";

const ZOD = Bun.resolveSync("zod", ROOT);

/** A source stage that emits the test instructions of a JSON file. */
const SOURCE = `import { z } from ${JSON.stringify(ZOD)};
import { readFileSync } from "node:fs";
import { definePlugin } from ${JSON.stringify(join(ROOT, "core/plugin.ts"))};
import { TestInstructionKind } from ${JSON.stringify(join(ROOT, "plugins/shared/kinds.ts"))};
export default definePlugin({
  name: "tests-from-file", version: "1.0.0", description: "test fixture",
  config: z.strictObject({ file: z.string(), rev: z.number().default(0) }),
  consumes: {}, produces: { tests: TestInstructionKind },
  async run(ctx) { for (const t of JSON.parse(readFileSync(ctx.config.file, "utf8"))) ctx.outputs.tests.write(t); },
});
`;

/**
 * The scripted generator. "good" variants answer every instruction correctly;
 * "base" answers only some factual ones and otherwise leaks a delimiter. It logs
 * every load, dispose and prompt to a file, and refuses a second concurrent load.
 */
const SCRIPTED = `import { appendFileSync } from "node:fs";
let live = 0;
const GOOD = {
  factual: (i) => "The answer is " + i.split("|")[2] + ".",
  explanation: () => "The sky looks blue because air molecules scatter short blue wavelengths of sunlight far more strongly than red ones, so blue light reaches our eyes from every direction.",
  list: () => "1. apple\\n2. pear\\n3. plum",
  instruction_following: () => "cats sleep a lot",
  creative: () => "The sea rolls in with silver foam and sings of ships that sailed away, of gulls that wheel above the spray and stars that drown at break of day.",
};
export function createGenerator(options) {
  const log = (e) => appendFileSync(options.logFile, JSON.stringify(e) + "\\n");
  return {
    async load(variant) {
      if (live > 0) throw new Error("two variants loaded at once");
      live++;
      log({ event: "load", variant: variant.name, adapters: variant.adapters.length });
      return {
        info: { backend: "scripted" },
        async generate(prompts, opts) {
          return prompts.map((p) => {
            const instruction = /Instruction: ([^\\n]*)\\nResponse:$/.exec(p)[1];
            const [type, n] = instruction.split("|");
            log({ event: "generate", variant: variant.name, instruction });
            const good = variant.name !== "base" || (type === "factual" && Number(n) < 3);
            const text = good ? " " + GOOD[type](instruction) + "\\nEND\\n" : " Instruction: more of the same";
            return { text, tokens: text.split(" ").length, stop: good ? "stop" : "length" };
          });
        },
        async dispose() { live--; log({ event: "dispose", variant: variant.name }); },
      };
    },
  };
}
`;

function testSet(extra = ""): unknown[] {
  const items: unknown[] = [];
  for (let n = 0; n < 8; n++) {
    items.push({ id: `f${n}`, type: "factual", template: "t/f", instruction: `factual|${n}|answer#${n}${extra}`, checks: [{ type: "answer", accepted: [`answer#${n}${extra}`] }], seed: 1 });
    items.push({ id: `e${n}`, type: "explanation", template: "t/e", instruction: `explanation|${n}|why`, checks: [], seed: 1 });
    items.push({ id: `l${n}`, type: "list", template: "t/l", instruction: `list|${n}|fruits`, checks: [{ type: "list_items", relation: "at_least", n: 3 }], seed: 1 });
    items.push({ id: `i${n}`, type: "instruction_following", template: "t/i", instruction: `instruction_following|${n}|cats`, checks: [{ type: "lowercase" }, { type: "word_count", relation: "at_most", n: 10 }], seed: 1 });
    items.push({ id: `c${n}`, type: "creative", template: "t/c", instruction: `creative|${n}|sea`, checks: [], seed: 1 });
  }
  return items;
}

interface Setup {
  dir: string;
  runDir: string;
  log: string;
  testsFile: string;
  config(opts?: { variants?: string; gate?: string; rev?: number }): string;
}

function setup(): Setup {
  const dir = tempDir("selftune-eval-");
  writeFileSync(join(dir, "source.ts"), SOURCE);
  writeFileSync(join(dir, "scripted.ts"), SCRIPTED);
  writeFileSync(join(dir, "model.gguf"), "not a real model: the scripted generator never reads it");
  writeFileSync(join(dir, "sft.gguf"), "adapter bytes v1");
  writeFileSync(join(dir, "dpo.gguf"), "another adapter");
  const testsFile = join(dir, "tests.json");
  writeFileSync(testsFile, JSON.stringify(testSet()));
  const log = join(dir, "generator.log");
  const variantsDefault = `[{ name: base, model: ./model.gguf }, { name: sft, model: ./model.gguf, adapters: [{ path: ./sft.gguf, scale: 1.0 }] }]`;
  return {
    dir,
    runDir: join(dir, "run"),
    log,
    testsFile,
    config: (o = {}) =>
      writeConfig(
        dir,
        "eval.yaml",
        `name: evaltest
stages:
  - id: tests
    plugin: ./source.ts
    config: { file: ${testsFile}, rev: ${o.rev ?? 0} }
  - id: eval
    plugin: evaluator
    config:
      generator: ./scripted.ts
      generatorOptions: { logFile: ${log} }
      batchSize: 7
      maxTokens: 64
      variants: ${o.variants ?? variantsDefault}
      gate: ${o.gate ?? "{ alpha: 0.01, compare: [sft, base] }"}
`,
      ),
  };
}

const events = (log: string): { event: string; variant: string; instruction?: string }[] =>
  existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
const manifest = (runDir: string): RunManifest => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
const results = (runDir: string): EvaluationResults => JSON.parse(readFileSync(join(runDir, "eval", "evaluation_results.json"), "utf8"));

describe("evaluator stage (scripted generator, real pipeline)", () => {
  let s: Setup;
  let first: Awaited<ReturnType<typeof cli>>;
  beforeAll(async () => {
    s = setup();
    first = await cli(["run", s.config(), "--run-dir", s.runDir]);
  });

  test("the run passes the gate and writes every output, hashed into the manifest", () => {
    expect(first.stderr).not.toContain("error");
    expect(first.exitCode).toBe(0);
    const st = manifest(s.runDir).stages.eval!;
    expect(st.status).toBe("done");
    const files = st.files.map((f) => f.file).sort();
    expect(files).toEqual(["base.responses.jsonl", "evaluation_results.json", "report.html", "sft.responses.jsonl", "summary.txt"]);
    expect(st.gates).toEqual([expect.objectContaining({ name: "significance sft vs base", passed: true })]);
    expect(first.stdout).toContain("gate significance sft vs base: PASS");
    // the rates artifact: one record per variant x (5 types + overall)
    expect(st.artifacts[0]!.records).toBe(12);
  });

  test("results: rates with Wilson CIs, paired McNemar with BH, provenance", () => {
    const r = results(s.runDir);
    const a = r.analysis;
    expect(a.types).toEqual(["factual", "explanation", "list", "instruction_following", "creative"]);
    const rate = (v: string, scope: string) => a.rates.find((x) => x.variant === v && x.scope === scope)!;
    expect(rate("sft", "overall").strict).toMatchObject({ successes: 40, rate: 1 });
    expect(rate("base", "factual").strict).toMatchObject({ successes: 3, rate: 3 / 8 });
    expect(rate("base", "overall").tokenLimitHits).toBe(37);
    // Wilson 3/8: [0.1368, 0.6943]
    expect(rate("base", "factual").strict.lower).toBeCloseTo(0.1368, 4);
    expect(rate("base", "factual").strict.upper).toBeCloseTo(0.6943, 4);
    const overall = a.pairs.find((p) => p.candidate === "sft" && p.baseline === "base" && p.scope === "overall")!;
    expect(overall.table).toEqual({ a: 3, b: 37, c: 0, d: 0 });
    expect(overall.test).toBe("chi-square-cc");
    expect(overall.statistic).toBeCloseTo(36 ** 2 / 37, 10);
    const factual = a.pairs.find((p) => p.scope === "factual")!;
    expect(factual.test).toBe("exact-binomial");
    expect(factual.p).toBeCloseTo(2 / 32, 12); // b = 5, c = 0: 2 * 0.5^5
    // BH over the five types: four with p = 2^-7 (b = 8) and factual with 2^-4
    expect(factual.pAdjusted).toBeCloseTo(2 / 32, 12);
    expect(a.pairs.find((p) => p.scope === "list")!.pAdjusted).toBeCloseTo((2 / 256) * 5 / 4, 12);
    expect(a.gate).toMatchObject({ passed: true, candidate: "sft", baseline: "base" });
    // provenance
    expect(r.variants.map((v) => v.name)).toEqual(["base", "sft"]);
    const sha = (f: string) => new Bun.CryptoHasher("sha256").update(readFileSync(join(s.dir, f))).digest("hex");
    expect(r.variants[0]!.model.sha256).toBe(sha("model.gguf"));
    expect(r.variants[1]!.adapters[0]!.sha256).toBe(sha("sft.gguf"));
    expect(r.variants[0]!.loadInfo).toEqual({ backend: "scripted" });
    expect(r.testSet.sha256).toBe(new Bun.CryptoHasher("sha256").update(readFileSync(join(s.runDir, "tests", "tests.jsonl"))).digest("hex"));
    expect(r.provenance!.runId).toBe(manifest(s.runDir).runId);
    expect(r.decode).toMatchObject({ greedy: true, maxTokens: 64 });
  });

  test("responses JSONL: one record per instruction with raw, cleaned text and every check", () => {
    const recs = readFileSync(join(s.runDir, "eval", "sft.responses.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(recs.length).toBe(40);
    const f0 = recs.find((r) => r.id === "f0");
    expect(f0.raw).toContain("\nEND\n");
    expect(f0.response).toBe("The answer is answer#0.");
    expect(f0.stopReason).toBe("END");
    expect(f0.checks.map((c: { type: string }) => c.type)).toEqual(["non_empty", "no_leakage", "fluent", "answer"]);
    expect(f0.success).toEqual({ strict: true, loose: true });
    const base = readFileSync(join(s.runDir, "eval", "base.responses.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(base.find((r) => r.id === "e0").stopReason).toBe("instruction");
    expect(base.find((r) => r.id === "e0").response).toBe("");
  });

  test("variants are loaded one at a time, each disposed before the next loads", () => {
    const seq = events(s.log).filter((e) => e.event !== "generate").map((e) => `${e.event}:${e.variant}`);
    expect(seq).toEqual(["load:base", "dispose:base", "load:sft", "dispose:sft"]);
    expect(events(s.log).filter((e) => e.event === "generate").length).toBe(80);
  });

  test("summary.txt and report.html", () => {
    const summary = readFileSync(join(s.runDir, "eval", "summary.txt"), "utf8");
    expect(summary).toContain("sft vs base");
    expect(summary).toContain("gate significance sft vs base: PASS");
    const html = readFileSync(join(s.runDir, "eval", "report.html"), "utf8");
    expect(html).toContain('data-chart="success-by-type"');
    expect(html).not.toMatch(/<script|<link|src=|url\(/);
  });

  test("a re-run with an added variant generates only that variant", async () => {
    rmSync(s.log, { force: true });
    const variants = `[{ name: base, model: ./model.gguf }, { name: sft, model: ./model.gguf, adapters: [{ path: ./sft.gguf, scale: 1.0 }] }, { name: dpo, model: ./model.gguf, adapters: [{ path: ./dpo.gguf, scale: 1.0 }] }]`;
    const r = await cli(["run", s.config({ variants }), "--run-dir", s.runDir]);
    expect(r.exitCode).toBe(0);
    const ev = events(s.log);
    expect(ev.filter((e) => e.event === "load").map((e) => e.variant)).toEqual(["dpo"]);
    expect(ev.filter((e) => e.event === "generate").length).toBe(40);
    const res = results(s.runDir);
    expect(res.variants.map((v) => [v.name, v.generated, v.cached])).toEqual([["base", 0, 40], ["sft", 0, 40], ["dpo", 40, 0]]);
    // every later variant against every earlier one
    expect([...new Set(res.analysis.pairs.map((p) => `${p.candidate}>${p.baseline}`))]).toEqual(["sft>base", "dpo>base", "dpo>sft"]);
  });

  test("a changed adapter or a changed instruction regenerates only what it affects", async () => {
    rmSync(s.log, { force: true });
    writeFileSync(join(s.dir, "sft.gguf"), "adapter bytes v2"); // new sha256 -> new variant hash
    const tests = testSet() as { instruction: string; checks: { accepted?: string[] }[] }[];
    tests[0]!.instruction = "factual|0|answer#0-changed";
    tests[0]!.checks[0]!.accepted = ["answer#0-changed"];
    writeFileSync(s.testsFile, JSON.stringify(tests));
    const r = await cli(["run", s.config({ rev: 1 }), "--run-dir", s.runDir]);
    expect(r.exitCode).toBe(0);
    const gens = events(s.log).filter((e) => e.event === "generate");
    expect(gens.filter((e) => e.variant === "sft").length).toBe(40);
    expect(gens.filter((e) => e.variant === "base").map((e) => e.instruction)).toEqual(["factual|0|answer#0-changed"]);
    expect(results(s.runDir).variants.map((v) => [v.name, v.generated])).toEqual([["base", 1], ["sft", 40]]);
  });

  test("a failed gate stops the pipeline with exit 3", async () => {
    const r = await cli(["run", s.config({ gate: "{ compare: [base, sft] }", rev: 1 }), "--run-dir", join(s.dir, "run-gate")]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("significance base vs sft' of stage 'eval' failed");
    expect(r.stderr).toContain("base is not better");
  });

  test("selftune report <run-dir> rebuilds results, summary and report from the responses", async () => {
    const evalDir = join(s.runDir, "eval");
    const before = results(s.runDir);
    for (const f of ["evaluation_results.json", "summary.txt", "report.html"]) rmSync(join(evalDir, f));
    const r = await cli(["report", s.runDir]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("gate significance sft vs base: PASS");
    for (const f of ["evaluation_results.json", "summary.txt", "report.html"]) expect(existsSync(join(evalDir, f))).toBe(true);
    const after = results(s.runDir);
    expect(after.analysis).toEqual(before.analysis);
    expect(after.variants).toEqual(before.variants);
  });

  test("config errors name the problem before anything runs", async () => {
    const bad = writeConfig(s.dir, "bad.yaml", `name: bad\nstages:\n  - plugin: ./source.ts\n    config: { file: x }\n  - plugin: evaluator\n    config:\n      variants: [{ name: a, model: m }, { name: a, model: m }]\n      gate: { compare: [a, nope] }\n`);
    const r = await cli(["run", bad, "--run-dir", join(s.dir, "run-bad")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("duplicate variant name 'a'");
    expect(r.stderr).toContain("'nope' is not a variant");
  });
});

describe("evaluator on the testset plugin's output", () => {
  test("every template-made instruction is scored; nothing in the set trips validation", async () => {
    const dir = tempDir("selftune-eval-ts-");
    writeFileSync(join(dir, "model.gguf"), "m");
    // Echoes the instruction back in lower case: passes some checks (lowercase), fails most.
    writeFileSync(join(dir, "echo.ts"), `export function createGenerator() {
  return { async load() { return { async generate(prompts) { return prompts.map((p) => ({ text: " " + /Instruction: ([^\\n]*)\\nResponse:$/.exec(p)[1].toLowerCase() + "\\nEND\\n", tokens: 5, stop: "stop" })); }, async dispose() {} }; } };
}
`);
    const cfg = writeConfig(dir, "ts.yaml", `name: ts\nstages:\n  - plugin: testset\n    config: { perType: 4 }\n  - plugin: evaluator\n    config:\n      generator: ./echo.ts\n      variants: [{ name: echo, model: ./model.gguf }]\n`);
    const r = await cli(["run", cfg, "--run-dir", join(dir, "run")]);
    expect(r.stderr).not.toContain("error");
    expect(r.exitCode).toBe(0);
    const res: EvaluationResults = JSON.parse(readFileSync(join(dir, "run", "evaluator", "evaluation_results.json"), "utf8"));
    expect(res.testSet.items).toBe(20);
    expect(res.analysis.rates.find((x) => x.scope === "overall")!.n).toBe(20);
    expect(res.analysis.pairs).toEqual([]);
  });
});
