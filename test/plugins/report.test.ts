// The HTML report rendered in headless Chromium (Debian's package): the three
// charts are there, their marks carry the numbers of the results, and the page
// loads nothing from anywhere. SELFTUNE_SKIP_BROWSER=1 skips the browser part
// on a machine without chromium (CI installs it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildOutputs, type BuiltOutputs, type ResponseRecord } from "../../plugins/evaluator/outputs.ts";
import { EXAMPLE_MAX_CHARS, EXAMPLES_PER_TYPE } from "../../plugins/evaluator/examples.ts";
import { esc, renderReport } from "../../plugins/evaluator/report.ts";
import { summaryText, type EvaluationResults, type VariantRecord } from "../../plugins/evaluator/results.ts";
import { TEST_TYPES } from "../../plugins/evaluator/checks/spec.ts";

const CHROMIUM = "/usr/bin/chromium";
const skipBrowser = process.env.SELFTUNE_SKIP_BROWSER === "1";

/** A long response (over the examples' cut) for item 1, markup-like text everywhere (must be shown as text). */
const responseText = (name: string, type: string, k: number) => `resp ${name} ${type} ${k} <i>&amp;</i> <script>x()</script>` + (k === 1 ? ` ${"y".repeat(700)}` : "");

/** Three variants on 5 types x 10 items; success patterns chosen per variant. Even items
 *  carry an IFEval instruction id on their check, so the IFEval section is there too. */
function built(gates?: [string, string][], selfJudge = true): BuiltOutputs {
  const names = ["base", "sft", "dpo"];
  const variants = names.map((name, vi) => {
    const record: VariantRecord = { name, hash: `h${vi}`.padEnd(64, "0"), model: { path: "/m/base.gguf", sha256: "a".repeat(64) }, adapters: vi ? [{ path: `/m/${name}.gguf`, sha256: "b".repeat(64), scale: 1 }] : [], responsesFile: `${name}.responses.jsonl`, generated: 50, cached: 0, loadInfo: null };
    const responses: ResponseRecord[] = [];
    TEST_TYPES.forEach((type, ti) => {
      for (let k = 0; k < 10; k++) {
        const ok = k < 2 + vi * 3 + (ti % 2); // base ~2-3/10, sft ~5-6/10, dpo ~8-9/10
        const w = 5 + vi * 12 + ((k * 7 + ti) % 9);
        const response = responseText(name, type, k);
        const checks = [{ type: "word_count", ...(k % 2 === 0 ? { instruction: "length_constraints:number_words" } : {}), strict: ok, loose: ok || k === 9, detail: `${w} words, need <${w + 1}> & more` }];
        responses.push({ variant: name, variantHash: record.hash, id: `${type}-${k}`, type, template: null, instruction: `do ${type} ${k} <b>&`, promptSha256: "c".repeat(64), raw: response, response, stopReason: "END", tokens: w, stop: "eos", words: w, cached: false, checks, success: { strict: ok, loose: ok || k === 9 } });
      }
    });
    return { record, responses };
  });
  // The critic's margin per response: accepts most successes and some failures (a mixed agreement table).
  const judgements = variants.flatMap(({ record, responses }) => responses.map((r, i) => {
    const margin = r.success.strict ? (i % 3 === 0 ? 0.5 : 2) : i % 4 === 0 ? 1.5 : -1;
    return { variant: record.name, id: r.id, margin, threshold: 1, accepted: margin >= 1 };
  }));
  return buildOutputs({ variants, ...(selfJudge ? { selfJudge: { judgements, threshold: 1, skipped: 2, critic: { labels: "A/B" } } } : {}), options: { metric: "strict", alpha: 0.01, confidence: 0.95, ...(gates ? { pairs: gates, gates: gates.map((compare) => ({ alpha: 0.01, compare, scope: "overall" as const })) } : { gate: { alpha: 0.01, compare: ["sft", "base"], scope: "overall" } }) }, decode: { greedy: true, maxTokens: 128, stop: [] }, prompt: { version: "1.0.0" }, testSetSha256: "d".repeat(64), provenance: null, createdAt: "2026-01-01T00:00:00.000Z" });
}
const fixture = (gates?: [string, string][]): EvaluationResults => built(gates).results;

describe("report HTML (static)", () => {
  test("every comparison's gate is shown, in order, with its decision (not only the first)", () => {
    const r = fixture([["sft", "base"], ["dpo", "sft"], ["base", "dpo"]]);
    expect(r.analysis.gates.map((g) => [g.name, g.passed])).toEqual([["significance sft vs base", true], ["significance dpo vs sft", true], ["significance base vs dpo", false]]);
    const html = renderReport(r);
    const shown = [...html.matchAll(/<p class="gate" data-candidate="([^"]+)" data-baseline="([^"]+)" data-passed="([^"]+)">Gate <b>([^<]+)<\/b>: <span class="(pass|fail)">/g)].map((m) => [m[4], m[3], m[5]]);
    expect(shown).toEqual([["significance sft vs base", "true", "pass"], ["significance dpo vs sft", "true", "pass"], ["significance base vs dpo", "false", "fail"]]);
  });

  test("self-contained: no script, stylesheet link, external URL or font", () => {
    // The full report (with the examples, whose responses contain markup) is checked.
    const html = built().files["report.html"]!;
    expect(html).toStartWith("<!doctype html>");
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|url\(|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  test("the report written with the results shows examples; without responses it has none", () => {
    expect(built().files["report.html"]).toContain('data-section="examples"');
    expect(renderReport(fixture())).not.toContain('data-section="examples"');
  });

  test("the self-judge section is there with results.selfJudge, and absent without it", () => {
    expect(built().files["report.html"]).toContain('data-section="self-judge"');
    expect(built(undefined, false).files["report.html"]).not.toContain('data-section="self-judge"');
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
  const outputs = built();
  const results = outputs.results;
  const requests: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or SELFTUNE_SKIP_BROWSER=1)`);
    const dir = mkdtempSync(join(tmpdir(), "selftune-report-"));
    const file = join(dir, "report.html");
    writeFileSync(file, outputs.files["report.html"]!);
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
    // rates, pairs, IFEval's four metrics, IFEval per id, self-judge, lengths, provenance
    expect(await page.locator("table").count()).toBe(7);
  });

  test("paired-differences chart: a CI whisker per pair and scope carrying results.json's differenceCi", async () => {
    const chart = page.locator('svg[data-chart="paired-differences"]');
    const cis = await chart.locator("g.dci").evaluateAll((els) => els.map((e) => ({ c: e.getAttribute("data-candidate"), b: e.getAttribute("data-baseline"), t: e.getAttribute("data-type"), lo: Number(e.getAttribute("data-ci-lower")), hi: Number(e.getAttribute("data-ci-upper")), title: e.querySelector("title")?.textContent ?? "" })));
    expect(cis.length).toBe(results.analysis.pairs.length);
    const json = JSON.parse(outputs.files["evaluation_results.json"]!) as EvaluationResults;
    for (const m of cis) {
      const row = json.analysis.pairs.find((p) => p.candidate === m.c && p.baseline === m.b && p.scope === m.t)!;
      expect(m.lo).toBeCloseTo(row.differenceCi!.lower, 5);
      expect(m.hi).toBeCloseTo(row.differenceCi!.upper, 5);
      expect(m.lo).toBeLessThanOrEqual(row.difference!);
      expect(m.hi).toBeGreaterThanOrEqual(row.difference!);
      const signed = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
      expect(m.title).toContain(`95% CI [${signed(row.differenceCi!.lower)}, ${signed(row.differenceCi!.upper)}] pts`);
    }
    // Drawn where the numbers are: the whisker spans the bar's end (the difference) for dpo vs base overall.
    const bar = (await chart.locator('rect.diff[data-candidate="dpo"][data-baseline="base"][data-type="overall"]').boundingBox())!;
    const whisker = (await chart.locator('g.dci[data-candidate="dpo"][data-baseline="base"][data-type="overall"]').boundingBox())!;
    expect(whisker.x).toBeLessThan(bar.x + bar.width);
    expect(whisker.x + whisker.width).toBeGreaterThan(bar.x + bar.width);
    // The table shows the same interval in points.
    const text = await page.locator("body").innerText();
    expect(text).toContain("Newcombe 1998, method 10");
  });

  test("examples: per type the first instructions, every variant's response side by side, escaped, cut with a visible mark, with the failed checks", async () => {
    const ex = page.locator('div[data-section="examples"] div.example');
    expect(await ex.count()).toBe(TEST_TYPES.length * EXAMPLES_PER_TYPE);
    for (const type of TEST_TYPES) {
      const ids = await page.locator(`div.example[data-type="${type}"]`).evaluateAll((els) => els.map((e) => e.getAttribute("data-id")));
      expect(ids).toEqual([0, 1, 2].map((k) => `${type}-${k}`));
    }
    // Side by side: the three responses of one example share a row, left to right in variant order.
    const cols = page.locator('div.example[data-id="list-0"] div.resp');
    expect(await cols.evaluateAll((els) => els.map((e) => e.getAttribute("data-variant")))).toEqual(["base", "sft", "dpo"]);
    const boxes = await Promise.all([0, 1, 2].map(async (i) => (await cols.nth(i).boundingBox())!));
    expect(boxes[1]!.y).toBeCloseTo(boxes[0]!.y, 0);
    expect(boxes[2]!.y).toBeCloseTo(boxes[0]!.y, 0);
    expect(boxes[0]!.x + boxes[0]!.width).toBeLessThanOrEqual(boxes[1]!.x);
    expect(boxes[1]!.x + boxes[1]!.width).toBeLessThanOrEqual(boxes[2]!.x);
    // Escaped: the markup of the response is text, not elements.
    const pre = cols.nth(0).locator("pre");
    expect(await pre.locator("i, script").count()).toBe(0);
    expect(await pre.innerText()).toBe(responseText("base", "list", 0));
    expect(await page.locator("body script").count()).toBe(0);
    expect(await page.locator('div.example[data-id="list-0"] .instruction').innerText()).toBe("do list 0 <b>&");
    // Cut: item 1's response is longer than the limit; the shown part is its start, the mark says how much is left.
    const long = responseText("sft", "list", 1);
    const cut = page.locator('div.example[data-id="list-1"] div.resp[data-variant="sft"]');
    expect(Number(await cut.locator(".trunc").getAttribute("data-omitted"))).toBe(long.length - EXAMPLE_MAX_CHARS);
    expect(await cut.locator(".trunc").innerText()).toContain(`${long.length - EXAMPLE_MAX_CHARS} more characters not shown`);
    expect(await cut.locator("pre").innerText()).toStartWith(long.slice(0, EXAMPLE_MAX_CHARS));
    expect(await page.locator('div.example[data-id="list-0"] .trunc').count()).toBe(0);
    // Failed checks, by the fixture's rule (item k succeeds when k < 2 + 3·variant + type index % 2):
    // item 2 fails for base on the even-indexed types and succeeds everywhere else.
    for (const id of [`${TEST_TYPES[0]}-2`, `${TEST_TYPES[1]}-2`]) {
      for (const v of ["base", "sft", "dpo"]) {
        const resp = page.locator(`div.example[data-id="${id}"] div.resp[data-variant="${v}"]`);
        const success = (await resp.getAttribute("data-success")) === "true";
        const vi = ["base", "sft", "dpo"].indexOf(v), ti = TEST_TYPES.indexOf(id.split("-")[0] as (typeof TEST_TYPES)[number]);
        expect(success).toBe(2 < 2 + vi * 3 + (ti % 2));
        expect(await resp.locator("ul.failed li").count()).toBe(success ? 0 : 1);
        if (!success) expect(await resp.locator("ul.failed li").innerText()).toMatch(/length_constraints:number_words .* words, need <\d+> & more/);
      }
    }
  });

  test("self-judge: one row per variant and scope carrying results.json's agreement, precision, recall and kappa", async () => {
    const json = JSON.parse(outputs.files["evaluation_results.json"]!) as EvaluationResults;
    const sj = json.selfJudge!;
    expect(sj.rows.length).toBe(3 * 6);
    const rows = await page.locator('table[data-table="self-judge"] tbody tr').evaluateAll((trs) => trs.map((tr) => ({ v: tr.getAttribute("data-variant"), t: tr.getAttribute("data-type"), n: Number(tr.getAttribute("data-n")), agreement: tr.getAttribute("data-agreement"), precision: tr.getAttribute("data-precision"), recall: tr.getAttribute("data-recall"), kappa: tr.getAttribute("data-kappa"), cells: [...tr.querySelectorAll("td")].map((td) => td.textContent) })));
    expect(rows.length).toBe(sj.rows.length);
    const num = (x: string | null) => (x === "null" ? null : Number(x));
    sj.rows.forEach((r, i) => {
      const got = rows[i]!;
      expect([got.v, got.t, got.n]).toEqual([r.variant, r.scope, r.n]);
      for (const k of ["agreement", "precision", "recall", "kappa"] as const) {
        const want = r[k];
        if (want === null) expect(got[k]).toBe("null");
        else expect(num(got[k])!).toBeCloseTo(want, 9);
      }
      expect(got.cells[3]).toBe(`${r.table.tp} / ${r.table.fp} / ${r.table.fn} / ${r.table.tn}`);
    });
    // By hand for base · factual: successes k = 0, 1 (margins 0.5, 2), failures k = 2..9 with
    // margin 1.5 at k = 4, 8: tp 1, fp 2, fn 1, tn 6; agreement 7/10, precision 1/3, recall 1/2,
    // kappa = (0.7 − (0.3·0.2 + 0.7·0.8)) / (1 − 0.62) = 0.08 / 0.38 = 0.2105.
    const first = rows.find((r) => r.v === "base" && r.t === TEST_TYPES[0])!;
    expect(first.cells.slice(2, 8)).toEqual(["10", "1 / 2 / 1 / 6", "70.0%", "33.3%", "50.0%", "0.211"]);
    expect(await page.locator('div[data-section="self-judge"]').innerText()).toContain("2 responses not judged");
  });

  test("IFEval: a table of the four metrics per variant with the numbers of the results", async () => {
    expect(results.ifeval?.length).toBe(3);
    const rows = await page.locator('table[data-table="ifeval-metrics"] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    const pct = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(1)}%`);
    expect(rows).toEqual(results.ifeval!.map(({ variant, metrics: m }) => [variant, String(m.prompts), String(m.instructions), pct(m.promptLevel.strict), pct(m.instructionLevel.strict), pct(m.promptLevel.loose), pct(m.instructionLevel.loose)]));
    const head = await page.locator('table[data-table="ifeval-metrics"] th').allInnerTexts();
    expect(head.slice(3).map((h) => h.toLowerCase())).toEqual(["prompt-level strict", "instruction-level strict", "prompt-level loose", "instruction-level loose"]);
  });
});
