// The HTML report rendered in headless Chromium (Debian's package): the three
// charts are there, their marks carry the numbers of the results, and the page
// loads nothing from anywhere. SELFTUNE_SKIP_BROWSER=1 skips the browser part
// on a machine without chromium (CI installs it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildOutputs, type ResponseRecord } from "../../plugins/evaluator/outputs.ts";
import { esc, renderReport } from "../../plugins/evaluator/report.ts";
import { summaryText, type EvaluationResults, type VariantRecord } from "../../plugins/evaluator/results.ts";
import { TEST_TYPES } from "../../plugins/evaluator/checks/spec.ts";

const CHROMIUM = "/usr/bin/chromium";
const skipBrowser = process.env.SELFTUNE_SKIP_BROWSER === "1";

/** Three variants on 5 types x 10 items; success patterns chosen per variant. */
function fixture(gates?: [string, string][]): EvaluationResults {
  const names = ["base", "sft", "dpo"];
  const variants = names.map((name, vi) => {
    const record: VariantRecord = { name, hash: `h${vi}`.padEnd(64, "0"), model: { path: "/m/base.gguf", sha256: "a".repeat(64) }, adapters: vi ? [{ path: `/m/${name}.gguf`, sha256: "b".repeat(64), scale: 1 }] : [], responsesFile: `${name}.responses.jsonl`, generated: 50, cached: 0, loadInfo: null };
    const responses: ResponseRecord[] = [];
    TEST_TYPES.forEach((type, ti) => {
      for (let k = 0; k < 10; k++) {
        const ok = k < 2 + vi * 3 + (ti % 2); // base ~2-3/10, sft ~5-6/10, dpo ~8-9/10
        const w = 5 + vi * 12 + ((k * 7 + ti) % 9);
        responses.push({ variant: name, variantHash: record.hash, id: `${type}-${k}`, type, template: null, instruction: `do ${type} ${k} <b>&`, promptSha256: "c".repeat(64), raw: "x", response: "x", stopReason: "END", tokens: w, stop: "eos", words: w, cached: false, checks: [], success: { strict: ok, loose: ok || k === 9 } });
      }
    });
    return { record, responses };
  });
  return buildOutputs({ variants, options: { metric: "strict", alpha: 0.01, confidence: 0.95, ...(gates ? { pairs: gates, gates: gates.map((compare) => ({ alpha: 0.01, compare, scope: "overall" as const })) } : { gate: { alpha: 0.01, compare: ["sft", "base"], scope: "overall" } }) }, decode: { greedy: true, maxTokens: 128, stop: [] }, prompt: { version: "1.0.0" }, testSetSha256: "d".repeat(64), provenance: null, createdAt: "2026-01-01T00:00:00.000Z" }).results;
}

describe("report HTML (static)", () => {
  test("every comparison's gate is shown, in order, with its decision (not only the first)", () => {
    const r = fixture([["sft", "base"], ["dpo", "sft"], ["base", "dpo"]]);
    expect(r.analysis.gates.map((g) => [g.name, g.passed])).toEqual([["significance sft vs base", true], ["significance dpo vs sft", true], ["significance base vs dpo", false]]);
    const html = renderReport(r);
    const shown = [...html.matchAll(/<p class="gate" data-candidate="([^"]+)" data-baseline="([^"]+)" data-passed="([^"]+)">Gate <b>([^<]+)<\/b>: <span class="(pass|fail)">/g)].map((m) => [m[4], m[3], m[5]]);
    expect(shown).toEqual([["significance sft vs base", "true", "pass"], ["significance dpo vs sft", "true", "pass"], ["significance base vs dpo", "false", "fail"]]);
  });

  test("self-contained: no script, stylesheet link, external URL or font", () => {
    const html = renderReport(fixture());
    expect(html).toStartWith("<!doctype html>");
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|url\(|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  test("text from the data is escaped", () => {
    expect(esc(`<b>&"'`)).toBe("&lt;b&gt;&amp;&quot;&#39;");
    const r = fixture();
    r.variants[0]!.model.path = "/m/<script>alert(1)</script>.gguf";
    expect(renderReport(r)).not.toContain("<script>");
  });

  test("summary.txt: every paired row shows its difference with the CI of the results, and names the method", () => {
    const r = fixture();
    const text = summaryText(r);
    expect(text).toContain("Newcombe 1998, method 10");
    const pts = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
    for (const p of r.analysis.pairs) {
      const line = text.split("\n").find((l) => l.includes(`${p.candidate} vs ${p.baseline}`) && l.split(/\s+/).includes(p.scope))!;
      expect(line).toMatch(new RegExp(`\\[\\s*\\${pts(p.differenceCi!.lower)}, \\s*\\${pts(p.differenceCi!.upper)}\\]`));
    }
  });

  test("deterministic: the same results render the same bytes", () => {
    expect(renderReport(fixture())).toBe(renderReport(fixture()));
  });
});

describe.skipIf(skipBrowser)("report HTML in headless Chromium", () => {
  let context: BrowserContext;
  let page: Page;
  const results = fixture();
  const requests: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or SELFTUNE_SKIP_BROWSER=1)`);
    const dir = mkdtempSync(join(tmpdir(), "selftune-report-"));
    const file = join(dir, "report.html");
    writeFileSync(file, renderReport(results));
    // A fresh profile directory per run (Playwright's way of passing --user-data-dir).
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await context.newPage();
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(`file://${file}`);
  });

  afterAll(async () => {
    await context?.close();
  });

  test("the page loads only itself", () => {
    expect(requests.filter((u) => !u.startsWith("file://"))).toEqual([]);
  });

  test("success-by-type chart: one bar and one CI error bar per variant and scope, carrying the rates", async () => {
    const chart = page.locator('svg[data-chart="success-by-type"]');
    expect(await chart.count()).toBe(1);
    const box = await chart.boundingBox();
    expect(box!.width).toBeGreaterThan(200);
    const bars = await chart.locator("rect.bar").evaluateAll((els) => els.map((e) => ({ v: e.getAttribute("data-variant"), t: e.getAttribute("data-type"), rate: Number(e.getAttribute("data-rate")), lo: Number(e.getAttribute("data-ci-lower")), hi: Number(e.getAttribute("data-ci-upper")), title: e.querySelector("title")?.textContent ?? "" })));
    expect(bars.length).toBe(3 * 6);
    for (const b of bars) {
      const row = results.analysis.rates.find((r) => r.variant === b.v && r.scope === b.t)!;
      expect(b.rate).toBeCloseTo(row.strict.rate!, 5);
      expect(b.lo).toBeCloseTo(row.strict.lower, 5);
      expect(b.hi).toBeCloseTo(row.strict.upper, 5);
      expect(b.title).toContain("95% CI");
    }
    expect(await chart.locator("g.ci").count()).toBe(3 * 6);
    // Error bars are drawn where the CI is: the upper whisker of dpo overall is above (smaller y than) its bar top.
    const dpo = chart.locator('rect.bar[data-variant="dpo"][data-type="overall"]');
    const whisker = chart.locator('g.ci[data-variant="dpo"][data-type="overall"] line').first();
    const barBox = (await dpo.boundingBox())!;
    const ciBox = (await whisker.boundingBox())!;
    expect(ciBox.y).toBeLessThan(barBox.y);
  });

  test("paired-differences chart: one mark per pair and scope with McNemar p and BH-adjusted p", async () => {
    const chart = page.locator('svg[data-chart="paired-differences"]');
    expect(await chart.count()).toBe(1);
    const marks = await chart.locator("rect.diff").evaluateAll((els) => els.map((e) => ({ c: e.getAttribute("data-candidate"), b: e.getAttribute("data-baseline"), t: e.getAttribute("data-type"), p: Number(e.getAttribute("data-p")), adj: Number(e.getAttribute("data-p-adjusted")), d: Number(e.getAttribute("data-difference")) })));
    expect(marks.length).toBe(3 * 6); // sft>base, dpo>base, dpo>sft x (5 types + overall)
    for (const m of marks) {
      const row = results.analysis.pairs.find((p) => p.candidate === m.c && p.baseline === m.b && p.scope === m.t)!;
      expect(m.p).toBeCloseTo(row.p, 5);
      expect(m.adj).toBeCloseTo(row.pAdjusted, 5);
      expect(m.d).toBeCloseTo(row.difference!, 5);
    }
    expect(await chart.locator("rect.diff.sig").count()).toBe(results.analysis.pairs.filter((p) => p.significant).length);
  });

  test("response-lengths chart: a histogram per variant whose counts add up to n", async () => {
    const chart = page.locator('svg[data-chart="response-lengths"]');
    expect(await chart.count()).toBe(1);
    const bins = await chart.locator("rect.hist").evaluateAll((els) => els.map((e) => ({ v: e.getAttribute("data-variant"), n: Number(e.getAttribute("data-count")) })));
    for (const v of ["base", "sft", "dpo"]) expect(bins.filter((b) => b.v === v).reduce((s, b) => s + b.n, 0)).toBe(50);
  });

  test("the gate decision and the tables are shown", async () => {
    const text = await page.locator("body").innerText();
    expect(text).toContain("Gate significance sft vs base: PASS");
    expect(await page.locator("table").count()).toBe(4);
  });
});
