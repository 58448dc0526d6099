// Issue 13 item 5: the self-judge's numbers. Cohen's kappa against hand-computed values
// (including where it is undefined), the per-variant × type rows of a fixture worked out by
// hand, and the results / summary fields built from recorded verdicts.
import { describe, expect, test } from "bun:test";
import { buildOutputs, type ResponseRecord } from "../../plugins/evaluator/outputs.ts";
import { cohensKappa, summarizeSelfJudge, type Judgement } from "../../plugins/evaluator/self-judge.ts";

describe("Cohen's kappa", () => {
  test("hand-computed values", () => {
    // n 50, po 35/50 = 0.7; accept 25/50, pass 30/50: pe = .5·.6 + .5·.4 = .5; (0.7 − 0.5) / 0.5.
    expect(cohensKappa({ tp: 20, fp: 5, fn: 10, tn: 15 })).toBeCloseTo(0.4, 12);
    // n 100, po .6; accept .6, pass .7: pe = .42 + .12 = .54; .06 / .46.
    expect(cohensKappa({ tp: 45, fp: 15, fn: 25, tn: 15 })).toBeCloseTo(0.06 / 0.46, 12);
    expect(cohensKappa({ tp: 3, fp: 0, fn: 0, tn: 2 })).toBeCloseTo(1, 12);
    expect(cohensKappa({ tp: 0, fp: 5, fn: 5, tn: 0 })).toBeCloseTo(-1, 12);
    // Agreement at chance: accept .5, pass .5, po .5 = pe.
    expect(cohensKappa({ tp: 1, fp: 1, fn: 1, tn: 1 })).toBeCloseTo(0, 12);
  });
  test("undefined where pe = 1 or there are no items", () => {
    expect(cohensKappa({ tp: 5, fp: 0, fn: 0, tn: 0 })).toBeNull();
    expect(cohensKappa({ tp: 0, fp: 0, fn: 0, tn: 4 })).toBeNull();
    expect(cohensKappa({ tp: 0, fp: 0, fn: 0, tn: 0 })).toBeNull();
  });
});

const rec = (variant: string, id: string, type: ResponseRecord["type"], strict: boolean, loose = strict): ResponseRecord => ({
  variant,
  variantHash: `h-${variant}`,
  id,
  type,
  template: null,
  instruction: `Do ${id}.`,
  promptSha256: "p",
  raw: " ok",
  response: "ok",
  stopReason: "END",
  tokens: 1,
  stop: "stop",
  words: 1,
  cached: false,
  checks: [{ type: "min_words", strict, loose, detail: "" }],
  success: { strict, loose },
});
const j = (variant: string, id: string, margin: number): Judgement => ({ variant, id, margin, threshold: 1, accepted: margin >= 1 });

// base: factual f1 pass/accept (tp), f2 fail/accept (fp), f3 pass/reject (fn); creative c1 fail/reject (tn),
// c2 pass/accept (tp), c3 not judged. sft: every item passes loose only; all rejected.
const responses = {
  base: [rec("base", "f1", "factual", true), rec("base", "f2", "factual", false), rec("base", "f3", "factual", true), rec("base", "c1", "creative", false), rec("base", "c2", "creative", true), rec("base", "c3", "creative", true)],
  sft: ["f1", "f2", "f3", "c1", "c2", "c3"].map((id) => rec("sft", id, id.startsWith("f") ? "factual" : "creative", false, true)),
};
const judgements = [j("base", "f1", 2), j("base", "f2", 1), j("base", "f3", -1), j("base", "c1", -3), j("base", "c2", 4), ...["f1", "f2", "f3", "c1", "c2", "c3"].map((id) => j("sft", id, 0))];
const variants = [
  { name: "base", responses: responses.base },
  { name: "sft", responses: responses.sft },
];

describe("the self-judge's rows", () => {
  test("per variant and type against hand-counted tables", () => {
    const s = summarizeSelfJudge(variants, judgements, { metric: "strict", threshold: 1, critic: { method: "single-token" }, skipped: 1 });
    const row = (v: string, scope: string) => s.rows.find((r) => r.variant === v && r.scope === scope)!;
    expect(s.rows.map((r) => `${r.variant}/${r.scope}`)).toEqual(["base/factual", "base/creative", "base/overall", "sft/factual", "sft/creative", "sft/overall"]);
    expect(row("base", "factual")).toMatchObject({ n: 3, table: { tp: 1, fp: 1, fn: 1, tn: 0 }, precision: 0.5, recall: 0.5, meanMargin: { passed: 0.5, failed: 1 } });
    expect(row("base", "factual").agreement).toBeCloseTo(1 / 3, 12);
    // c3 has no judgement: not counted.
    expect(row("base", "creative")).toMatchObject({ n: 2, table: { tp: 1, fp: 0, fn: 0, tn: 1 }, agreement: 1, precision: 1, recall: 1, kappa: 1 });
    const all = row("base", "overall");
    expect(all).toMatchObject({ n: 5, table: { tp: 2, fp: 1, fn: 1, tn: 1 }, precision: 2 / 3, recall: 2 / 3 });
    expect(all.agreement).toBeCloseTo(0.6, 12);
    // po .6; accept .6, pass .6: pe .36 + .16 = .52; (.6 − .52) / .48 = 1/6.
    expect(all.kappa).toBeCloseTo(1 / 6, 12);
    expect(all.meanMargin.passed).toBeCloseTo(5 / 3, 12);
    expect(all.meanMargin.failed).toBeCloseTo(-1, 12);
    // sft under strict: nothing passes, nothing accepted: all agree, precision/recall/kappa undefined.
    expect(row("sft", "overall")).toMatchObject({ n: 6, table: { tp: 0, fp: 0, fn: 0, tn: 6 }, agreement: 1, precision: null, recall: null, kappa: null });
    // The checks' verdict follows the metric: under loose every sft item passes and is rejected.
    const loose = summarizeSelfJudge(variants, judgements, { metric: "loose", threshold: 1, critic: {}, skipped: 1 });
    expect(loose.rows.find((r) => r.variant === "sft" && r.scope === "overall")).toMatchObject({ table: { tp: 0, fp: 0, fn: 6, tn: 0 }, agreement: 0, recall: 0, precision: null });
  });

  test("results.selfJudge and summary.txt from recorded verdicts; absent without a pass", () => {
    const input = {
      variants: variants.map((v) => ({ record: { name: v.name, hash: `h-${v.name}`, model: { path: "/m.gguf", sha256: "0".repeat(64) }, adapters: [], responsesFile: `${v.name}.responses.jsonl`, generated: 6, cached: 0, loadInfo: null }, responses: v.responses })),
      options: { metric: "strict" as const, alpha: 0.05, confidence: 0.95 },
      decode: { greedy: true as const, maxTokens: 8, stop: [] },
      prompt: {},
      testSetSha256: null,
      provenance: null,
    };
    expect(buildOutputs(input).results.selfJudge).toBeUndefined();
    expect(buildOutputs(input).files["summary.txt"]).not.toContain("self-judge");
    const out = buildOutputs({ ...input, selfJudge: { judgements, threshold: 1, skipped: 1, critic: { method: "single-token" } } });
    expect(out.results.selfJudge!.rows.find((r) => r.variant === "base" && r.scope === "overall")!.table).toEqual({ tp: 2, fp: 1, fn: 1, tn: 1 });
    expect(JSON.parse(out.files["evaluation_results.json"]!).selfJudge.skipped).toBe(1);
    const line = out.files["summary.txt"]!.split("\n").find((l) => l.includes("base") && l.includes("overall") && l.includes("kappa"))!;
    expect(line).toContain("agree  60.0%");
    expect(line).toContain("kappa  0.17");
    expect(line).toContain("tp/fp/fn/tn 2/1/1/1");
  });
});
