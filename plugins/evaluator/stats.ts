// Statistics for paired evaluation (specs/statistics.md). Every distribution
// function comes from stdlib (@stdlib/*), not from hand-written approximations:
// the formulas here are only the tests' definitions.
import binomialCdf from "@stdlib/stats-base-dists-binomial-cdf";
import gammainc from "@stdlib/math-base-special-gammainc";
import normalQuantile from "@stdlib/stats-base-dists-normal-quantile";

export interface Interval {
  /** successes / n; null when n = 0 (no data, not 0 %). */
  rate: number | null;
  lower: number;
  upper: number;
}

/** Two-sided standard normal critical value for a confidence level (0.95 -> 1.959964). */
export function zCritical(confidence: number): number {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  return normalQuantile(1 - (1 - confidence) / 2, 0, 1);
}

/** Wilson score interval (Wilson 1927; Newcombe 1998 method 3): good coverage at small n
 *  and at rates near 0 or 1, where the Wald interval fails. */
export function wilson(successes: number, n: number, confidence = 0.95): Interval {
  if (!Number.isInteger(successes) || !Number.isInteger(n) || successes < 0 || successes > n) throw new RangeError(`wilson: need integers 0 <= successes <= n, got ${successes}/${n}`);
  if (n === 0) return { rate: null, lower: 0, upper: 1 };
  const z = zCritical(confidence);
  const p = successes / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  // Clamp only float noise: at 0/n and n/n the interval touches the bound exactly.
  return { rate: p, lower: successes === 0 ? 0 : Math.max(0, centre - half), upper: successes === n ? 1 : Math.min(1, centre + half) };
}

/** The paired 2x2 table of two variants on the same items.
 *  a: both succeed; b: first succeeds, second fails; c: first fails, second succeeds; d: both fail. */
export interface PairedTable {
  a: number;
  b: number;
  c: number;
  d: number;
}

export function pairedTable(first: readonly boolean[], second: readonly boolean[]): PairedTable {
  if (first.length !== second.length) throw new Error(`paired outcomes differ in length: ${first.length} vs ${second.length}`);
  const t = { a: 0, b: 0, c: 0, d: 0 };
  first.forEach((x, i) => {
    const y = second[i]!;
    if (x && y) t.a++;
    else if (x) t.b++;
    else if (y) t.c++;
    else t.d++;
  });
  return t;
}

/** Below this many discordant pairs the chi-square approximation is poor and the exact
 *  binomial (conditional) test is used instead (the b + c < 25 rule, e.g. Rosner,
 *  Fundamentals of Biostatistics; Fagerland et al. 2013 discuss the choice). */
export const EXACT_THRESHOLD = 25;

export interface McNemarResult {
  /** Discordant counts: first-only successes, second-only successes. */
  b: number;
  c: number;
  test: "exact-binomial" | "chi-square-cc" | "none";
  /** Chi-square statistic with continuity correction (chi-square-cc only). */
  statistic: number | null;
  /** Two-sided p-value. */
  p: number;
}

/** Upper tail of the chi-square distribution with k degrees of freedom: Q(k/2, x/2), the
 *  regularized upper incomplete gamma function. Computed directly (not 1 - CDF) so tiny
 *  p-values keep their digits instead of rounding to 0. */
export function chiSquareSurvival(x: number, k: number): number {
  if (x <= 0) return 1;
  return gammainc(x / 2, k / 2, true, true);
}

/** Two-sided exact binomial test of b successes in b + c trials with p = 1/2. With p = 1/2
 *  the distribution is symmetric, so R's binom.test "as or less likely" rule equals
 *  doubling the smaller tail (capped at 1). */
export function exactBinomialTwoSided(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  return Math.min(1, 2 * binomialCdf(Math.min(b, c), n, 0.5));
}

/** McNemar's test of marginal homogeneity for paired binary outcomes. */
export function mcnemar(t: Pick<PairedTable, "b" | "c">, exactThreshold = EXACT_THRESHOLD): McNemarResult {
  const { b, c } = t;
  if (b + c === 0) return { b, c, test: "none", statistic: null, p: 1 };
  if (b + c < exactThreshold) return { b, c, test: "exact-binomial", statistic: null, p: exactBinomialTwoSided(b, c) };
  // Edwards' continuity correction, as R's mcnemar.test(correct = TRUE).
  const statistic = Math.max(0, Math.abs(b - c) - 1) ** 2 / (b + c);
  return { b, c, test: "chi-square-cc", statistic, p: chiSquareSurvival(statistic, 1) };
}

/** Cohen's h effect size between two proportions: 2·asin(√p1) − 2·asin(√p2).
 *  |h| ≈ 0.2 small, 0.5 medium, 0.8 large (Cohen 1988, §6.2). */
export function cohensH(p1: number, p2: number): number {
  for (const p of [p1, p2]) if (!(p >= 0 && p <= 1)) throw new RangeError(`cohensH: proportions must be in [0, 1], got ${p}`);
  return 2 * Math.asin(Math.sqrt(p1)) - 2 * Math.asin(Math.sqrt(p2));
}

/** Benjamini–Hochberg adjusted p-values (step-up FDR), in the input order; identical to
 *  R's p.adjust(p, "BH"). Rejecting where adjusted p <= q controls the FDR at q. */
export function benjaminiHochberg(ps: readonly number[]): number[] {
  const m = ps.length;
  for (const p of ps) if (!(p >= 0 && p <= 1)) throw new RangeError(`benjaminiHochberg: p-values must be in [0, 1], got ${p}`);
  const order = ps.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p);
  const adjusted = new Array<number>(m);
  let running = 1;
  // From the largest p down, keep the running minimum of p·m/rank (monotone step-up).
  for (let k = m - 1; k >= 0; k--) {
    const { p, i } = order[k]!;
    running = Math.min(running, (p * m) / (k + 1));
    adjusted[i] = running;
  }
  return adjusted;
}

export const DEFAULT_ALPHA = 0.01;

export interface GateDecision {
  passed: boolean;
  summary: string;
}

/** The significance gate: the candidate must be better AND the paired test significant. */
export function significanceGate(opts: { candidate: string; baseline: string; candidateRate: number | null; baselineRate: number | null; p: number; alpha?: number; label?: string }): GateDecision {
  const alpha = opts.alpha ?? DEFAULT_ALPHA;
  const cr = opts.candidateRate ?? 0;
  const br = opts.baselineRate ?? 0;
  const better = cr > br;
  const significant = opts.p < alpha;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const where = opts.label ? ` (${opts.label})` : "";
  const summary = `${opts.candidate} ${pct(cr)} vs ${opts.baseline} ${pct(br)}${where}: p = ${formatP(opts.p)} ${significant ? "<" : ">="} ${alpha}${better ? "" : `, ${opts.candidate} is not better`}`;
  return { passed: better && significant, summary };
}

/** p-values for humans: 3 significant digits, scientific below 1e-4. */
export function formatP(p: number): string {
  if (p === 0) return "0";
  return p < 1e-4 ? p.toExponential(2) : p.toPrecision(3);
}

/** A confidence interval for the difference of two paired proportions. */
export interface DifferenceInterval {
  /** p_first − p_second; null when n = 0. */
  difference: number | null;
  lower: number;
  upper: number;
}

/** Newcombe's hybrid score interval for the difference of paired proportions (Newcombe
 *  1998, "Improved confidence intervals for the difference between binomial proportions
 *  based on paired data", Stat Med 17:2635-2650, method 10). The Wilson intervals of the
 *  two marginal rates are combined by "square and add", with the covariance of the paired
 *  margins carried by φ, the correlation of the 2x2 table shrunk toward 0 as Newcombe
 *  prescribes (ad − bc reduced by n/2 when above it, 0 in between). Chosen because it is
 *  closed-form, stays inside [−1, 1], and keeps its coverage at small n and with rates
 *  near 0 or 1 (our regime: 40 items per type), where the Wald interval does not. */
export function newcombePairedDifference(t: PairedTable, confidence = 0.95): DifferenceInterval {
  const { a, b, c, d } = t;
  for (const x of [a, b, c, d]) if (!Number.isInteger(x) || x < 0) throw new RangeError(`newcombePairedDifference: cells must be non-negative integers, got ${a}/${b}/${c}/${d}`);
  const n = a + b + c + d;
  if (n === 0) return { difference: null, lower: -1, upper: 1 };
  const p1 = (a + b) / n, p2 = (a + c) / n;
  const w1 = wilson(a + b, n, confidence), w2 = wilson(a + c, n, confidence);
  const margins = (a + b) * (c + d) * (a + c) * (b + d);
  const cross = a * d - b * c;
  const shrunk = cross > n / 2 ? cross - n / 2 : cross >= 0 ? 0 : cross;
  // An empty margin makes φ undefined; Newcombe sets it to 0.
  const phi = margins === 0 ? 0 : shrunk / Math.sqrt(margins);
  const [l1, u1, l2, u2] = [p1 - w1.lower, w1.upper - p1, p2 - w2.lower, w2.upper - p2];
  const below = Math.sqrt(Math.max(0, l1 * l1 - 2 * phi * l1 * u2 + u2 * u2));
  const above = Math.sqrt(Math.max(0, u1 * u1 - 2 * phi * u1 * l2 + l2 * l2));
  const diff = p1 - p2;
  return { difference: diff, lower: Math.max(-1, diff - below), upper: Math.min(1, diff + above) };
}

export const PAIRED_CI_METHOD = "newcombe-hybrid-score (Newcombe 1998, method 10)";
