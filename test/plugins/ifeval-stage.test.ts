// IFEval files through the real pipeline: the testset stage turns one into test
// instructions, the evaluator takes one directly (no test-set stage), and both report
// IFEval's four metrics per variant — the same numbers `selftune ifeval score` gives for
// the same responses — in evaluation_results.json, summary.txt and report.html, also
// after `selftune report` rebuilds them.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir, writeConfig } from "../helpers.ts";
import { oneLine } from "../../plugins/evaluator/ifeval/tests.ts";
import type { EvaluationResults } from "../../plugins/evaluator/results.ts";

const INPUT = [
  { key: 11, prompt: "Describe a river.\nDo not use any commas.", instruction_id_list: ["punctuation:no_comma", "keywords:existence"], kwargs: [{}, { keywords: ["river"] }] },
  { key: 12, prompt: "Write about cats in lower case.", instruction_id_list: ["change_case:english_lowercase"], kwargs: [{}] },
  { key: 13, prompt: "Answer with a title.", instruction_id_list: ["detectable_format:title", "length_constraints:number_words"], kwargs: [{}, { num_words: 5, relation: "at least" }] },
  { key: 14, prompt: "Quote everything.", instruction_id_list: ["startend:quotation"], kwargs: [{}] },
];
// What each variant answers, by prompt.
const ANSWERS: Record<string, string[]> = {
  base: ["Rivers, lakes and seas.", "Cats Are Great.", "No title here at all.", "Here:\n\"quoted\""],
  good: ["The riverbank is green and calm", "cats sleep most of the day and play at night.", "<<Cats>>\nCats are small furry friends.", '"all of it quoted"'],
};

const SCRIPTED = `import { readFileSync } from "node:fs";
export function createGenerator(options) {
  const answers = JSON.parse(readFileSync(options.answers, "utf8"));
  return { async load(variant) { return { info: {}, async generate(prompts) {
    return prompts.map((p) => {
      const instruction = /Instruction: ([^\\n]*)\\nResponse:$/.exec(p)[1];
      const text = " " + answers[variant.name][instruction] + "\\nEND\\n";
      return { text, tokens: 5, stop: "stop" };
    });
  }, async dispose() {} }; } };
}
`;

let dir: string;
beforeAll(() => {
  dir = tempDir("selftune-ifeval-stage-");
  writeFileSync(join(dir, "input_data.jsonl"), INPUT.map((l) => JSON.stringify(l)).join("\n") + "\n");
  writeFileSync(join(dir, "scripted.ts"), SCRIPTED);
  // Two files: identical variants would share one response cache.
  writeFileSync(join(dir, "base.gguf"), "never read by the scripted generator");
  writeFileSync(join(dir, "good.gguf"), "another file the scripted generator never reads");
  const byInstruction = Object.fromEntries(Object.entries(ANSWERS).map(([v, a]) => [v, Object.fromEntries(INPUT.map((it, i) => [oneLine(it.prompt), a[i]]))]));
  writeFileSync(join(dir, "answers.json"), JSON.stringify(byInstruction));
  for (const v of Object.keys(ANSWERS)) writeFileSync(join(dir, `${v}.responses.jsonl`), INPUT.map((it, i) => JSON.stringify({ prompt: it.prompt, response: ANSWERS[v]![i] })).join("\n") + "\n");
});

const evaluator = (extra: string) => `  - id: eval
    plugin: evaluator
    config:
      generator: ./scripted.ts
      generatorOptions: { answers: ${join(dir, "answers.json")} }
      variants: [{ name: base, model: ./base.gguf }, { name: good, model: ./good.gguf }]
${extra}`;
const results = (runDir: string): EvaluationResults => JSON.parse(readFileSync(join(runDir, "eval", "evaluation_results.json"), "utf8"));

async function offline(variant: string, semantics: string) {
  const out = join(dir, `offline-${variant}-${semantics}`);
  const r = await cli(["ifeval", "score", "--input", join(dir, "input_data.jsonl"), "--responses", join(dir, `${variant}.responses.jsonl`), "--semantics", semantics, "--out", out]);
  expect(r.exitCode).toBe(0);
  return JSON.parse(readFileSync(join(out, "ifeval_metrics.json"), "utf8"));
}

describe("an IFEval file in the pipeline", () => {
  test("testset stage (selftune semantics) -> evaluator: metrics per variant, as the offline scorer gives them", async () => {
    const config = writeConfig(dir, "via-testset.yaml", `name: ifeval-testset
stages:
  - id: tests
    plugin: testset
    config: { ifeval: { path: ./input_data.jsonl, semantics: selftune } }
${evaluator("")}`);
    const runDir = join(dir, "run-testset");
    const r = await cli(["run", config, "--run-dir", runDir]);
    expect(r.stderr).not.toContain("error");
    const tests = readFileSync(join(runDir, "tests", "tests.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(tests.map((t) => [t.id, t.type, t.checks.length])).toEqual([["ifeval-11", "instruction_following", 2], ["ifeval-12", "instruction_following", 1], ["ifeval-13", "instruction_following", 2], ["ifeval-14", "instruction_following", 1]]);
    const res = results(runDir);
    expect(res.ifeval?.map((v) => v.variant)).toEqual(["base", "good"]);
    for (const v of res.ifeval!) {
      const m = await offline(v.variant, "selftune");
      expect(v.metrics.promptLevel).toEqual(m.promptLevel);
      expect(v.metrics.instructionLevel).toEqual(m.instructionLevel);
      expect(v.metrics.byInstruction).toEqual(m.byInstruction);
    }
    // selftune's whole-word keywords: "river" is not in "riverbank"
    expect(res.ifeval![1]!.metrics.promptLevel).toEqual({ strict: 0.75, loose: 0.75 });
    expect(res.ifeval![0]!.metrics.promptLevel.strict).toBe(0);
    expect(res.ifeval![0]!.metrics.promptLevel.loose).toBe(0.25); // "Here:\n\"quoted\"" passes once its first line is dropped
  });

  test("evaluator alone with ifeval: (reference semantics): no test-set stage needed; summary, report and report rebuild", async () => {
    const config = writeConfig(dir, "direct.yaml", `name: ifeval-direct
stages:
${evaluator("      ifeval: { path: ./input_data.jsonl }\n")}`);
    const runDir = join(dir, "run-direct");
    const r = await cli(["run", config, "--run-dir", runDir]);
    expect(r.stderr).not.toContain("error");
    const res = results(runDir);
    expect(res.ifeval?.map((v) => v.variant)).toEqual(["base", "good"]); // the loop below checks each
    for (const v of res.ifeval!) {
      const m = await offline(v.variant, "ifeval");
      expect([v.variant, v.metrics.promptLevel, v.metrics.instructionLevel]).toEqual([v.variant, m.promptLevel, m.instructionLevel]);
    }
    // the reference's substring rule: "Rivers, ..." has "river"; "riverbank" too
    expect(res.ifeval![0]!.metrics.byInstruction.find((x) => x.id === "keywords:existence")!.strict).toBe(1);
    expect(res.ifeval![1]!.metrics.promptLevel).toEqual({ strict: 1, loose: 1 });
    const summary = readFileSync(join(runDir, "eval", "summary.txt"), "utf8");
    expect(summary).toContain("IFEval, variant good: 4 prompts, 6 instructions");
    expect(summary).toMatch(/prompt-level\s+100\.0%\s+100\.0%/);
    const html = readFileSync(join(runDir, "eval", "report.html"), "utf8");
    expect(html).toContain('<div data-section="ifeval">');
    expect(html).toContain("change_case:english_lowercase");
    const rebuilt = await cli(["report", runDir]);
    expect(rebuilt.exitCode).toBe(0);
    expect(results(runDir).ifeval).toEqual(res.ifeval);
  });

  test("a bad IFEval line stops the stage naming file:line", async () => {
    writeFileSync(join(dir, "bad.jsonl"), JSON.stringify(INPUT[0]) + "\n" + JSON.stringify({ ...INPUT[1], kwargs: [{ language: "en" }] }) + "\n");
    const config = writeConfig(dir, "bad.yaml", `name: ifeval-bad
stages:
${evaluator("      ifeval: { path: ./bad.jsonl }\n")}`);
    const r = await cli(["run", config, "--run-dir", join(dir, "run-bad")]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toContain(`${join(dir, "bad.jsonl")}:2: instruction 1: kwargs of 'change_case:english_lowercase'`);
  });
});
