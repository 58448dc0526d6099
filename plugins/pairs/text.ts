// Word-level measures the negatives are made and checked with. Deliberately crude: a
// negative must be worse in a way a bag of words can see, so the checks cannot be fooled
// by fluent text that a random-weight model will never write anyway.
const STOP = new Set(
  ("a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those " +
    "i you he she we they me him her us them my your his our their what which who whom how why when where there here " +
    "do does did so than then too very can will just not no yes all any some one also into about over such only own same")
    .split(" "),
);

/** Lower-case words of letters and digits, in order. */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu) ?? [];
}

/** Words that carry content: not stop words, numbers included. */
export function contentWords(text: string): Set<string> {
  return new Set(words(text).filter((w) => !STOP.has(w)));
}

export function overlap(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let both = 0;
  for (const w of a) if (b.has(w)) both++;
  return both / (a.size + b.size - both);
}

/** Share of `of`'s content words that also occur in `in_` (0 when `of` has none). */
export function coverage(of: ReadonlySet<string>, in_: ReadonlySet<string>): number {
  if (of.size === 0) return 0;
  let n = 0;
  for (const w of of) if (in_.has(w)) n++;
  return n / of.size;
}

export function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((w) => b.has(w));
}

/** Whitespace collapsed, lower-cased: the key pairs are deduplicated by. */
export function normalizeText(text: string): string {
  return text.toLowerCase().replace(/\s+/g, " ").trim();
}
