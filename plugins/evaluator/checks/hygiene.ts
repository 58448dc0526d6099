// Is this text in a language at all? A random-weights model writes runs of
// vocabulary pieces from many scripts ("面条חופשWhy temperaturaiei… 이게 이게 이게")
// that can satisfy a word count or a keyword; every test type's success therefore
// includes the `fluent` check (specs/evaluation.md §2): one main script, the
// instruction language's own script, enough of its common words in prose, few
// repeated n-grams, and mostly letters and digits. Thresholds are calibrated in
// test/plugins/checks-hygiene.test.ts on human- and model-written text in several
// languages (short, long, lists, code) and on synthesized models' output.
import { FUNCTION_WORDS } from "./language.ts";

/** Script groups: Japanese mixes Han and kana, so they are one group. */
const GROUPS: [string, RegExp][] = [
  ["Latin", /\p{Script=Latin}/u],
  ["Cyrillic", /\p{Script=Cyrillic}/u],
  ["Greek", /\p{Script=Greek}/u],
  ["Arabic", /\p{Script=Arabic}/u],
  ["Hebrew", /\p{Script=Hebrew}/u],
  ["Devanagari", /\p{Script=Devanagari}/u],
  ["Bengali", /\p{Script=Bengali}/u],
  ["Gurmukhi", /\p{Script=Gurmukhi}/u],
  ["Gujarati", /\p{Script=Gujarati}/u],
  ["Tamil", /\p{Script=Tamil}/u],
  ["Telugu", /\p{Script=Telugu}/u],
  ["Kannada", /\p{Script=Kannada}/u],
  ["Malayalam", /\p{Script=Malayalam}/u],
  ["Thai", /\p{Script=Thai}/u],
  ["Hangul", /\p{Script=Hangul}/u],
  ["CJK", /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u],
];

/** The script each language is written in (the languages of response_language). */
const SCRIPT_OF: Record<string, string> = {
  ar: "Arabic", fa: "Arabic", ur: "Arabic", he: "Hebrew", el: "Greek", ru: "Cyrillic", uk: "Cyrillic", bg: "Cyrillic",
  hi: "Devanagari", mr: "Devanagari", ne: "Devanagari", bn: "Bengali", ta: "Tamil", te: "Telugu", gu: "Gujarati",
  kn: "Kannada", ml: "Malayalam", pa: "Gurmukhi", th: "Thai", ko: "Hangul", ja: "CJK", zh: "CJK",
};

/** Scripts written without spaces between words: repetition is measured on characters. */
const UNSPACED = new Set(["CJK", "Thai"]);

// English's most frequent words (general knowledge of the language; forms of be/have/do
// listed as they occur). Other Latin-script languages use their function words.
const ENGLISH = new Set(
  ("the be is are was were been being am to of and a an in that have has had i it for not on with he as you do does did at this " +
    "but his by from they we say said her she or will my one all would there their what so up out if about who get which go me when " +
    "make can like time no just him know take people into year your good some could them see other than then now look only come its " +
    "over think also back after use two how our work first well way even new want because any these give day most us more very many " +
    "such each may should here where why those both through between before must own same while during under").split(" "),
);

const COMMON: Record<string, Set<string>> = { en: ENGLISH, ...Object.fromEntries(Object.entries(FUNCTION_WORDS).filter(([l]) => l !== "en").map(([l, ws]) => [l, new Set(ws)])) };

export const HYGIENE = {
  /** Below this many letters the script is not judged (a number, "OK"). */
  minLetters: 8,
  /** The main script's share of letters, at least. */
  mainScript: 0.9,
  /** Prose words needed before common words are judged. */
  minProseWords: 12,
  /** A line is prose (not a list item of a few nouns, not code) with at least this many words. */
  proseLineWords: 5,
  /** Common words of the language among the prose words, at least (English; other languages' lists are shorter). */
  commonShare: { en: 0.12, other: 0.05 },
  /** Repeated token 3-grams, at most (needs minTokens). */
  maxRepeat: 0.35,
  minTokens: 12,
  /** Letters and digits among the non-space characters, at least (needs 12 characters). */
  alnumShare: 0.55,
  /** A piece of 2-24 characters with a letter, repeated back to back this many times ("erdeerdeerdeerde"). */
  stutter: 4,
} as const;

const STUTTER = new RegExp(`(.{2,24}?)\\1{${HYGIENE.stutter - 1},}`, "gu");

/** The first piece with a letter repeated back to back, or null. */
function stutter(text: string): string | null {
  for (const m of text.matchAll(STUTTER)) if (/\p{L}/u.test(m[1]!)) return m[1]!;
  return null;
}

const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;

function repeatedShare(tokens: string[]): number {
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i + 2 < tokens.length; i++) {
    const g = `${tokens[i]}\u0000${tokens[i + 1]}\u0000${tokens[i + 2]}`;
    if (seen.has(g)) repeats++;
    else seen.add(g);
  }
  return repeats / Math.max(1, tokens.length - 2);
}

/** A line of prose: enough words, not an enumeration ("Kyoto, Osaka, Nagoya, ..."), not
 *  code outside a fence (brackets, operators, semicolons). */
function isProse(line: string): boolean {
  const words = line.match(WORD) ?? [];
  if (words.length < HYGIENE.proseLineWords) return false;
  const parts = line.split(/[,;]/).filter((p) => /[\p{L}\p{N}]/u.test(p));
  if (parts.length > 2 && words.length / parts.length < 3) return false;
  const code = (line.match(/[(){}[\];=<>+*/`$]/g) ?? []).length;
  return code / line.length < 0.06;
}

/** Text outside ``` fences: code is not prose, and its symbols are its own. */
function withoutCode(text: string): string {
  return text.replace(/```[\s\S]*?(?:```|$)/g, "\n");
}

export interface Hygiene {
  ok: boolean;
  detail: string;
}

/** Whether `text` reads as text in `language` (ISO 639-1), with the reason when not. */
export function hygiene(text: string, language = "en"): Hygiene {
  const prose = withoutCode(text);
  // Lines without a letter or digit (rules, table separators) are layout, not symbols.
  const visible = [...prose.split("\n").filter((l) => /[\p{L}\p{N}]/u.test(l)).join("")].filter((ch) => !/\s/u.test(ch));
  if (visible.length >= 12) {
    const alnum = visible.filter((ch) => /[\p{L}\p{N}\p{M}]/u.test(ch)).length / visible.length;
    if (alnum < HYGIENE.alnumShare) return { ok: false, detail: `${(100 * alnum).toFixed(0)}% letters and digits: symbols, not text` };
  }
  const letters = [...prose].filter((ch) => /\p{L}/u.test(ch));
  if (letters.length < HYGIENE.minLetters) return { ok: true, detail: `${letters.length} letters, too few to judge` };

  const counts = new Map<string, number>();
  for (const ch of letters) {
    const g = GROUPS.find(([, re]) => re.test(ch))?.[0] ?? "other";
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  const [main, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
  const share = n / letters.length;
  const mix = [...counts.entries()].filter(([, k]) => k / letters.length >= 0.03).map(([g, k]) => `${g} ${((100 * k) / letters.length).toFixed(0)}%`).join(", ");
  if (share < HYGIENE.mainScript) return { ok: false, detail: `scripts mixed (${mix})` };
  const expected = SCRIPT_OF[language] ?? "Latin";
  if (main !== expected) return { ok: false, detail: `written in ${main} script, not ${expected} (${language})` };

  const stuck = stutter(prose);
  if (stuck) return { ok: false, detail: `${JSON.stringify(stuck)} repeated back to back` };
  const tokens = UNSPACED.has(main) ? letters : (prose.toLowerCase().match(WORD) ?? []);
  if (tokens.length >= HYGIENE.minTokens) {
    const rep = repeatedShare(tokens);
    if (rep > HYGIENE.maxRepeat) return { ok: false, detail: `${(100 * rep).toFixed(0)}% repeated 3-grams` };
  }

  const common = COMMON[language];
  if (common) {
    const proseWords = prose
      .split("\n")
      .filter(isProse)
      .flatMap((l) => l.toLowerCase().match(WORD) ?? []);
    if (proseWords.length >= HYGIENE.minProseWords) {
      const hit = proseWords.filter((w) => common.has(w)).length / proseWords.length;
      const min = language === "en" ? HYGIENE.commonShare.en : HYGIENE.commonShare.other;
      if (hit < min) return { ok: false, detail: `${(100 * hit).toFixed(0)}% common ${language} words in ${proseWords.length} words of prose, wanted ${(100 * min).toFixed(0)}%` };
    }
  }
  return { ok: true, detail: `${main} script ${(100 * share).toFixed(0)}%, reads as ${language}` };
}
