// QC arithmetic on hand-made records (SPEC §5, specs/qc.md).
import { describe, expect, test } from "bun:test";
import { QcConfig, qcDefaults } from "../../plugins/qc/config.ts";
import { computeQc, distribution, histogram, quantile } from "../../plugins/qc/metrics.ts";
import { formatSummary } from "../../plugins/qc/summary.ts";
import { isTrainable, untrainableReasons } from "../../plugins/qc/trainable.ts";
import { instructionType } from "../../plugins/qc/types.ts";
import { QcReport, SftExample, type CriticVerdict } from "../../plugins/shared/kinds.ts";

const sampling = { temperature: 0.3, topP: 0.85, topK: 0, repetitionPenalty: 1.15, maxTokens: 80 };
const verdict = (margin: number, threshold = 1): CriticVerdict => ({ margin, threshold, accepted: margin >= threshold });

let n = 0;
export function example(over: Partial<SftExample> = {}): SftExample {
  n++;
  const rec: SftExample = {
    id: `ex-${n}`,
    instructionId: `ins-${n}`,
    instruction: `Describe object number ${n} in a few words.`,
    response: "A fine answer.",
    raw: " A fine answer.\nEND\n",
    stopReason: "END",
    hitMaxTokens: false,
    responseTokens: 10,
    generatedTokens: 12,
    fewShotIds: ["math-01"],
    sampling,
    seed: 7,
    critic: verdict(2),
    ...over,
  };
  return SftExample.parse(rec);
}

describe("helpers", () => {
  test("quantiles interpolate between order statistics", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3], 0.5)).toBe(2);
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(distribution([])).toBeNull();
    expect(distribution([3, 1, 2])).toEqual({ count: 3, min: 1, p10: 1.2, median: 2, mean: 2, p90: 2.8, max: 3 });
  });

  test("histogram bins: [0,w), [w,2w), ..., [max, ∞)", () => {
    expect(histogram([0, 9, 10, 79, 80, 500], 10, 80)).toEqual({ edges: [0, 10, 20, 30, 40, 50, 60, 70, 80], counts: [2, 1, 0, 0, 0, 0, 0, 1, 2] });
    expect(histogram([5, 25], 10, 25)).toEqual({ edges: [0, 10, 20, 25], counts: [1, 0, 0, 1] });
    expect(histogram([], 16, 32)).toEqual({ edges: [0, 16, 32], counts: [0, 0, 0] });
  });

  test("instruction types", () => {
    expect(instructionType("List four animals that live in the Arctic.")).toBe("list");
    expect(instructionType("Name three primary colors.")).toBe("list");
    expect(instructionType("What is 144 divided by 12?")).toBe("math");
    expect(instructionType("What is 15% of 80?")).toBe("math");
    expect(instructionType("Write a haiku about autumn.")).toBe("creative");
    expect(instructionType("Translate 'thank you' into French.")).toBe("rewrite");
    expect(instructionType("Explain how a rainbow forms.")).toBe("explanation");
    expect(instructionType("Who painted the Mona Lisa?")).toBe("question");
    expect(instructionType("Tell me about yourself.")).toBe("other");
  });

  test("trainability", () => {
    expect(isTrainable(example())).toBe(true);
    expect(isTrainable(example({ critic: null }))).toBe(true);
    expect(untrainableReasons(example({ response: "", stopReason: "runaway", hitMaxTokens: true, critic: verdict(0.5) }))).toEqual(["empty-response", "runaway", "critic-rejected"]);
    expect(untrainableReasons(example({ response: "Paris END" }))).toEqual(["leakage"]);
    expect(untrainableReasons(example({ response: "Paris<|im_end|>" }))).toEqual(["chat-markup"]);
  });
});

describe("computeQc", () => {
  // Ten records built so that every number below can be checked by hand.
  const records = [
    example({ responseTokens: 5 }),
    example({ responseTokens: 10 }),
    example({ responseTokens: 12, critic: verdict(0.5) }),
    example({ responseTokens: 15, stopReason: "blank-lines", critic: verdict(-1) }),
    example({ responseTokens: 20, stopReason: "instruction", critic: verdict(1) }),
    example({ responseTokens: 25, hitMaxTokens: true, critic: verdict(3) }), // END found, but at max tokens
    example({ responseTokens: 30, response: "Paris END of story", critic: null }), // leakage
    example({ responseTokens: 35, stopReason: "eos", critic: null }),
    example({ responseTokens: 40, critic: verdict(-3) }),
    example({ responseTokens: 80, stopReason: "runaway", hitMaxTokens: true, critic: verdict(2) }),
  ];
  const r = computeQc(records, qcDefaults());

  test("rates are exact counts over the record count", () => {
    expect(r.records).toBe(10);
    expect(r.runaway).toEqual({ count: 1, total: 10, rate: 1 / 10 });
    expect(r.tokenLimit).toEqual({ count: 2, total: 10, rate: 2 / 10 });
    expect(r.leakage).toEqual({ count: 1, total: 10, rate: 1 / 10, byDelimiter: { "Instruction:": 0, "Response:": 0, END: 1 } });
    expect(r.emptyResponses).toEqual({ count: 0, total: 10, rate: 0 });
    expect(r.stopReasons).toEqual({ END: 6, instruction: 1, response: 0, "blank-lines": 1, eos: 1, runaway: 1 });
  });

  test("critic acceptance counts only judged records; margins summarised", () => {
    // judged: 2, 0.5, -1, 1, 3, -3, 2, 2 (first two records have the default 2)
    expect(r.criticAcceptance).toEqual({ count: 5, total: 8, rate: 5 / 8 });
    const m = r.margins!;
    expect([m.count, m.min, m.max, m.median, m.mean]).toEqual([8, -3, 3, 1.5, 6.5 / 8]);
  });

  test("response length distribution and histogram", () => {
    const t = r.responseTokens!;
    expect([t.count, t.min, t.median, t.mean, t.max]).toEqual([10, 5, 22.5, 272 / 10, 80]);
    expect(t.p10).toBeCloseTo(9.5, 12);
    expect(t.p90).toBeCloseTo(44, 12);
    expect(r.histogram).toEqual({ edges: [0, 10, 20, 30, 40, 50, 60, 70, 80], counts: [1, 3, 2, 2, 1, 0, 0, 0, 1] });
  });

  test("trainable: not runaway, not leaked, not rejected", () => {
    // rejected: 0.5, -1, -3; runaway: the last; leaked: the Paris END one
    expect(r.trainable).toEqual({ count: 5, total: 10, rate: 5 / 10 });
  });

  test("gates with their default thresholds and readable summaries", () => {
    const g = Object.fromEntries(r.gates.map((x) => [x.name, x]));
    expect(Object.keys(g)).toEqual(["records", "runaway-rate", "token-limit-rate", "delimiter-leakage", "chat-markup", "median-response-tokens", "critic-acceptance", "duplicate-rate"]);
    expect(g["records"]).toMatchObject({ value: 10, op: ">=", threshold: 1, passed: true });
    expect(g["runaway-rate"]).toMatchObject({ value: 0.1, op: "<", threshold: 0.05, passed: false, summary: "runaway 1/10 = 10.0% >= 5.0%" });
    expect(g["token-limit-rate"]).toMatchObject({ value: 0.2, passed: false, summary: "token-limit hits 2/10 = 20.0% >= 10.0%" });
    expect(g["delimiter-leakage"]).toMatchObject({ value: 1, op: "<=", threshold: 0, passed: false, summary: "delimiters left in 1/10 responses > 0" });
    expect(g["median-response-tokens"]).toMatchObject({ value: 22.5, passed: true, summary: "median response 22.5 tokens < 40" });
    expect(g["critic-acceptance"]).toMatchObject({ value: 0.625, passed: true, summary: "critic accepted 5/8 = 62.5% >= 50.0%" });
    expect(g["duplicate-rate"]).toMatchObject({ threshold: null, passed: true });
    expect(g["duplicate-rate"]!.summary).toContain("(gate off)");
    expect(r.passed).toBe(false);
  });

  test("the report is a valid qc-report record and the summary names every gate", () => {
    expect(QcReport.safeParse(r).success).toBe(true);
    const s = formatSummary(r);
    expect(s).toContain("QC over 10 sft-example records: FAIL (3 of 6 gates passed)");
    expect(s).toContain("FAIL  runaway-rate");
    expect(s).toContain(" ok  median-response-tokens");
    expect(s).toContain("[80, ∞)");
  });

  test("thresholds are configurable; null turns a gate off", () => {
    const loose = QcConfig.parse({ maxRunawayRate: 0.2, maxTokenLimitRate: null, maxLeakage: 1, maxMedianResponseTokens: 22.5 });
    const g = Object.fromEntries(computeQc(records, loose).gates.map((x) => [x.name, x.passed]));
    expect(g).toMatchObject({ "runaway-rate": true, "token-limit-rate": true, "delimiter-leakage": true, "median-response-tokens": false, "critic-acceptance": true });
    expect(() => QcConfig.parse({ maxRunawayRate: 2 })).toThrow();
    expect(() => QcConfig.parse({ maxRunway: 0.1 })).toThrow();
  });

  test("boundaries: strict < for rates and the median, >= for acceptance", () => {
    const cfg = QcConfig.parse({ maxRunawayRate: 0.1, maxMedianResponseTokens: 22.5, minCriticAcceptance: 0.625 });
    const g = Object.fromEntries(computeQc(records, cfg).gates.map((x) => [x.name, x.passed]));
    expect(g["runaway-rate"]).toBe(false); // 0.1 is not < 0.1
    expect(g["median-response-tokens"]).toBe(false);
    expect(g["critic-acceptance"]).toBe(true); // 0.625 >= 0.625
  });

  test("duplicates: exact after normalisation, near-duplicates, a second response to one instruction is not one", () => {
    const recs = [
      example({ instructionId: "a", instruction: "Name three primary colors." }),
      example({ instructionId: "a", instruction: "Name three primary colors.", response: "Red, blue, green." }), // same instruction, second response
      example({ instructionId: "b", instruction: "name three PRIMARY colors" }), // exact duplicate of a
      example({ instructionId: "c", instruction: "Name three primary colours." }), // near duplicate of a
      example({ instructionId: "d", instruction: "Write a haiku about autumn.", response: "A fine answer!" }), // same response text as most
    ];
    const q = computeQc(recs, QcConfig.parse({ maxDuplicateRate: 0.3 }));
    expect(q.duplicates).toEqual({ instructionExact: 1, instructionNear: 1, instructionRate: 2 / 5, responseExact: 3, responseRate: 3 / 5 });
    expect(q.gates.find((g) => g.name === "duplicate-rate")).toMatchObject({ value: 0.4, passed: false });
  });

  test("no records: every rate is n/a and the records gate fails", () => {
    const q = computeQc([], qcDefaults());
    expect(q.records).toBe(0);
    expect(q.runaway.rate).toBeNull();
    expect(q.responseTokens).toBeNull();
    expect(q.margins).toBeNull();
    expect(q.passed).toBe(false);
    expect(q.gates.find((g) => g.name === "records")!.passed).toBe(false);
    expect(q.gates.find((g) => g.name === "runaway-rate")!.summary).toContain("n/a");
    expect(QcReport.safeParse(q).success).toBe(true);
    expect(formatSummary(q)).toContain("QC over 0 sft-example records: FAIL");
  });

  test("chat markup in responses is counted; its gate is off unless configured", () => {
    const recs = [example(), example({ response: "Sure! <|im_start|>assistant" }), example({ response: "[INST] hi [/INST]" })];
    const q = computeQc(recs, qcDefaults());
    expect(q.chatMarkup).toEqual({ count: 2, total: 3, rate: 2 / 3 });
    expect(q.gates.find((g) => g.name === "chat-markup")).toMatchObject({ threshold: null, passed: true });
    expect(q.trainable.count).toBe(1);
    const strict = computeQc(recs, QcConfig.parse({ maxChatMarkup: 0 }));
    expect(strict.gates.find((g) => g.name === "chat-markup")).toMatchObject({ value: 2, passed: false, summary: "chat markup in 2/3 responses > 0" });
  });

  test("a clean pilot passes", () => {
    const good = Array.from({ length: 20 }, (_, i) => example({ responseTokens: 10 + i, critic: verdict(i % 4 === 0 ? 0 : 2) }));
    const q = computeQc(good, qcDefaults());
    expect(q.passed).toBe(true);
    expect(q.criticAcceptance.rate).toBe(15 / 20);
    expect(q.responseTokens!.median).toBe(19.5);
  });

  test("records that contradict themselves are refused by the schema", () => {
    expect(SftExample.safeParse({ ...example(), stopReason: "runaway", hitMaxTokens: false }).success).toBe(false);
    expect(SftExample.safeParse({ ...example(), stopReason: "eos", hitMaxTokens: true }).success).toBe(false);
    expect(SftExample.safeParse({ ...example(), extra: 1 }).success).toBe(false);
  });
});
