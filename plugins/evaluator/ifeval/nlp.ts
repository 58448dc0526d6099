// The reference's library calls, done in JavaScript: nltk's `\w+` word count (a
// regex, reproduced exactly), nltk's Punkt sentence count (sbd, a rule-based
// splitter with an abbreviation list: close, not identical), nltk's word_tokenize
// as far as it decides which tokens are all-capital (its Treebank regexes that
// split cased text), and langdetect (Google's CLD3, compiled to WebAssembly).
// Where the verdicts can differ from the reference: specs/evaluation.md §8.
import { loadModule } from "cld3-asm";
import sbd from "sbd";
import { isUpper, W, WS } from "./python.ts";

const WORD = new RegExp(`${W}+`, "gu");

/** nltk RegexpTokenizer(r"\w+") token count, with Python's Unicode \w. */
export function countWords(text: string): number {
  return text.match(WORD)?.length ?? 0;
}

/** Sentences as Punkt would count them: punctuation-ended, abbreviations and decimals not ends, single newlines not ends. */
export function countSentences(text: string): number {
  return sbd.sentences(text, { newline_boundaries: false, preserve_whitespace: false }).filter((s) => s.trim().length > 0).length;
}

// nltk's NLTKWordTokenizer rules, in its order, limited to those that can split a
// run of non-space characters into pieces (only those change which tokens are all
// capitals: "NASA's" is "NASA" + "'s", "DON'T" is "DO" + "N'T").
const TOKEN_RULES: [RegExp, string][] = [
  [/([«“‘„]|`+)/gu, " $1 "],
  [/^"/g, " `` "],
  [/([ ([{<])("|'{2})/g, "$1 `` "],
  [/([:,])([^\d])/g, " $1 $2"],
  [/([:,])$/g, " $1 "],
  [/\.{2,}/g, " $& "],
  [/[;@#$%&]/g, " $& "],
  [/([^.])(\.)([\])}>"']*)\s*$/g, "$1 $2$3 "],
  [/[?!]/g, " $& "],
  [/([^'])' /g, "$1 ' "],
  [/[*]/g, " $& "],
  [/[\][(){}<>]/g, " $& "],
  [/--/g, " -- "],
  [/([»”’])/gu, " $1 "],
  [/"/g, " '' "],
  [/(\S)('')/g, "$1 $2 "],
  [/([^' ])('[sS]|'[mM]|'[dD]|') /g, "$1 $2 "],
  [/([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) /g, "$1 $2 "],
  [/\b(can)(not)\b/gi, " $1 $2 "],
  [/\b(d)('ye)\b/gi, " $1 $2 "],
  [/\b(gim)(me)\b/gi, " $1 $2 "],
  [/\b(gon)(na)\b/gi, " $1 $2 "],
  [/\b(got)(ta)\b/gi, " $1 $2 "],
  [/\b(lem)(me)\b/gi, " $1 $2 "],
  [/\b(more)('n)\b/gi, " $1 $2 "],
  [/\b(wan)(na)(?=\s)/gi, " $1 $2 "],
  [/ ('t)(is)\b/gi, " $1 $2 "],
  [/ ('t)(was)\b/gi, " $1 $2 "],
];

const SPACES = new RegExp(`${WS}+`, "u");

/** Tokens of nltk.word_tokenize (as far as casing is concerned), per line-joined sentence text. */
export function wordTokens(text: string): string[] {
  let t = ` ${text} `;
  for (const [re, by] of TOKEN_RULES) t = t.replace(re, by);
  return t.split(SPACES).filter((x) => x.length > 0);
}

export function countCapitalWords(text: string): number {
  return wordTokens(text).filter(isUpper).length;
}

// langdetect's codes for CLD3's where they differ. langdetect names Chinese zh-cn or
// zh-tw, never plain zh, so (as in the reference) a request for "zh" is never met.
const TO_LANGDETECT: Record<string, string> = { iw: "he", fil: "tl", zh: "zh-cn", "zh-Latn": "zh-cn" };

// CLD3 is WebAssembly: compiled once, when this module is first imported.
const identifier = (await loadModule()).create(0, 4096);

/** The language of `text` as langdetect would name it, or null where langdetect raises (no letters to go on). */
export function detectLanguage(text: string): string | null {
  if (!/\p{L}/u.test(text)) return null;
  const found = identifier.findLanguage(text).language;
  return found === "und" ? null : (TO_LANGDETECT[found] ?? found);
}
