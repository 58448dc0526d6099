// Content checks: what the response says (answers, keywords, refusals) and
// whether it is a usable response at all (empty, leaked delimiters, loops).
import { hygiene } from "./hygiene.ts";
import { languageScore } from "./language.ts";
import { refusalPhrase } from "./refusal.ts";
import type { CheckImpls } from "./spec.ts";
import { compare, countPhrase, normalise, relationText, words } from "./text.ts";

const LEAK = /Instruction:|Response:|^\s*END\s*$/m;

/** Numbers as people write them: -3, 2.5, 1,234,567, 3/4. */
const NUMBER = /-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:\/\d+)?/g;

export function parseNumber(s: string): number {
  if (s.includes("/")) {
    const [num, den] = s.split("/").map(Number);
    return num! / den!;
  }
  return Number(s.replaceAll(",", ""));
}

function repeatedTrigramRatio(ws: string[]): number {
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i + 2 < ws.length; i++) {
    const g = `${ws[i]} ${ws[i + 1]} ${ws[i + 2]}`;
    if (seen.has(g)) repeats++;
    else seen.add(g);
  }
  return repeats / Math.max(1, ws.length - 2);
}

/** Fewer words than this and repetition cannot be told from a short answer. */
const MIN_WORDS_FOR_REPETITION = 12;

export const contentChecks = {
  non_empty: (r) => ({ passed: r.trim().length > 0, detail: r.trim().length > 0 ? `${r.trim().length} characters` : "empty response" }),

  no_leakage: (r) => {
    const m = LEAK.exec(r);
    return { passed: !m, detail: m ? `delimiter '${m[0].trim()}' left in the response` : "no delimiter" };
  },

  fluent: (r, s) => {
    const h = hygiene(r, s.language);
    return { passed: h.ok, detail: h.detail };
  },

  not_refusal: (r) => {
    const p = refusalPhrase(r);
    return { passed: p === null, detail: p ? `refuses ('${p}')` : "does not refuse" };
  },

  refusal: (r) => {
    const p = refusalPhrase(r);
    return { passed: p !== null, detail: p ? `refuses ('${p}')` : "no refusal found" };
  },

  no_repetition: (r, s) => {
    const ws = words(r.toLowerCase());
    if (ws.length < MIN_WORDS_FOR_REPETITION) return { passed: true, detail: `${ws.length} words, too short to judge repetition` };
    const ratio = repeatedTrigramRatio(ws);
    return { passed: ratio <= s.maxRepeatRatio, detail: `${(100 * ratio).toFixed(0)}% repeated word trigrams, allowed ${(100 * s.maxRepeatRatio).toFixed(0)}%` };
  },

  answer: (r, s) => {
    const hay = ` ${normalise(r)} `;
    const hit = s.accepted.find((a) => normalise(a).length > 0 && hay.includes(` ${normalise(a)} `));
    return { passed: hit !== undefined, detail: hit !== undefined ? `contains '${hit}'` : `none of ${JSON.stringify(s.accepted)} found` };
  },

  exact_answer: (r, s) => {
    const clean = (x: string) => {
      const t = x.trim().replace(/\s+/g, " ").replace(/\.$/, "");
      return s.caseSensitive ? t : t.toLowerCase();
    };
    const ok = clean(r) === clean(s.answer);
    return { passed: ok, detail: ok ? "exact match" : `'${r.trim().slice(0, 60)}' is not '${s.answer}'` };
  },

  math_result: (r, s) => {
    const nums = r.match(NUMBER) ?? [];
    const last = nums.at(-1);
    if (last === undefined) return { passed: false, detail: "no number in the response" };
    const v = parseNumber(last);
    return { passed: Math.abs(v - s.value) <= s.tolerance, detail: `last number ${last}, expected ${s.value}` };
  },

  yes_no: (r, s) => {
    const first = words(r.replaceAll("*", ""))[0]?.toLowerCase();
    const said = first === "yes" || first === "no" ? first : null;
    if (!said) return { passed: false, detail: `starts with '${first ?? ""}', not yes or no` };
    const ok = !s.expected || said === s.expected;
    return { passed: ok, detail: s.expected ? `said ${said}, expected ${s.expected}` : `said ${said}` };
  },

  keywords_include: (r, s) => {
    const missing = s.keywords.filter((k) => countPhrase(r, k) === 0);
    return { passed: missing.length === 0, detail: missing.length ? `missing ${JSON.stringify(missing)}` : "all keywords present" };
  },

  keywords_any: (r, s) => {
    const found = s.keywords.filter((k) => countPhrase(r, k) > 0);
    return { passed: found.length >= s.min, detail: `${found.length} of ${s.keywords.length} keywords present, wanted at least ${s.min}` };
  },

  keywords_exclude: (r, s) => {
    const found = s.keywords.filter((k) => countPhrase(r, k) > 0);
    return { passed: found.length === 0, detail: found.length ? `forbidden ${JSON.stringify(found)} present` : "no forbidden keyword" };
  },

  keyword_frequency: (r, s) => {
    const k = countPhrase(r, s.keyword);
    return { passed: compare(k, s.relation, s.n), detail: `'${s.keyword}' ${k} times, wanted ${relationText(s.relation, s.n)}` };
  },

  letter_frequency: (r, s) => {
    const letter = s.letter.toLowerCase();
    const k = [...r.toLowerCase()].filter((ch) => ch === letter).length;
    return { passed: compare(k, s.relation, s.n), detail: `letter '${s.letter}' ${k} times, wanted ${relationText(s.relation, s.n)}` };
  },

  constrained_response: (r, s) => {
    const lower = r.toLowerCase();
    const found = s.options.filter((o) => lower.includes(o.toLowerCase()));
    return { passed: found.length === 1, detail: found.length === 1 ? `answered '${found[0]}'` : `${found.length} of the options present` };
  },

  response_language: (r, s) => {
    const { ok, detail } = languageScore(r, s.language);
    return { passed: ok, detail: `${detail}; wanted ${s.language}` };
  },

  repeat_prompt: (r, s) => {
    const ok = r.trim().toLowerCase().startsWith(s.prompt.trim().toLowerCase());
    return { passed: ok, detail: ok ? "starts with the prompt" : "does not start with the prompt repeated" };
  },
} satisfies Partial<CheckImpls>;
