// `selftune ifeval score` end to end: the CLI on files the test writes — the four
// metrics and the per-id table on stdout, the reference-format verdict files and the
// metrics JSON in --out, both semantics, and the errors a user can make.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir } from "../helpers.ts";

const INPUT = [
  { key: 1, prompt: "Write about rivers. Do not use commas.", instruction_id_list: ["punctuation:no_comma", "keywords:existence"], kwargs: [{}, { keywords: ["river"] }] },
  { key: 2, prompt: "Shout about cats.", instruction_id_list: ["change_case:english_capital"], kwargs: [{}] },
  { key: 3, prompt: "Wrap it in quotes and end with a postscript.", instruction_id_list: ["startend:quotation", "detectable_content:postscript"], kwargs: [{}, { postscript_marker: "P.S." }] },
];
const RESPONSES = [
  { prompt: INPUT[0]!.prompt, response: "Rivers carry water to the sea and the riverbanks hold life." },
  { prompt: INPUT[1]!.prompt, response: "CATS ARE THE BEST ANIMALS IN THE WHOLE WORLD AND THEY KNOW IT." },
  { prompt: INPUT[2]!.prompt, response: 'Here you go:\n"A quoted answer. P.S. the end."' },
];

function setup(responses = RESPONSES) {
  const dir = tempDir("ifeval-score-");
  const input = join(dir, "input_data.jsonl");
  const resp = join(dir, "responses.jsonl");
  writeFileSync(input, INPUT.map((l) => JSON.stringify(l)).join("\n") + "\n");
  writeFileSync(resp, responses.map((l) => JSON.stringify(l)).join("\n") + "\n");
  return { dir, input, resp };
}
const lines = (p: string) => readFileSync(p, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

describe("selftune ifeval score", () => {
  test("ifeval semantics: metrics printed, verdicts written in the reference's format", async () => {
    const { dir, input, resp } = setup();
    const out = join(dir, "out");
    const r = await cli(["ifeval", "score", "--input", input, "--responses", resp, "--out", out]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    // strict: prompt 1 (substring "river"), 2 pass; 3 fails quotation (opening line) -> 2/3, 4/5
    // loose: 3 passes once the first line is dropped -> 3/3, 5/5
    expect(r.stdout).toMatch(/prompt-level\s+66\.7%\s+100\.0%/);
    expect(r.stdout).toMatch(/instruction-level\s+80\.0%\s+100\.0%/);
    expect(r.stdout).toMatch(/startend:quotation\s+1\s+0\.0%\s+100\.0%/);
    const strict = lines(join(out, "eval_results_strict.jsonl"));
    expect(strict.map((s) => s.follow_instruction_list)).toEqual([[true, true], [true], [false, true]]);
    expect(strict[0]).toMatchObject({ key: 1, instruction_id_list: ["punctuation:no_comma", "keywords:existence"], prompt: INPUT[0]!.prompt, follow_all_instructions: true });
    expect(lines(join(out, "eval_results_loose.jsonl")).map((s) => s.follow_all_instructions)).toEqual([true, true, true]);
    const m = JSON.parse(readFileSync(join(out, "ifeval_metrics.json"), "utf8"));
    expect(m).toMatchObject({ semantics: "ifeval", prompts: 3, instructions: 5, promptLevel: { strict: 2 / 3, loose: 1 }, instructionLevel: { strict: 0.8, loose: 1 } });
  });

  test("selftune semantics: whole-word keywords, so 'river' is not in 'Rivers'", async () => {
    const { input, resp, dir } = setup();
    const r = await cli(["ifeval", "score", "--input", input, "--responses", resp, "--semantics", "selftune"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("selftune semantics");
    expect(r.stdout).toMatch(/keywords:existence\s+1\s+0\.0%\s+0\.0%/);
    // no --out: next to the responses file
    expect(lines(join(dir, "eval_results_strict.jsonl"))[0]!.follow_instruction_list).toEqual([true, false]);
  });

  test("a prompt missing from the responses is an error naming it", async () => {
    const { input, resp } = setup(RESPONSES.slice(0, 2));
    const r = await cli(["ifeval", "score", "--input", input, "--responses", resp]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("no response for 1 of 3 prompts");
    expect(r.stderr).toContain(`key 3 (${input}:3)`);
    expect(r.stderr).toContain(INPUT[2]!.prompt);
  });

  test("a bad input line is an error naming file:line", async () => {
    const { input, resp } = setup();
    writeFileSync(input, readFileSync(input, "utf8") + '{"key": 9, "prompt": "x", "instruction_id_list": ["punctuation:no_comma"]}\n');
    const r = await cli(["ifeval", "score", "--input", input, "--responses", resp]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`${input}:4: not an IFEval input record: kwargs`);
  });

  test("--input and --responses are required", async () => {
    const r = await cli(["ifeval", "score", "--input", "x.jsonl"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("responses");
  });
});
