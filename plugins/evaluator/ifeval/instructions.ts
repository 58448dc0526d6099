// IFEval's 25 instruction ids and the kwargs each takes (Zhou et al. 2023; the
// registry of google-research `instruction_following_eval`). The reference fills a
// missing or out-of-range argument with a random draw; a test set that relied on
// that would score differently on every run, so here every argument an id uses is
// required and checked, and a bad one is an error at its file:line (input.ts).
import { z } from "zod";

/** The reference's two comparison relations. */
export const IfevalRelation = z.enum(["less than", "at least"]);
export type IfevalRelation = z.infer<typeof IfevalRelation>;

const count = z.number().int().min(0);
const positive = z.number().int().min(1);
const text = z.string().min(1);
const none = z.strictObject({});

/** The languages IFEval's own data asks for (its LANGUAGE_CODES); other ISO 639-1 codes are accepted too. */
export const IFEVAL_LANGUAGES: Record<string, string> = {
  en: "English", es: "Spanish", pt: "Portuguese", ar: "Arabic", hi: "Hindi", fr: "French", ru: "Russian", de: "German",
  ja: "Japanese", it: "Italian", bn: "Bengali", uk: "Ukrainian", th: "Thai", ur: "Urdu", ta: "Tamil", te: "Telugu",
  bg: "Bulgarian", ko: "Korean", pl: "Polish", he: "Hebrew", fa: "Persian", vi: "Vietnamese", ne: "Nepali", sw: "Swahili",
  kn: "Kannada", mr: "Marathi", gu: "Gujarati", pa: "Punjabi", ml: "Malayalam", fi: "Finnish",
};

/** kwargs schema per instruction id, exactly the argument names of the reference's build_description. */
export const KWARGS = {
  "keywords:existence": z.strictObject({ keywords: z.array(text).min(1) }),
  "keywords:frequency": z.strictObject({ keyword: text, frequency: count, relation: IfevalRelation }),
  "keywords:forbidden_words": z.strictObject({ forbidden_words: z.array(text).min(1) }),
  // Any single character: the reference counts code points of the lower-cased response.
  "keywords:letter_frequency": z.strictObject({ letter: z.string().refine((s) => [...s].length === 1 && !/\s/u.test(s), "one character, not white space"), let_frequency: count, let_relation: IfevalRelation }),
  "language:response_language": z.strictObject({ language: z.string().regex(/^[a-z]{2}(?:-[a-z]{2})?$/, "an ISO 639-1 code such as 'en'") }),
  "length_constraints:number_sentences": z.strictObject({ num_sentences: count, relation: IfevalRelation }),
  "length_constraints:number_paragraphs": z.strictObject({ num_paragraphs: count }),
  "length_constraints:number_words": z.strictObject({ num_words: count, relation: IfevalRelation }),
  "length_constraints:nth_paragraph_first_word": z
    .strictObject({ num_paragraphs: positive, nth_paragraph: positive, first_word: text })
    .refine((k) => k.nth_paragraph <= k.num_paragraphs, "nth_paragraph must be at most num_paragraphs"),
  "detectable_content:number_placeholders": z.strictObject({ num_placeholders: count }),
  "detectable_content:postscript": z.strictObject({ postscript_marker: text }),
  "detectable_format:number_bullet_lists": z.strictObject({ num_bullets: count }),
  "detectable_format:constrained_response": none,
  "detectable_format:number_highlighted_sections": z.strictObject({ num_highlights: count }),
  "detectable_format:multiple_sections": z.strictObject({ section_spliter: text, num_sections: count }),
  "detectable_format:json_format": none,
  "detectable_format:title": none,
  "combination:two_responses": none,
  "combination:repeat_prompt": z.strictObject({ prompt_to_repeat: text }),
  "startend:end_checker": z.strictObject({ end_phrase: text }),
  "change_case:capital_word_frequency": z.strictObject({ capital_frequency: count, capital_relation: IfevalRelation }),
  "change_case:english_capital": none,
  "change_case:english_lowercase": none,
  "punctuation:no_comma": none,
  "startend:quotation": none,
} as const;

export type InstructionId = keyof typeof KWARGS;
export const INSTRUCTION_IDS = Object.keys(KWARGS) as [InstructionId, ...InstructionId[]];

/** One instruction of a prompt: its id and validated kwargs, typed per id. */
export type Instruction = { [K in InstructionId]: { id: K; kwargs: z.output<(typeof KWARGS)[K]> } }[InstructionId];

/** The answers the reference's constrained_response accepts. */
export const CONSTRAINED_OPTIONS = ["My answer is yes.", "My answer is no.", "My answer is maybe."] as const;

/**
 * An instruction from an id and raw kwargs, or a message saying what is wrong. Keys whose
 * value is null are dropped first: the Hugging Face copy of IFEval gives every kwarg of
 * every id, null where unused.
 */
export function parseInstruction(id: string, raw: unknown): { ok: true; value: Instruction } | { ok: false; message: string } {
  if (!(id in KWARGS)) return { ok: false, message: `unknown instruction id '${id}' (IFEval has ${INSTRUCTION_IDS.length}: ${INSTRUCTION_IDS.join(", ")})` };
  const schema = KWARGS[id as InstructionId];
  const kwargs = raw === null || raw === undefined ? {} : raw;
  if (typeof kwargs !== "object" || Array.isArray(kwargs)) return { ok: false, message: `kwargs of '${id}' must be an object` };
  const present = Object.fromEntries(Object.entries(kwargs).filter(([, v]) => v !== null));
  const r = (schema as z.ZodType).safeParse(present);
  if (!r.success) return { ok: false, message: `kwargs of '${id}': ${r.error.issues.map((i) => `${i.path.join(".") || "(kwargs)"}: ${i.message}`).join("; ")}` };
  if ("relation" in present || "let_relation" in present || "capital_relation" in present) {
    const v = r.data as Record<string, unknown>;
    const [n, rel] = id === "keywords:letter_frequency" ? [v.let_frequency, v.let_relation] : id === "change_case:capital_word_frequency" ? [v.capital_frequency, v.capital_relation] : [v.num_sentences ?? v.num_words ?? v.frequency, v.relation];
    if (rel === "less than" && n === 0) return { ok: false, message: `kwargs of '${id}': 'less than 0' can never hold` };
  }
  return { ok: true, value: { id, kwargs: r.data } as Instruction };
}
