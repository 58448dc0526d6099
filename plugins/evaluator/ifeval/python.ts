// Python's str semantics where the reference relies on them and JavaScript's
// differ: which characters are white space (str.strip/split and re's \s), what
// `.` and multiline `^`/`$` match (only \n ends a line in Python), \w and \b
// (Unicode-aware in Python 3, ASCII-only in JavaScript), isupper/islower.

/** The characters for which Python's str.isspace() is true (JavaScript's \s differs: no \x1c-\x1f, \x85; has \ufeff). */
export const WS = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
/** Python 3's \w on str: alphanumeric (letters, numbers) or underscore; combining marks are not in it. */
export const W = "[\\p{L}\\p{N}_]";

const LEADING = new RegExp(`^${WS}+`, "u");
const TRAILING = new RegExp(`${WS}+$`, "u");
const SPLIT = new RegExp(`${WS}+`, "u");

export function strip(s: string): string {
  return s.replace(LEADING, "").replace(TRAILING, "");
}

/** str.strip(chars): remove any of `chars` from both ends. */
export function stripChars(s: string, chars: string): string {
  const set = new Set(chars);
  const cps = [...s];
  let a = 0;
  let b = cps.length;
  while (a < b && set.has(cps[a]!)) a++;
  while (b > a && set.has(cps[b - 1]!)) b--;
  return cps.slice(a, b).join("");
}

/** str.split() with no separator: runs of white space, no empty parts. */
export function splitWhitespace(s: string): string[] {
  return strip(s).split(SPLIT).filter((x) => x.length > 0);
}

/** str.isupper(): some cased character, and none lower-case. */
export function isUpper(s: string): boolean {
  return s !== s.toLowerCase() && s === s.toUpperCase();
}

/** str.islower(): some cased character, and none upper-case. */
export function isLower(s: string): boolean {
  return s !== s.toUpperCase() && s === s.toLowerCase();
}

/** A user's pattern (the reference passes keywords to `re` unescaped) compiled for JavaScript. */
export function userRegExp(pattern: string, flags: string): RegExp {
  try {
    return new RegExp(pattern, flags + "u");
  } catch {
    // Escapes Python allows but Unicode-mode JavaScript does not (e.g. "\-").
  }
  try {
    return new RegExp(pattern, flags);
  } catch {
    // Python-only syntax ((?P<name>...)): matched as the literal text.
    return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags);
  }
}

/** Python's \b around a pattern: a boundary between \w and non-\w, Unicode-aware. */
export function wordBounded(pattern: string): string {
  const before = `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`;
  return `${before}(?:${pattern})${before}`;
}
