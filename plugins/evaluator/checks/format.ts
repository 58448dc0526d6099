// Format checks: length, lists, case, punctuation and markup the instruction
// asked for (IFEval's length_constraints, detectable_format, change_case,
// startend, punctuation and detectable_content groups).
import type { CheckImpls } from "./spec.ts";
import { bulletItems, compare, listItems, nonEmptyLines, normalise, numberedItems, paragraphs, relationText, sentences, words } from "./text.ts";

const counted = (what: string, k: number, relation: Parameters<typeof relationText>[0], n: number) => ({
  passed: compare(k, relation, n),
  detail: `${k} ${what}, wanted ${relationText(relation, n)}`,
});

/** Strip one surrounding ``` fence (```json ... ```), as models often wrap JSON. */
function unfence(r: string): string {
  const t = r.trim();
  const m = /^```[A-Za-z]*\s*\n?([\s\S]*?)\n?```$/.exec(t);
  return m ? m[1]!.trim() : t;
}

/** "P.S." -> a pattern that also accepts "P. S." and lower case at a line start. */
function markerRegExp(marker: string): RegExp {
  const body = marker
    .trim()
    .split("")
    .map((ch) => (ch === "." ? "\\.\\s?" : ch.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^\\s*${body}`, "im");
}

export const formatChecks = {
  word_count: (r, s) => counted("words", words(r).length, s.relation, s.n),
  sentence_count: (r, s) => counted("sentences", sentences(r).length, s.relation, s.n),
  paragraph_count: (r, s) => counted("paragraphs", paragraphs(r, s.separator).length, s.relation, s.n),
  line_count: (r, s) => counted("lines", nonEmptyLines(r).length, s.relation, s.n),

  nth_paragraph_first_word: (r, s) => {
    const ps = paragraphs(r);
    if (ps.length !== s.paragraphs) return { passed: false, detail: `${ps.length} paragraphs, wanted ${s.paragraphs}` };
    const first = words(ps[s.nth - 1] ?? "")[0] ?? "";
    const ok = first.toLowerCase() === s.word.toLowerCase();
    return { passed: ok, detail: `paragraph ${s.nth} starts with '${first}', wanted '${s.word}'` };
  },

  numbered_list: (r, s) => {
    const items = numberedItems(r);
    const consecutive = items.every((it, i) => it.number === i + 1);
    if (!consecutive) return { passed: false, detail: `numbered items are not 1..${items.length} (${items.map((i) => i.number).join(", ")})` };
    return counted("numbered items", items.length, s.relation, s.n);
  },

  bullet_list: (r, s) => counted("bullet items", bulletItems(r).length, s.relation, s.n),

  list_items: (r, s) => {
    const items = listItems(r);
    const k = s.distinct ? new Set(items.map(normalise)).size : items.length;
    return counted(s.distinct ? "distinct items" : "items", k, s.relation, s.n);
  },

  lowercase: (r) => {
    const ok = r === r.toLowerCase();
    return { passed: ok, detail: ok ? "all lower case" : "has upper-case letters" };
  },

  uppercase: (r) => {
    const ok = r === r.toUpperCase();
    return { passed: ok, detail: ok ? "all upper case" : "has lower-case letters" };
  },

  capital_word_frequency: (r, s) => counted("all-capital words", words(r).filter((w) => /\p{Lu}/u.test(w) && w === w.toUpperCase()).length, s.relation, s.n),

  json_format: (r) => {
    try {
      JSON.parse(unfence(r));
      return { passed: true, detail: "valid JSON" };
    } catch (e) {
      return { passed: false, detail: `not JSON: ${(e as Error).message}` };
    }
  },

  starts_with: (r, s) => {
    const t = r.trim();
    const ok = s.caseSensitive ? t.startsWith(s.phrase) : t.toLowerCase().startsWith(s.phrase.toLowerCase());
    return { passed: ok, detail: ok ? `starts with '${s.phrase}'` : `starts with '${t.slice(0, s.phrase.length + 10)}'` };
  },

  ends_with: (r, s) => {
    // IFEval strips surrounding quotes before comparing the end.
    const t = r.trim().replace(/^["“]|["”]$/g, "").trim();
    const ok = s.caseSensitive ? t.endsWith(s.phrase) : t.toLowerCase().endsWith(s.phrase.toLowerCase());
    return { passed: ok, detail: ok ? `ends with '${s.phrase}'` : `ends with '${t.slice(-(s.phrase.length + 10))}'` };
  },

  quotation: (r) => {
    const t = r.trim();
    const ok = t.length > 1 && /^["“]/.test(t) && /["”]$/.test(t);
    return { passed: ok, detail: ok ? "wrapped in double quotes" : "not wrapped in double quotes" };
  },

  no_commas: (r) => {
    const k = (r.match(/[,，]/g) ?? []).length;
    return { passed: k === 0, detail: `${k} commas` };
  },

  placeholders: (r, s) => counted("placeholders", (r.match(/\[[^\]\n]*\]/g) ?? []).length, "at_least", s.n),

  title: (r) => {
    const t = (r.match(/<<[^\n]+?>>/g) ?? []).find((m) => m.slice(2, -2).trim().length > 0);
    return { passed: !!t, detail: t ? `title ${t}` : "no <<title>>" };
  },

  postscript: (r, s) => {
    const ok = markerRegExp(s.marker).test(r);
    return { passed: ok, detail: ok ? `has a ${s.marker} line` : `no line starting with ${s.marker}` };
  },

  highlighted_sections: (r, s) => {
    const marks = (r.match(/\*\*[^\n*]+\*\*|\*[^\n*]+\*/g) ?? []).filter((m) => m.replaceAll("*", "").trim().length > 0);
    return counted("highlighted sections", marks.length, "at_least", s.n);
  },

  sections: (r, s) => {
    const splitter = s.splitter.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const k = (r.match(new RegExp(`(?<![\\p{L}])${splitter}\\s?\\d+`, "gu")) ?? []).length;
    return counted(`'${s.splitter} N' sections`, k, "at_least", s.n);
  },

  two_responses: (r) => {
    const parts = r.split("******").map((p) => p.trim());
    const ok = parts.length === 2 && parts.every((p) => p.length > 0) && parts[0] !== parts[1];
    return { passed: ok, detail: ok ? "two different responses" : `${parts.filter((p) => p.length > 0).length} non-empty parts around '******'${parts.length === 2 && parts[0] === parts[1] ? ", identical" : ""}` };
  },
} satisfies Partial<CheckImpls>;
