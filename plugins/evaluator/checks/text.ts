// Text measurements shared by the checks. The definitions (what a word, a
// sentence, a paragraph, a list item is) are specified in specs/evaluation.md §3;
// keep the two in step.
import type { Relation } from "./spec.ts";

/** A word: letters/digits, with inner apostrophes or hyphens ("don't", "well-known"). */
const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;

export function words(text: string): string[] {
  return text.match(WORD) ?? [];
}

/** Sentences end at . ! or ? followed by white space or the end; a trailing fragment
 *  counts too. Segments without a letter ("1." of a numbered list, "...") are not sentences. */
export function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])["'”’)\]]*\s+|\n\s*\n/u)
    .map((s) => s.trim())
    .filter((s) => /\p{L}/u.test(s));
}

/** Paragraphs: separated by blank lines, or by lines of `***` (IFEval's separator). */
export function paragraphs(text: string, separator: "blank" | "***" = "blank"): string[] {
  const re = separator === "***" ? /^\s*\*\*\*\s*$/m : /\n[ \t]*\n/;
  return text.split(re).map((p) => p.trim()).filter((p) => p.length > 0);
}

export function nonEmptyLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}

const NUMBERED = /^\s*(\d+)[.)]\s+(\S.*)$/;
const BULLET = /^\s*[*\-•]\s+(\S.*)$/;

export function numberedItems(text: string): { number: number; text: string }[] {
  return text.split(/\r?\n/).flatMap((l) => {
    const m = NUMBERED.exec(l);
    return m ? [{ number: Number(m[1]), text: m[2]!.trim() }] : [];
  });
}

export function bulletItems(text: string): string[] {
  return text.split(/\r?\n/).flatMap((l) => {
    const m = BULLET.exec(l);
    return m ? [m[1]!.trim()] : [];
  });
}

/** The items of a list answer, however the model wrote the list: numbered or bulleted
 *  lines, else one item a line, else the comma/semicolon-separated parts of one line. */
export function listItems(text: string): string[] {
  const marked = text.split(/\r?\n/).flatMap((l) => {
    const m = NUMBERED.exec(l) ?? BULLET.exec(l);
    return m ? [m[m.length - 1]!.trim()] : [];
  });
  if (marked.length > 0) return marked;
  const lines = nonEmptyLines(text);
  if (lines.length > 1) return lines;
  const one = lines[0] ?? "";
  return one
    .replace(/[.!]$/, "")
    .split(/\s*[,;]\s*(?:and\s+|or\s+)?|\s+and\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Lower case, Unicode-normalised, punctuation and articles dropped, single spaces:
 *  the form in which answers are compared. */
export function normalise(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/(?<!\d)\.|\.(?!\d)|[^\p{L}\p{N}\s.]/gu, " ") // keep only decimal points
    .replace(/\b(a|an|the)\b/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A phrase as a whole word or words: not preceded or followed by a letter or digit.
 *  Inner white space matches any run of white space. */
export function phraseRegExp(phrase: string, caseSensitive = false): RegExp {
  const body = phrase.trim().split(/\s+/).map(escapeRegExp).join("\\s+");
  return new RegExp(`(?<![\\p{L}\\p{N}])${body}(?![\\p{L}\\p{N}])`, caseSensitive ? "gu" : "giu");
}

export function countPhrase(text: string, phrase: string, caseSensitive = false): number {
  return text.match(phraseRegExp(phrase, caseSensitive))?.length ?? 0;
}

export function compare(actual: number, relation: Relation, n: number): boolean {
  return relation === "at_least" ? actual >= n : relation === "at_most" ? actual <= n : actual === n;
}

export function relationText(relation: Relation, n: number): string {
  return `${relation.replace("_", " ")} ${n}`;
}

/** IFEval's loose transformations: the response, without its first line, without its last
 *  line, without both, and each of those with markdown `*` removed. Empty ones are dropped. */
export function looseVariants(response: string): string[] {
  const out: string[] = [];
  for (const r of [response, response.replaceAll("*", "")]) {
    const lines = r.split("\n");
    out.push(r, lines.slice(1).join("\n").trim(), lines.slice(0, -1).join("\n").trim(), lines.slice(1, -1).join("\n").trim());
  }
  return out.filter((r) => r.trim().length > 0);
}
