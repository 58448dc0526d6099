// The `selftune` semantics (IFEval instructions as the project's own checks) and every
// difference from the `ifeval` semantics that specs/evaluation.md §8 lists: each row is
// the spec's example, judged both ways.
import { describe, expect, test } from "bun:test";
import { runCheck } from "../../plugins/evaluator/checks/index.ts";
import { INSTRUCTION_IDS, parseInstruction } from "../../plugins/evaluator/ifeval/instructions.ts";
import { ifevalCheck, type Semantics } from "../../plugins/evaluator/ifeval/score.ts";
import { selftuneChecks } from "../../plugins/evaluator/ifeval/selftune.ts";

function verdict(semantics: Semantics, id: string, kwargs: Record<string, unknown>, response: string, mode: "strict" | "loose" = "strict"): boolean {
  const p = parseInstruction(id, kwargs);
  if (!p.ok) throw new Error(p.message);
  return runCheck(response, ifevalCheck(p.value, semantics), mode).passed;
}

// [id, kwargs, response, ifeval verdict, selftune verdict]
type Diff = [string, Record<string, unknown>, string, boolean, boolean];
const DIFFERENCES: Diff[] = [
  ["keywords:existence", { keywords: ["canal"] }, "Venice has many canals.", true, false],
  ["keywords:frequency", { keyword: "apple", frequency: 2, relation: "at least" }, "A pineapple and an apple.", true, false],
  ["keywords:forbidden_words", { forbidden_words: ["c.t"] }, "The cat sat.", false, true],
  ["language:response_language", { language: "de" }, "12345 67890", true, false],
  ["length_constraints:number_sentences", { num_sentences: 2, relation: "at least" }, "Introduction\n\nThe body follows here.", false, true],
  ["length_constraints:number_paragraphs", { num_paragraphs: 2 }, "one part *** another part", true, false],
  ["length_constraints:number_words", { num_words: 3, relation: "at least" }, "don't stop", true, false],
  ["length_constraints:nth_paragraph_first_word", { num_paragraphs: 2, nth_paragraph: 2, first_word: "second" }, "first\n \nsecond", false, true],
  ["detectable_content:postscript", { postscript_marker: "P.S." }, "The note at the end (see the P.S. below) matters.", true, false],
  ["detectable_format:number_bullet_lists", { num_bullets: 1 }, "Cold.\n-5 degrees at night.", true, false],
  ["detectable_format:constrained_response", {}, "My answer is yes. My answer is no.", true, false],
  ["detectable_format:multiple_sections", { section_spliter: "Section", num_sections: 1 }, "A CrossSection 3 view.", true, false],
  ["detectable_format:json_format", {}, '```javascript\n{"a": 1}\n```', false, true],
  ["combination:two_responses", {}, "******\nFirst.\n******\nSecond.", true, false],
  ["startend:end_checker", { end_phrase: "Any other questions?" }, "“Thanks. Any other questions?”", false, true],
  ["change_case:capital_word_frequency", { capital_frequency: 2, capital_relation: "at least" }, "DON'T", true, false],
  ["punctuation:no_comma", {}, "A fullwidth comma，here.", true, false],
  ["startend:quotation", {}, "“Curly quotes around it all.”", false, true],
];

describe("every difference between the semantics, as specs/evaluation.md lists it", () => {
  for (const [id, kwargs, response, ifeval, selftune] of DIFFERENCES)
    test(`${id}: ${JSON.stringify(response)}`, () => {
      expect(verdict("ifeval", id, kwargs, response)).toBe(ifeval);
      expect(verdict("selftune", id, kwargs, response)).toBe(selftune);
    });
});

// A response that follows and one that does not, per id: the mapping onto the checks holds.
const AGREE: [string, Record<string, unknown>, string, string][] = [
  ["keywords:existence", { keywords: ["river", "Mona Lisa"] }, "The river runs past the Mona Lisa.", "Only the river."],
  ["keywords:frequency", { keyword: "tea", frequency: 2, relation: "less than" }, "Tea is nice.", "Tea, tea, tea."],
  ["keywords:forbidden_words", { forbidden_words: ["war"] }, "A story of peace.", "A story of war."],
  ["keywords:letter_frequency", { letter: "z", let_frequency: 2, let_relation: "at least" }, "Zebras zigzag.", "Horses run."],
  ["language:response_language", { language: "fr" }, "Le chat est sur la table et il dort depuis le matin.", "The cat is on the table and it has slept since morning."],
  ["length_constraints:number_sentences", { num_sentences: 2, relation: "less than" }, "Just one sentence here.", "The first one. The second one. The third one."],
  ["length_constraints:number_paragraphs", { num_paragraphs: 2 }, "first part\n***\nsecond part", "only one part"],
  ["length_constraints:number_words", { num_words: 5, relation: "less than" }, "Four words right here", "This one has six words in it"],
  ["length_constraints:nth_paragraph_first_word", { num_paragraphs: 2, nth_paragraph: 2, first_word: "then" }, "First this.\n\nThen that.", "First this.\n\nAfter that."],
  ["detectable_content:number_placeholders", { num_placeholders: 2 }, "Dear [name] of [city]", "Dear [name]"],
  ["detectable_content:postscript", { postscript_marker: "P.P.S" }, "Bye.\nP.P.S. One more thing.", "Bye."],
  ["detectable_format:number_bullet_lists", { num_bullets: 2 }, "* one\n* two", "* one\n* two\n* three"],
  ["detectable_format:constrained_response", {}, "My answer is maybe.", "Perhaps."],
  ["detectable_format:number_highlighted_sections", { num_highlights: 2 }, "*one* and *two*", "*one* only"],
  ["detectable_format:multiple_sections", { section_spliter: "SECTION", num_sections: 2 }, "SECTION 1\na\nSECTION 2\nb", "SECTION 1\na"],
  ["detectable_format:json_format", {}, '{"ok": true}', "ok: true"],
  ["detectable_format:title", {}, "<<A Title>>\nText.", "A Title\nText."],
  ["combination:two_responses", {}, "One.\n******\nTwo.", "One."],
  ["combination:repeat_prompt", { prompt_to_repeat: "Name a colour." }, "Name a colour. Blue.", "Blue."],
  ["startend:end_checker", { end_phrase: "Is there anything else I can help with?" }, "Done. Is there anything else I can help with?", "Done."],
  ["change_case:capital_word_frequency", { capital_frequency: 2, capital_relation: "at least" }, "VERY LOUD words", "quiet words"],
  ["change_case:english_capital", {}, "THIS IS WRITTEN IN CAPITAL LETTERS ONLY AND IN ENGLISH.", "This is not all in capitals and is in English."],
  ["change_case:english_lowercase", {}, "this is written in lower case letters only and in english.", "This Has Capitals though it is in English."],
  ["punctuation:no_comma", {}, "No commas at all.", "Yes, a comma."],
  ["startend:quotation", {}, '"All quoted."', "Not quoted."],
];

describe("both semantics agree on plain cases of every id", () => {
  test("all 25 ids", () => expect(INSTRUCTION_IDS.filter((id) => !AGREE.some((a) => a[0] === id))).toEqual([]));
  for (const [id, kwargs, yes, no] of AGREE)
    test(id, () => {
      for (const s of ["ifeval", "selftune"] as const) {
        expect([s, verdict(s, id, kwargs, yes)]).toEqual([s, true]);
        expect([s, verdict(s, id, kwargs, no)]).toEqual([s, false]);
      }
    });
});

describe("the mapping", () => {
  test("'less than n' is 'at most n-1'", () => {
    const p = parseInstruction("length_constraints:number_words", { num_words: 10, relation: "less than" });
    expect(p.ok && selftuneChecks(p.value)).toEqual([{ type: "word_count", relation: "at_most", n: 9 }]);
  });
  test("english_capital is upper case and English", () => {
    const p = parseInstruction("change_case:english_capital", {});
    expect(p.ok && selftuneChecks(p.value).map((c) => c.type)).toEqual(["uppercase", "response_language"]);
  });
  test("a language the selftune checks cannot judge is an error, not a pass", () => {
    const p = parseInstruction("language:response_language", { language: "sv" });
    expect(() => p.ok && ifevalCheck(p.value, "selftune")).toThrow(/language 'sv'/);
    expect(p.ok && ifevalCheck(p.value, "ifeval").semantics).toBe("ifeval");
  });
  test("every IFEval language has a selftune check", () => {
    for (const language of ["en", "es", "pt", "ar", "hi", "fr", "ru", "de", "ja", "it", "bn", "uk", "th", "ur", "ta", "te", "bg", "ko", "pl", "he", "fa", "vi", "ne", "sw", "kn", "mr", "gu", "pa", "ml", "fi"]) {
      const p = parseInstruction("language:response_language", { language });
      expect(() => p.ok && ifevalCheck(p.value, "selftune")).not.toThrow();
    }
  });
  test("loose mode uses IFEval's versions under either semantics", () => {
    expect(verdict("selftune", "startend:quotation", {}, 'Here it is:\n"Quoted."', "strict")).toBe(false);
    expect(verdict("selftune", "startend:quotation", {}, 'Here it is:\n"Quoted."', "loose")).toBe(true);
  });
});
