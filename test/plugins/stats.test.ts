// Statistics against published reference values (sources cited per test).
import { describe, expect, test } from "bun:test";
import { benjaminiHochberg, chiSquareSurvival, cohensH, EXACT_THRESHOLD, exactBinomialTwoSided, formatP, mcnemar, newcombePairedDifference, pairedTable, significanceGate, wilson, zCritical } from "../../plugins/evaluator/stats.ts";

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

describe("Wilson score interval", () => {
  // Newcombe RG (1998), "Two-sided confidence intervals for the single proportion:
  // comparison of seven methods", Stat Med 17:857-872, Table II, method 3 (score, no CC).
  const newcombe: [number, number, number, number][] = [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0.0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ];
  for (const [x, n, lo, hi] of newcombe) {
    test(`${x}/${n} -> [${lo}, ${hi}] (Newcombe 1998, Table II)`, () => {
      const ci = wilson(x, n);
      expect(round4(ci.lower)).toBe(lo);
      expect(round4(ci.upper)).toBe(hi);
      expect(ci.rate).toBeCloseTo(x / n, 12);
    });
  }

  test("the interval touches 0 and 1 exactly at the extremes and is symmetric under x -> n - x", () => {
    const all = wilson(29, 29);
    expect(all.upper).toBe(1);
    expect(all.lower).toBeCloseTo(1 - wilson(0, 29).upper, 12);
    const a = wilson(7, 40), b = wilson(33, 40);
    expect(a.lower).toBeCloseTo(1 - b.upper, 12);
  });

  test("n = 0 is 'no data', not 0 %", () => {
    expect(wilson(0, 0)).toEqual({ rate: null, lower: 0, upper: 1 });
  });

  test("rejects impossible counts", () => {
    expect(() => wilson(5, 4)).toThrow(RangeError);
    expect(() => wilson(-1, 4)).toThrow(RangeError);
    expect(() => wilson(1.5, 4)).toThrow(RangeError);
  });

  test("z for 95 % is 1.959964 (standard normal tables)", () => {
    expect(zCritical(0.95)).toBeCloseTo(1.959964, 6);
    expect(zCritical(0.99)).toBeCloseTo(2.575829, 6);
  });
});

describe("McNemar", () => {
  test("continuity-corrected chi-square: R mcnemar.test example (Agresti 1990, p. 350: presidential approval)", () => {
    // R: mcnemar.test(matrix(c(794, 86, 150, 570), nrow = 2))
    //   McNemar's chi-squared = 16.818, df = 1, p-value = 4.115e-05
    const r = mcnemar({ b: 150, c: 86 });
    expect(r.test).toBe("chi-square-cc");
    expect(r.statistic!).toBeCloseTo(16.818, 3);
    expect(Number(r.p.toPrecision(4))).toBe(4.115e-5);
    // symmetric in b and c
    expect(mcnemar({ b: 86, c: 150 }).p).toBe(r.p);
  });

  test("exact binomial when discordant pairs are few: Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, AHR example", () => {
    // b = 1, c = 7 discordant pairs: exact conditional p = 0.070 (paper), i.e. 2 * 9 / 256.
    const r = mcnemar({ b: 1, c: 7 });
    expect(r.test).toBe("exact-binomial");
    expect(r.statistic).toBeNull();
    expect(r.p).toBeCloseTo(0.0703125, 12);
    expect(Number(r.p.toFixed(3))).toBe(0.07);
  });

  test("exact two-sided binomial equals R binom.test(x, n, 0.5)", () => {
    // R: binom.test(1, 10)$p.value = 0.02148438 (= 22/1024); binom.test(2, 10) = 0.109375 (= 112/1024);
    //    binom.test(5, 10) = 1
    expect(exactBinomialTwoSided(1, 9)).toBeCloseTo(22 / 1024, 14);
    expect(exactBinomialTwoSided(2, 8)).toBeCloseTo(112 / 1024, 14);
    expect(exactBinomialTwoSided(5, 5)).toBe(1);
    expect(exactBinomialTwoSided(0, 0)).toBe(1);
  });

  test("the switch to the chi-square test happens at b + c = EXACT_THRESHOLD", () => {
    expect(EXACT_THRESHOLD).toBe(25);
    expect(mcnemar({ b: 4, c: 20 }).test).toBe("exact-binomial");
    expect(mcnemar({ b: 5, c: 20 }).test).toBe("chi-square-cc");
    expect(mcnemar({ b: 5, c: 20 }, 100).test).toBe("exact-binomial");
    expect(mcnemar({ b: 0, c: 0 })).toEqual({ b: 0, c: 0, test: "none", statistic: null, p: 1 });
  });

  test("chi-square upper tail: 3.841459 is the 95 % point of chi-square(1) (tables); tiny p keeps its digits", () => {
    expect(chiSquareSurvival(3.841459, 1)).toBeCloseTo(0.05, 7);
    expect(chiSquareSurvival(6.634897, 1)).toBeCloseTo(0.01, 7);
    expect(chiSquareSurvival(0, 1)).toBe(1);
    // 1 - CDF would round this to 0; the regularized upper gamma does not.
    expect(chiSquareSurvival(400, 1)).toBeGreaterThan(0);
    expect(chiSquareSurvival(400, 1)).toBeLessThan(1e-80);
  });

  test("pairedTable counts concordant and discordant pairs", () => {
    expect(pairedTable([true, true, false, false, true], [true, false, true, false, false])).toEqual({ a: 1, b: 2, c: 1, d: 1 });
    expect(() => pairedTable([true], [])).toThrow(/length/);
  });
});

describe("Cohen's h", () => {
  // Cohen J (1988), Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
  // Table 6.2.1: phi = 2 asin(sqrt p): p = .10 -> .6435, .25 -> 1.0472, .50 -> 1.5708, .90 -> 2.4981.
  test("differences of Cohen's tabled phi values", () => {
    expect(cohensH(0.5, 0.25)).toBeCloseTo(1.5708 - 1.0472, 4);
    expect(cohensH(0.9, 0.1)).toBeCloseTo(2.4981 - 0.6435, 4);
    expect(cohensH(0.1, 0.9)).toBeCloseTo(-(2.4981 - 0.6435), 4);
    expect(cohensH(1, 0)).toBeCloseTo(Math.PI, 12);
    expect(cohensH(0.3, 0.3)).toBe(0);
    expect(() => cohensH(1.2, 0.5)).toThrow(RangeError);
  });
});

describe("Benjamini-Hochberg", () => {
  // Benjamini Y, Hochberg Y (1995), JRSS B 57:289-300, section 4 example: 15 p-values;
  // at q = 0.05 the procedure rejects the four smallest. Adjusted values as R's
  // p.adjust(p, "BH") prints them.
  const ps = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.324, 0.4262, 0.5719, 0.6528, 0.759, 1.0];
  const rAdjusted = [0.0015, 0.003, 0.0095, 0.035625, 0.0603, 0.06385714, 0.06385714, 0.0645, 0.0765, 0.486, 0.58118182, 0.714875, 0.75323077, 0.81321429, 1.0];

  test("adjusted p-values equal R's p.adjust(method = 'BH')", () => {
    const adj = benjaminiHochberg(ps);
    adj.forEach((a, i) => expect(a).toBeCloseTo(rAdjusted[i]!, 7));
  });

  test("four rejections at q = 0.05, as in the paper", () => {
    expect(benjaminiHochberg(ps).filter((a) => a <= 0.05).length).toBe(4);
  });

  test("input order is kept and the result is monotone in p", () => {
    const shuffled = [ps[9]!, ps[0]!, ps[14]!, ps[3]!];
    const adj = benjaminiHochberg(shuffled);
    // R: p.adjust(c(0.324, 0.0001, 1, 0.0095), "BH") = 0.432 0.0004 1 0.019
    expect(adj.map((x) => Number(x.toFixed(6)))).toEqual([0.432, 0.0004, 1, 0.019]);
    expect(benjaminiHochberg([])).toEqual([]);
    expect(() => benjaminiHochberg([NaN])).toThrow(RangeError);
  });
});

describe("significance gate", () => {
  test("passes only when the candidate is better and p < alpha (default 0.01)", () => {
    expect(significanceGate({ candidate: "sft", baseline: "base", candidateRate: 0.6, baselineRate: 0.3, p: 0.001 }).passed).toBe(true);
    expect(significanceGate({ candidate: "sft", baseline: "base", candidateRate: 0.6, baselineRate: 0.3, p: 0.02 }).passed).toBe(false);
    expect(significanceGate({ candidate: "sft", baseline: "base", candidateRate: 0.6, baselineRate: 0.3, p: 0.02, alpha: 0.05 }).passed).toBe(true);
    const worse = significanceGate({ candidate: "sft", baseline: "base", candidateRate: 0.2, baselineRate: 0.6, p: 1e-6 });
    expect(worse.passed).toBe(false);
    expect(worse.summary).toContain("sft is not better");
  });

  test("formatP", () => {
    expect(formatP(4.1145e-5)).toBe("4.11e-5");
    expect(formatP(0.0703125)).toBe("0.0703");
    expect(formatP(0)).toBe("0");
  });
});

describe("Newcombe hybrid score interval for a paired difference (method 10)", () => {
  // Newcombe RG (1998), "Improved confidence intervals for the difference between binomial
  // proportions based on paired data", Stat Med 17:2635-2650, Table II, method 10, 95 %.
  // Cells e, f, g, h: both succeed, first only, second only, neither; difference (f − g)/n.
  const table2: [number, number, number, number, number, number][] = [
    [36, 12, 2, 0, 0.0569, 0.3404],
    [18, 12, 2, 18, 0.0562, 0.329],
    [53, 0, 0, 1, -0.0729, 0.0729],
    [0, 30, 0, 0, 0.8395, 1.0],
  ];
  for (const [a, b, c, d, lo, hi] of table2) {
    test(`${a}/${b}/${c}/${d} -> [${lo}, ${hi}] (Newcombe 1998, Table II)`, () => {
      const ci = newcombePairedDifference({ a, b, c, d });
      expect(ci.difference).toBeCloseTo((b - c) / (a + b + c + d), 12);
      expect(round4(ci.lower)).toBe(lo);
      expect(round4(ci.upper)).toBe(hi);
    });
  }

  test("phi is shrunk toward 0 as Newcombe prescribes: example (b) without the shrinkage would be [0.0618, 0.3239]", () => {
    // ad − bc = 324 − 24 = 300 > n/2 = 25: the shrunk phi gives the published, wider interval.
    const ci = newcombePairedDifference({ a: 18, b: 12, c: 2, d: 18 });
    expect(round4(ci.lower)).not.toBe(0.0618);
    expect(round4(ci.upper)).not.toBe(0.3239);
  });

  test("swapping the variants negates the interval; it contains the difference and stays in [-1, 1]", () => {
    const x = newcombePairedDifference({ a: 20, b: 9, c: 4, d: 7 });
    const y = newcombePairedDifference({ a: 20, b: 4, c: 9, d: 7 });
    expect(y.lower).toBeCloseTo(-x.upper, 12);
    expect(y.upper).toBeCloseTo(-x.lower, 12);
    expect(x.lower).toBeLessThan(x.difference!);
    expect(x.upper).toBeGreaterThan(x.difference!);
    const all = newcombePairedDifference({ a: 0, b: 0, c: 40, d: 0 });
    expect(all.lower).toBe(-1);
    // Both margins empty, so φ = 0: upper = −1 + √2 · z²/(n + z²) (each Wilson half at 0/n and n/n is z²/(n + z²)).
    expect(round4(all.upper)).toBe(-0.8761);
  });

  test("no items: difference null, interval [-1, 1]; impossible cells are rejected", () => {
    expect(newcombePairedDifference({ a: 0, b: 0, c: 0, d: 0 })).toEqual({ difference: null, lower: -1, upper: 1 });
    expect(() => newcombePairedDifference({ a: -1, b: 0, c: 0, d: 1 })).toThrow(RangeError);
    expect(() => newcombePairedDifference({ a: 1.5, b: 0, c: 0, d: 1 })).toThrow(RangeError);
  });

  test("a wider confidence level gives a wider interval", () => {
    const t = { a: 18, b: 12, c: 2, d: 18 };
    const i95 = newcombePairedDifference(t, 0.95), i99 = newcombePairedDifference(t, 0.99);
    expect(i99.lower).toBeLessThan(i95.lower);
    expect(i99.upper).toBeGreaterThan(i95.upper);
  });
});
