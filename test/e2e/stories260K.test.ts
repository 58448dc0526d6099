// The whole pipeline on a real trained model: configs/stories260K.yaml runs load -> prompts
// -> instructions -> responses -> qc -> sft -> pairs -> dpo (and dpo-only) -> testset ->
// evaluator on stories260K, gates reporting (a story model cannot follow instructions). What
// random weights never test is checked on the way: the model ends its stories with its own
// tokens and their text reaches no artifact, the sentinels take that for a base model's end
// of text, and the critic reads " a" / " b" because " A" is not one token.
import { expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { findChatMarkup } from "../../plugins/prompts/clean.ts";
import { ModelInfo, SftExample } from "../../plugins/shared/kinds.ts";
import { cli, ROOT, tempDir } from "../helpers.ts";
import { expectOk, manifest, readJsonl } from "../plugins/generate-helpers.ts";
import { STORIES260K, describeStories } from "../stories260k.ts";

setDefaultTimeout(300_000);

const strip = ({ _prov, ...r }: Record<string, unknown>) => r;

describeStories("configs/stories260K.yaml", () => {
  const runDir = join(tempDir(), "stories260K");

  test("runs end to end on the real model", async () => {
    const t0 = performance.now();
    const r = await cli(["run", join(ROOT, "configs/stories260K.yaml"), "--run-dir", runDir], { SELFTUNE_STORIES260K: STORIES260K });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`stories260K run: ${seconds.toFixed(1)} s`);
    expectOk(r);
    expect(seconds).toBeLessThan(120);
    const m = manifest(runDir);
    expect(Object.keys(m.stages)).toEqual(["load", "prompts", "instructions", "responses", "qc", "sft", "pairs", "dpo", "dpo-only", "testset", "evaluator"]);
    for (const s of Object.values(m.stages)) expect(s.status).toBe("done");
  });

  test("the sentinels pass: the critic's labels, and the model's own end of text is not chat markup", () => {
    const info = ModelInfo.parse(strip(readJsonl(join(runDir, "load/model.jsonl"))[0]!));
    expect(info).toMatchObject({ architecture: "llama", vocabSize: 512, chatTemplate: "absent" });
    expect(info.sentinels.map((s) => [s.name, s.passed])).toEqual([["tokenizer", true], ["critic-choices", true], ["chat-markup", true], ["persona", true]]);
    expect(info.sentinels.find((s) => s.name === "critic-choices")!.detail).toContain('" a" / " b" = tokens [261] / [268], single-token');
  });

  test("no control token's text in any instruction, response, pair or evaluated answer; stories end on their own", () => {
    const texts: string[] = [];
    for (const r of readJsonl(join(runDir, "instructions/instructions.jsonl"))) texts.push(String(r.text));
    const examples = readJsonl(join(runDir, "responses/examples.jsonl")).map((x) => SftExample.parse(strip(x)));
    for (const e of examples) texts.push(e.response, e.raw);
    for (const p of readJsonl(join(runDir, "pairs/pairs.jsonl"))) texts.push(String(p.chosen), String(p.rejected));
    for (const v of ["base", "sft", "dpo", "dpo-only"]) for (const r of readJsonl(join(runDir, `evaluator/${v}.responses.jsonl`))) texts.push(String(r.raw ?? ""), String(r.response ?? ""));
    expect(texts.length).toBeGreaterThan(50);
    for (const t of texts) {
      expect(t).not.toMatch(/<\/?s>|<unk>/);
      expect(findChatMarkup(t)).toBeNull();
    }
    // Room enough to finish a story: most end with the model's own </s> or <s> (stop reason eos),
    // and the stage counts those its <s> (a control token, not end-of-generation) ended.
    expect(examples.filter((e) => e.stopReason === "eos").length).toBeGreaterThanOrEqual(examples.length / 2);
    expect(manifest(runDir).stages.responses!.provenance.extra.specialTokenStops).toBeGreaterThan(0);
  });

  test("every stage that judges records which labels it read and how", () => {
    const m = manifest(runDir);
    for (const id of ["instructions", "responses", "pairs"]) {
      expect(m.stages[id]!.provenance.extra.critic).toMatchObject({ labels: { accept: " a", reject: " b" }, method: "single-token", tokens: { accept: [261], reject: [268] }, default: false });
    }
    // The training stages trained and the evaluator reported on every variant.
    for (const id of ["sft", "dpo", "dpo-only"]) expect(existsSync(join(runDir, id, "adapter.gguf"))).toBe(true);
    const first = readJsonl(join(runDir, "dpo/metrics.jsonl"))[0] as { loss: number };
    expect(Math.abs(first.loss - Math.LN2)).toBeLessThan(1e-9);
    expect(readFileSync(join(runDir, "evaluator/summary.txt"), "utf8")).toContain("dpo-only");
  });
});
