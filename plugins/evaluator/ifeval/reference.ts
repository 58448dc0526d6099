// The `ifeval` semantics: each instruction judged as the reference implementation
// (google-research instruction_following_eval, instructions.py) judges it, rule for
// rule: regex keyword search (substring, case-insensitive), \w+ word counts, `***`
// and "\n\n" paragraph splits, unanchored postscript markers, and so on. Written from
// the reference's documented behaviour; where a library stands in for nltk or
// langdetect (nlp.ts) the verdicts can differ, as specs/evaluation.md §8 lists.
import { CONSTRAINED_OPTIONS, type IfevalRelation, type Instruction } from "./instructions.ts";
import { countCapitalWords, countSentences, countWords, detectLanguage } from "./nlp.ts";
import { isLower, isUpper, splitWhitespace, strip, stripChars, userRegExp, wordBounded, WS } from "./python.ts";

const holds = (actual: number, relation: IfevalRelation, n: number) => (relation === "less than" ? actual < n : actual >= n);

function count(re: RegExp, s: string): number {
  return s.match(re)?.length ?? 0;
}

// Python's `.` is any character but \n, and multiline ^/$ see only \n as a line end.
const LINE_START = "(?<![^\\n])";
const LINE_END = "(?![^\\n])";

function languageIs(value: string, language: string): boolean {
  const found = detectLanguage(value);
  // langdetect raising (nothing to detect) counts as followed in the reference.
  return found === null ? true : found === language;
}

function postscriptPattern(marker: string): RegExp {
  // Not anchored to a line start: the reference finds the marker anywhere.
  if (marker === "P.P.S") return new RegExp(`${WS}*p\\.${WS}?p\\.${WS}?s[^\\n]*${LINE_END}`, "u");
  if (marker === "P.S.") return new RegExp(`${WS}*p\\.${WS}?s\\.[^\\n]*${LINE_END}`, "u");
  return userRegExp(`${WS}*${marker.toLowerCase()}[^\\n]*${LINE_END}`, "");
}

function nthParagraphFirstWord(value: string, k: { num_paragraphs: number; nth_paragraph: number; first_word: string }): boolean {
  const paragraphs = value.split("\n\n");
  const nonEmpty = paragraphs.filter((p) => strip(p).length > 0).length;
  // Indexes the raw split (empty paragraphs included), as the reference does.
  if (k.nth_paragraph > nonEmpty) return false;
  const paragraph = strip(paragraphs[k.nth_paragraph - 1] ?? "");
  if (!paragraph) return false;
  let word = splitWhitespace(paragraph)[0]!;
  word = word.replace(/^'+/, "").replace(/^"+/, "");
  let first = "";
  for (const ch of word) {
    if (".,?!'\"".includes(ch)) break;
    first += ch.toLowerCase();
  }
  return nonEmpty === k.num_paragraphs && first === k.first_word.toLowerCase();
}

function paragraphsByStars(value: string, n: number): boolean {
  const parts = value.split(new RegExp(`${WS}?\\*\\*\\*${WS}?`, "u"));
  let k = parts.length;
  for (const [i, p] of parts.entries()) {
    if (strip(p)) continue;
    if (i === 0 || i === parts.length - 1) k--;
    else return false;
  }
  return k === n;
}

function jsonFormat(value: string): boolean {
  let v = strip(value);
  for (const prefix of ["```json", "```Json", "```JSON", "```"]) if (v.startsWith(prefix)) v = v.slice(prefix.length);
  if (v.endsWith("```")) v = v.slice(0, -3);
  try {
    JSON.parse(strip(v));
    return true;
  } catch {
    return false;
  }
}

function twoResponses(value: string): boolean {
  const parts = value.split("******");
  const valid: string[] = [];
  for (const [i, p] of parts.entries()) {
    if (!strip(p)) {
      if (i !== 0 && i !== parts.length - 1) return false;
    } else valid.push(p);
  }
  return valid.length === 2 && strip(valid[0]!) !== strip(valid[1]!);
}

function highlights(value: string): number {
  const single = (value.match(/\*[^\n*]*\*/g) ?? []).filter((h) => strip(stripChars(h, "*")).length > 0).length;
  const double = (value.match(/\*\*[^\n*]*\*\*/g) ?? []).filter((h) => strip(h.slice(2, -2)).length > 0).length;
  return single + double;
}

/** Does `value` follow `ins`, by the reference's check_following? (The caller handles empty responses.) */
export function referenceFollows(ins: Instruction, value: string): boolean {
  switch (ins.id) {
    case "keywords:existence":
      return ins.kwargs.keywords.every((k) => userRegExp(k, "i").test(value));
    case "keywords:frequency":
      return holds(count(userRegExp(strip(ins.kwargs.keyword), "gi"), value), ins.kwargs.relation, ins.kwargs.frequency);
    case "keywords:forbidden_words":
      return !ins.kwargs.forbidden_words.some((w) => {
        try {
          return new RegExp(wordBounded(w), "iu").test(value);
        } catch {
          return new RegExp(`\\b${w}\\b`, "i").test(value);
        }
      });
    case "keywords:letter_frequency": {
      const letter = strip(ins.kwargs.letter).toLowerCase();
      const n = letter ? [...value.toLowerCase()].filter((c) => c === letter).length : 0;
      return holds(n, ins.kwargs.let_relation, ins.kwargs.let_frequency);
    }
    case "language:response_language":
      return languageIs(value, ins.kwargs.language);
    case "length_constraints:number_sentences":
      return holds(countSentences(value), ins.kwargs.relation, ins.kwargs.num_sentences);
    case "length_constraints:number_paragraphs":
      return paragraphsByStars(value, ins.kwargs.num_paragraphs);
    case "length_constraints:number_words":
      return holds(countWords(value), ins.kwargs.relation, ins.kwargs.num_words);
    case "length_constraints:nth_paragraph_first_word":
      return nthParagraphFirstWord(value, ins.kwargs);
    case "detectable_content:number_placeholders":
      return count(/\[[^\n]*?\]/g, value) >= ins.kwargs.num_placeholders;
    case "detectable_content:postscript":
      return postscriptPattern(strip(ins.kwargs.postscript_marker)).test(value.toLowerCase());
    case "detectable_format:number_bullet_lists": {
      const stars = count(new RegExp(`${LINE_START}${WS}*\\*[^*][^\\n]*${LINE_END}`, "gu"), value);
      const dashes = count(new RegExp(`${LINE_START}${WS}*-[^\\n]*${LINE_END}`, "gu"), value);
      return stars + dashes === ins.kwargs.num_bullets;
    }
    case "detectable_format:constrained_response": {
      const v = strip(value);
      return CONSTRAINED_OPTIONS.some((o) => v.includes(o));
    }
    case "detectable_format:number_highlighted_sections":
      return highlights(value) >= ins.kwargs.num_highlights;
    case "detectable_format:multiple_sections": {
      const splitter = userRegExp(`${WS}?${strip(ins.kwargs.section_spliter)}${WS}?\\d+${WS}?`, "g");
      return value.split(splitter).length - 1 >= ins.kwargs.num_sections;
    }
    case "detectable_format:json_format":
      return jsonFormat(value);
    case "detectable_format:title":
      return (value.match(/<<[^\n]+>>/g) ?? []).some((t) => strip(t.replace(/^<+/, "").replace(/>+$/, "")).length > 0);
    case "combination:two_responses":
      return twoResponses(value);
    case "combination:repeat_prompt":
      return strip(value).toLowerCase().startsWith(strip(ins.kwargs.prompt_to_repeat).toLowerCase());
    case "startend:end_checker":
      return stripChars(strip(value), '"').toLowerCase().endsWith(strip(ins.kwargs.end_phrase).toLowerCase());
    case "change_case:capital_word_frequency":
      return holds(countCapitalWords(value), ins.kwargs.capital_relation, ins.kwargs.capital_frequency);
    case "change_case:english_capital":
      return isUpper(value) && languageIs(value, "en");
    case "change_case:english_lowercase":
      return isLower(value) && languageIs(value, "en");
    case "punctuation:no_comma":
      return !value.includes(",");
    case "startend:quotation": {
      const v = strip(value);
      return [...v].length > 1 && v.startsWith('"') && v.endsWith('"');
    }
  }
}
