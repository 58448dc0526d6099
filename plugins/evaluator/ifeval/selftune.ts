// The `selftune` semantics: each IFEval instruction as the project's own checks
// (plugins/evaluator/checks, specs/evaluation.md §3), which are stricter in places —
// whole-word keywords, a postscript at a line start, exactly one constrained answer.
// An instruction the checks cannot express is an error, not a silent pass.
import { LANGUAGES } from "../checks/language.ts";
import type { CheckSpec, Relation } from "../checks/spec.ts";
import { CONSTRAINED_OPTIONS, type IfevalRelation, type Instruction } from "./instructions.ts";

/** "less than n" is "at most n-1" on counts; instructions.ts refuses "less than 0". */
function rel(relation: IfevalRelation, n: number): { relation: Relation; n: number } {
  return relation === "less than" ? { relation: "at_most", n: n - 1 } : { relation: "at_least", n };
}

export class UnsupportedInstruction extends Error {}

/** The checks that must all pass for the instruction to count as followed. */
export function selftuneChecks(ins: Instruction): CheckSpec[] {
  switch (ins.id) {
    case "keywords:existence":
      return [{ type: "keywords_include", keywords: ins.kwargs.keywords }];
    case "keywords:frequency":
      return [{ type: "keyword_frequency", keyword: ins.kwargs.keyword, ...rel(ins.kwargs.relation, ins.kwargs.frequency) }];
    case "keywords:forbidden_words":
      return [{ type: "keywords_exclude", keywords: ins.kwargs.forbidden_words }];
    case "keywords:letter_frequency":
      return [{ type: "letter_frequency", letter: ins.kwargs.letter, ...rel(ins.kwargs.let_relation, ins.kwargs.let_frequency) }];
    case "language:response_language": {
      const language = ins.kwargs.language;
      if (!(LANGUAGES as readonly string[]).includes(language)) throw new UnsupportedInstruction(`language '${language}' is not one the selftune response_language check knows (${LANGUAGES.join(" ")}); use semantics: ifeval`);
      return [{ type: "response_language", language: language as (typeof LANGUAGES)[number] }];
    }
    case "length_constraints:number_sentences":
      return [{ type: "sentence_count", ...rel(ins.kwargs.relation, ins.kwargs.num_sentences) }];
    case "length_constraints:number_paragraphs":
      return [{ type: "paragraph_count", relation: "exactly", n: ins.kwargs.num_paragraphs, separator: "***" }];
    case "length_constraints:number_words":
      return [{ type: "word_count", ...rel(ins.kwargs.relation, ins.kwargs.num_words) }];
    case "length_constraints:nth_paragraph_first_word":
      return [{ type: "nth_paragraph_first_word", paragraphs: ins.kwargs.num_paragraphs, nth: ins.kwargs.nth_paragraph, word: ins.kwargs.first_word }];
    case "detectable_content:number_placeholders":
      return [{ type: "placeholders", n: ins.kwargs.num_placeholders }];
    case "detectable_content:postscript":
      return [{ type: "postscript", marker: ins.kwargs.postscript_marker.trim() }];
    case "detectable_format:number_bullet_lists":
      return [{ type: "bullet_list", relation: "exactly", n: ins.kwargs.num_bullets }];
    case "detectable_format:constrained_response":
      return [{ type: "constrained_response", options: [...CONSTRAINED_OPTIONS] }];
    case "detectable_format:number_highlighted_sections":
      return [{ type: "highlighted_sections", n: ins.kwargs.num_highlights }];
    case "detectable_format:multiple_sections":
      return [{ type: "sections", splitter: ins.kwargs.section_spliter.trim(), n: ins.kwargs.num_sections }];
    case "detectable_format:json_format":
      return [{ type: "json_format" }];
    case "detectable_format:title":
      return [{ type: "title" }];
    case "combination:two_responses":
      return [{ type: "two_responses" }];
    case "combination:repeat_prompt":
      return [{ type: "repeat_prompt", prompt: ins.kwargs.prompt_to_repeat }];
    case "startend:end_checker":
      return [{ type: "ends_with", phrase: ins.kwargs.end_phrase.trim(), caseSensitive: false }];
    case "change_case:capital_word_frequency":
      return [{ type: "capital_word_frequency", ...rel(ins.kwargs.capital_relation, ins.kwargs.capital_frequency) }];
    case "change_case:english_capital":
      return [{ type: "uppercase" }, { type: "response_language", language: "en" }];
    case "change_case:english_lowercase":
      return [{ type: "lowercase" }, { type: "response_language", language: "en" }];
    case "punctuation:no_comma":
      return [{ type: "no_commas" }];
    case "startend:quotation":
      return [{ type: "quotation" }];
  }
}
