// Which language a response is written in, for IFEval's response_language. No
// language-identification model is available offline, so this is deliberately
// simple and limited to what it can tell reliably: languages with their own
// script by the share of letters in that script, and a few Latin-script
// languages by their most frequent function words. Unsupported codes are
// rejected by the check spec (LANGUAGES), not guessed.

const SCRIPTS: Record<string, RegExp> = {
  ar: /\p{Script=Arabic}/u,
  fa: /\p{Script=Arabic}/u,
  ur: /\p{Script=Arabic}/u,
  he: /\p{Script=Hebrew}/u,
  el: /\p{Script=Greek}/u,
  ru: /\p{Script=Cyrillic}/u,
  uk: /\p{Script=Cyrillic}/u,
  bg: /\p{Script=Cyrillic}/u,
  hi: /\p{Script=Devanagari}/u,
  mr: /\p{Script=Devanagari}/u,
  ne: /\p{Script=Devanagari}/u,
  bn: /\p{Script=Bengali}/u,
  ta: /\p{Script=Tamil}/u,
  te: /\p{Script=Telugu}/u,
  gu: /\p{Script=Gujarati}/u,
  kn: /\p{Script=Kannada}/u,
  ml: /\p{Script=Malayalam}/u,
  pa: /\p{Script=Gurmukhi}/u,
  th: /\p{Script=Thai}/u,
  ko: /\p{Script=Hangul}/u,
  ja: /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u,
  zh: /\p{Script=Han}/u,
};

// The most frequent short function words of each language (from general knowledge of
// the languages; overlaps between them are left out where they would mislead).
export const FUNCTION_WORDS: Record<string, string[]> = {
  en: ["the", "and", "is", "of", "to", "in", "that", "it", "was", "for", "with", "are", "this", "you", "not", "be", "have", "on"],
  de: ["der", "die", "und", "ist", "nicht", "das", "zu", "ich", "mit", "sich", "den", "auf", "ein", "eine", "auch", "es", "von", "dem"],
  fr: ["le", "la", "les", "et", "est", "des", "une", "un", "du", "que", "pas", "pour", "dans", "qui", "sur", "au", "avec", "il"],
  es: ["el", "la", "los", "las", "y", "es", "que", "del", "una", "por", "con", "para", "como", "pero", "muy", "está", "se", "su"],
  it: ["il", "che", "di", "è", "una", "della", "per", "non", "sono", "gli", "con", "del", "anche", "più", "questo", "nel", "lo", "ma"],
  pt: ["o", "os", "que", "não", "uma", "do", "da", "em", "para", "com", "é", "um", "dos", "mas", "se", "ao", "mais", "como"],
  nl: ["de", "het", "een", "en", "van", "ik", "niet", "dat", "is", "op", "te", "zijn", "met", "voor", "maar", "ook", "er", "wat"],
  pl: ["i", "w", "nie", "na", "się", "z", "jest", "że", "jak", "ale", "od", "po", "tak", "dla", "przez", "jako", "czy", "oraz"],
  fi: ["ja", "on", "ei", "että", "oli", "kun", "mutta", "hän", "ovat", "tai", "myös", "kuin", "niin", "tämä", "ole", "jos", "mitä", "joka"],
  sw: ["na", "ya", "wa", "kwa", "ni", "za", "katika", "cha", "hii", "kuwa", "au", "lakini", "sana", "yake", "wao", "hiyo", "pia", "kama"],
  vi: ["và", "của", "là", "có", "không", "được", "những", "các", "một", "trong", "cho", "với", "này", "người", "đã", "để", "khi", "thì"],
};

export const LANGUAGES = [...Object.keys(SCRIPTS), ...Object.keys(FUNCTION_WORDS)] as const;

export function languageScore(text: string, lang: string): { ok: boolean; detail: string } {
  const letters = [...text].filter((ch) => /\p{L}/u.test(ch));
  if (letters.length === 0) return { ok: false, detail: "no letters" };
  const script = SCRIPTS[lang];
  if (script) {
    const share = letters.filter((ch) => script.test(ch)).length / letters.length;
    // Japanese is told from Chinese by kana, which Chinese never uses.
    const kana = letters.some((ch) => /[\p{Script=Hiragana}\p{Script=Katakana}]/u.test(ch));
    const ok = share >= 0.5 && (lang === "zh" ? !kana : lang === "ja" ? kana : true);
    return { ok, detail: `${(100 * share).toFixed(0)}% of letters in the ${lang} script${lang === "ja" || lang === "zh" ? (kana ? ", with kana" : ", no kana") : ""}` };
  }
  const latin = letters.filter((ch) => /\p{Script=Latin}/u.test(ch)).length / letters.length;
  const words = text.toLowerCase().match(/\p{L}+/gu) ?? [];
  const hits = Object.fromEntries(Object.entries(FUNCTION_WORDS).map(([l, list]) => [l, words.filter((w) => list.includes(w)).length]));
  const best = Object.entries(hits).sort((a, b) => b[1] - a[1])[0]!;
  const mine = hits[lang] ?? 0;
  const ok = latin >= 0.8 && mine > 0 && mine === best[1] && Object.values(hits).filter((h) => h === mine).length === 1;
  return { ok, detail: `function words: ${Object.entries(hits).filter(([, h]) => h > 0).map(([l, h]) => `${l} ${h}`).join(", ") || "none"}` };
}
