// The `ifeval` semantics, one block per IFEval instruction id, from the behaviour the
// reference implementation documents (its docstrings and its instructions_test.py cases,
// re-written here) and its edge cases: regex keywords, \w+ words, `***` paragraphs,
// unanchored postscripts, Python's strip/isupper, the eight loose versions.
import { describe, expect, test } from "bun:test";
import { INSTRUCTION_IDS, parseInstruction, type Instruction } from "../../plugins/evaluator/ifeval/instructions.ts";
import { countCapitalWords, countSentences, countWords, detectLanguage } from "../../plugins/evaluator/ifeval/nlp.ts";
import { referenceFollows } from "../../plugins/evaluator/ifeval/reference.ts";
import { looseResponses, looseVerdict, strictVerdict } from "../../plugins/evaluator/ifeval/verdict.ts";

function ins(id: string, kwargs: Record<string, unknown> = {}): Instruction {
  const r = parseInstruction(id, kwargs);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}
const follows = (id: string, kwargs: Record<string, unknown>, response: string) => strictVerdict(response, (r) => referenceFollows(ins(id, kwargs), r));
const loose = (id: string, kwargs: Record<string, unknown>, response: string) => looseVerdict(response, (r) => referenceFollows(ins(id, kwargs), r));

type Case = [response: string, kwargs: Record<string, unknown>, expected: boolean];
const CASES: Record<string, Case[]> = {
  "keywords:existence": [
    ["Venice is a city of canals; the gondola glides past the Rialto.", { keywords: ["canal", "gondola"] }, true], // substring: "canals" has "canal"
    ["Venice is a city of bridges.", { keywords: ["canal", "bridges"] }, false],
    ["The GONDOLA waits.", { keywords: ["gondola"] }, true], // case-insensitive
    ["Rialto bridge", { keywords: ["Rialto\\s+bridge"] }, true], // a keyword is a regular expression
  ],
  "keywords:frequency": [
    ["apple, Apple, APPLE", { keyword: "  apple ", frequency: 4, relation: "less than" }, true], // keyword stripped, any case
    ["apple, Apple, APPLE", { keyword: "apple", frequency: 3, relation: "at least" }, true],
    ["pineapples and apples", { keyword: "apple", frequency: 2, relation: "at least" }, true], // substrings count
    ["*apple\n*Apple\n*APPLE", { keyword: "APPLE", frequency: 4, relation: "at least" }, false],
  ],
  "keywords:forbidden_words": [
    ["The empire grew in power quickly.", { forbidden_words: ["HOUSE", "POWER"] }, false],
    ["Generative models use transformers.", { forbidden_words: ["gene", "transform"] }, true], // whole words only (\b)
    ["Ein Gedicht über Äpfel.", { forbidden_words: ["über"] }, false], // \b is Unicode-aware as in Python 3
    ["Überall Äpfel.", { forbidden_words: ["ber"] }, true],
  ],
  "keywords:letter_frequency": [
    ["Tea at ten. Two tarts.", { letter: "T", let_frequency: 5, let_relation: "at least" }, true], // letter lower-cased, text too
    ["qwertyuiop!!aA", { letter: "a", let_frequency: 4, let_relation: "less than" }, true],
    ["qwertyuiop!!aA", { letter: "p", let_frequency: 4, let_relation: "at least" }, false],
    ["#one #two #three #four", { letter: "#", let_frequency: 4, let_relation: "at least" }, true], // any character
    ["#one #two #three", { letter: "#", let_frequency: 4, let_relation: "at least" }, false],
  ],
  "language:response_language": [
    ["This answer is written entirely in plain English words.", { language: "en" }, true],
    ["Ceci est une réponse écrite entièrement en français.", { language: "en" }, false],
    ["Ceci est une réponse écrite entièrement en français.", { language: "fr" }, true],
    ["Habari za asubuhi. Leo ni siku nzuri sana na watoto wanacheza nje.", { language: "sw" }, true],
    ["12345 67890 !!!", { language: "de" }, true], // nothing to detect: the reference counts it as followed
  ],
  "length_constraints:number_sentences": [
    ["One here. Two here! Three here? Four here.", { num_sentences: 4, relation: "less than" }, false],
    ["One here. Two here! Three here? Four here.", { num_sentences: 5, relation: "less than" }, true],
    ["One here. Two here! Three here? Four here.", { num_sentences: 4, relation: "at least" }, true],
    ["Dr. Smith met Mr. Jones at 3.30 today. They talked.", { num_sentences: 3, relation: "less than" }, true], // abbreviations and decimals do not end sentences
    ["- apples\n- pears\n- plums", { num_sentences: 2, relation: "less than" }, true], // a line break is not a sentence end
  ],
  "length_constraints:number_paragraphs": [
    ["\n  first\n  ***\n  second\n  ***\n  third", { num_paragraphs: 3 }, true],
    ["***\nfirst\n***\nsecond\n***\nthird", { num_paragraphs: 3 }, true], // empty first piece not counted
    ["first\n***\nsecond\n***\nthird\n***", { num_paragraphs: 3 }, true], // empty last piece not counted
    ["first\n***\nsecond\n***\n***", { num_paragraphs: 2 }, false], // an empty piece in the middle fails
    ["first\n\nsecond\n\nthird", { num_paragraphs: 3 }, false], // blank lines are not the divider
  ],
  "length_constraints:number_words": [
    ["h3llo w0rld th1s is 6 w0rds.", { num_words: 7, relation: "less than" }, true],
    ["don't stop-now", { num_words: 4, relation: "at least" }, true], // \w+: don, t, stop, now
    ["one two three", { num_words: 3, relation: "less than" }, false],
  ],
  "length_constraints:nth_paragraph_first_word": [
    ["\n  first one\n\n  I second\n\n  third one", { num_paragraphs: 3, nth_paragraph: 2, first_word: "I" }, true],
    ["\n  first one\n\n  I second", { num_paragraphs: 3, nth_paragraph: 2, first_word: "I" }, false],
    ["a\n\nb\n\n\"Really?! yes\"\n\nc\n\nd", { num_paragraphs: 5, nth_paragraph: 3, first_word: "really" }, true], // quotes stripped, stops at punctuation
    ["a\n\nb\n\nRea!lly yes\n\nc\n\nd", { num_paragraphs: 5, nth_paragraph: 3, first_word: "really" }, false],
    ["\n\nfirst\n\nsecond", { num_paragraphs: 2, nth_paragraph: 1, first_word: "first" }, false], // the raw split's first piece is empty
  ],
  "detectable_content:number_placeholders": [
    ["Dear [name], meet me at [place] on [date].", { num_placeholders: 3 }, true],
    ["Dear [name], meet me at [place].", { num_placeholders: 3 }, false],
    ["[] and [ ]", { num_placeholders: 2 }, true], // empty brackets count
    ["[open\nclose]", { num_placeholders: 1 }, false], // not across a line break
  ],
  "detectable_content:postscript": [
    ["Thanks for reading.\n\nP.S. Bring snacks.", { postscript_marker: "P.S." }, true],
    ["Thanks for reading.\n\nP.S. Bring snacks.", { postscript_marker: "PS:" }, false],
    ["It ended well (not on its own line) P.S. the end.", { postscript_marker: "P.S." }, true], // not anchored to a line start
    ["all in lower case\np.p.s what then?", { postscript_marker: "P.P.S" }, true],
    ["Spaces too.\nP. S. between P. and S.", { postscript_marker: "P.S." }, true],
  ],
  "detectable_format:number_bullet_lists": [
    ["Intro:\n* one\n*(no space)two\n* three\nend", { num_bullets: 3 }, true],
    ["Inline *, * not counted:\n  * one\n  * two", { num_bullets: 2 }, true],
    ["- a\n- b\n-c", { num_bullets: 3 }, true], // a dash needs no space
    ["p1\n***\np2\n* only one", { num_bullets: 1 }, true], // *** is not a bullet
    ["* a\n* b", { num_bullets: 3 }, false],
  ],
  "detectable_format:constrained_response": [
    ["\n My answer is no.\n", {}, true],
    ["My answer is maybe. And more text follows here.", {}, true],
    ["My answer is yes. My answer is no.", {}, true], // any option present is enough
    ["my answer is yes.", {}, false], // case-sensitive
  ],
  "detectable_format:number_highlighted_sections": [
    ["type *hello* or **hello** in markdown", { num_highlights: 2 }, true],
    ["*one\n*two*\n*three", { num_highlights: 2 }, false],
    ["*a* and *b* on one line, **c** and **d**", { num_highlights: 4 }, true],
    ["** ** and * *", { num_highlights: 1 }, false], // empty ones do not count
  ],
  "detectable_format:multiple_sections": [
    ["Section 1\nintro\nSection 2\nmore", { section_spliter: "Section", num_sections: 3 }, false],
    ["SECTION 1\nintro\nSECTION 2\nmore", { section_spliter: "SECTION", num_sections: 2 }, true],
    ["section 1\nintro\nsection 2\nmore", { section_spliter: "Section", num_sections: 1 }, false], // case-sensitive
    ["Section1 a Section 2 b Section 3 c", { section_spliter: " Section ", num_sections: 3 }, true], // splitter stripped, spaces optional
  ],
  "detectable_format:json_format": [
    ['```json\n{"a": 1}\n```', {}, true],
    ['```JSON\n[1, 2]\n```', {}, true],
    ['{"a": 1,}', {}, false],
    ["Here it is: {\"a\": 1}", {}, false],
  ],
  "detectable_format:title": [
    ["\n  <<Song of Rain>>\n  drip drop", {}, true],
    ["text first\n<<The title at the end>>", {}, true],
    ["<< >>\nno title", {}, false],
    ["<<not a title\nacross lines>>", {}, false],
  ],
  "combination:two_responses": [
    ["First answer.\n******\nSecond answer.", {}, true],
    ["Same.\n******\nSame.", {}, false],
    ["One.\n******\nTwo.\n******\nThree.", {}, false],
    ["******\nOne\n******\nTwo\n******", {}, true], // empty ends are allowed
    ["******\nOne\n******\n******\nTwo\n******", {}, false], // an empty middle part is not
  ],
  "combination:repeat_prompt": [
    ["Write a limerick. Here goes: there once was...", { prompt_to_repeat: "Write a limerick." }, true],
    ["  write A LIMERICK. ok", { prompt_to_repeat: "Write a limerick." }, true], // stripped, any case
    ["Sure! Write a limerick.", { prompt_to_repeat: "Write a limerick." }, false],
  ],
  "startend:end_checker": [
    ["\n  The answer is 7. Any more questions?\n  ", { end_phrase: "\n  Any more questions?\n  " }, true],
    ['"Quoted, and it ends here. Is there anything else I can help with?"', { end_phrase: "Is there anything else I can help with?" }, true], // quotes stripped
    ["This ends here. Is there anything else I can help with? Bye.", { end_phrase: "Is there anything else I can help with?" }, false],
  ],
  "change_case:capital_word_frequency": [
    ["HERE there are THREE FUlly CAPITAL words.", { capital_frequency: 3, capital_relation: "at least" }, true],
    ["THERE are Four FULLY CAPITAL WORDS. Many Others Are Only Partially So.", { capital_frequency: 5, capital_relation: "less than" }, true],
    ["THERE are Four FULLY CAPITAL WORDS. Many Others Are Only Partially So.", { capital_frequency: 4, capital_relation: "less than" }, false],
    ["NASA's plan", { capital_frequency: 1, capital_relation: "at least" }, true], // 's splits off, NASA counts
    ["DON'T", { capital_frequency: 2, capital_relation: "at least" }, true], // DO + N'T
  ],
  "change_case:english_capital": [
    ["THIS IS AN ENGLISH SENTENCE. EVERY LETTER IS CAPITALIZED!!! AMAZING.", {}, true],
    ["Every Word Is Capitalized.", {}, false],
    ["CECI EST UNE PHRASE ÉCRITE ENTIÈREMENT EN FRANÇAIS AUJOURD'HUI.", {}, false], // upper case but not English
  ],
  "change_case:english_lowercase": [
    ["every letter in this english sentence is lowercase.", {}, true],
    ["Almost every letter is lowercase.", {}, false],
    ["1234", {}, false], // no cased character: str.islower() is false
  ],
  "punctuation:no_comma": [
    ["Short sentences. No commas here.", {}, true],
    ["Since the start, people punctuate.", {}, false],
    ["A fullwidth comma，is not a comma to the reference.", {}, true],
  ],
  "startend:quotation": [
    ['\n  "Wrapped in double quotes entirely."\n  ', {}, true],
    ['"Wrapped here." But not everything.', {}, false],
    ['"', {}, false],
    ["“Curly quotes”", {}, false],
  ],
};

describe("ifeval semantics: every instruction id has cases", () => {
  test("all 25 ids are covered", () => {
    expect(INSTRUCTION_IDS.length).toBe(25);
    expect(INSTRUCTION_IDS.filter((id) => !(id in CASES))).toEqual([]);
  });
  for (const [id, cases] of Object.entries(CASES))
    describe(id, () => {
      for (const [response, kwargs, expected] of cases) test(`${JSON.stringify(response).slice(0, 70)} ${JSON.stringify(kwargs).slice(0, 60)} -> ${expected}`, () => expect(follows(id, kwargs, response)).toBe(expected));
    });
});

describe("strict and loose (evaluation_lib)", () => {
  test("the eight loose versions, in the reference's order", () => {
    expect(looseResponses("Sure:\n*a* b\nBye")).toEqual(["Sure:\n*a* b\nBye", "Sure:\na b\nBye", "*a* b\nBye", "Sure:\n*a* b", "*a* b", "a b\nBye", "Sure:\na b", "a b"]);
  });
  test("a response of white space follows nothing, in either mode", () => {
    expect(follows("punctuation:no_comma", {}, "  \n ")).toBe(false);
    expect(loose("punctuation:no_comma", {}, "  \n ")).toBe(false);
  });
  test("loose passes when dropping an opening line makes it follow", () => {
    const r = 'Here is your answer:\n"All of it quoted."';
    expect(follows("startend:quotation", {}, r)).toBe(false);
    expect(loose("startend:quotation", {}, r)).toBe(true);
  });
  test("loose passes when removing asterisks makes it follow", () => {
    const r = "**My answer is yes.**";
    expect(follows("startend:end_checker", { end_phrase: "yes." }, r)).toBe(false);
    expect(loose("startend:end_checker", { end_phrase: "yes." }, r)).toBe(true);
  });
});

describe("the library stand-ins", () => {
  test("word count is Python's \\w+ (Unicode letters and digits, underscore; marks split)", () => {
    expect(countWords("snake_case and café 42")).toBe(4);
    expect(countWords("हिंदी")).toBe(2); // the vowel sign is a mark, not \w in Python
  });
  test("sentences", () => {
    expect(countSentences("Hello world. This is a test.")).toBe(2);
    expect(countSentences("e.g. this one is fine. Yes.")).toBe(2);
    expect(countSentences("No terminal punctuation")).toBe(1);
  });
  test("all-capital tokens as word_tokenize splits them", () => {
    expect(countCapitalWords("AI-DRIVEN TOOLS, (NASA) and U.S.A.")).toBe(4);
    expect(countCapitalWords("I CANNOT")).toBe(3); // "I", "CAN", "NOT"
  });
  test("languages IFEval asks for", () => {
    const samples: Record<string, string> = {
      en: "The weather is lovely today and we are going for a long walk.",
      de: "Das Wetter ist heute schön und wir gehen lange spazieren.",
      es: "El tiempo está precioso hoy y vamos a dar un largo paseo.",
      pt: "O tempo está lindo hoje e vamos dar um longo passeio.",
      ru: "Сегодня прекрасная погода, и мы идём на долгую прогулку.",
      uk: "Сьогодні чудова погода, і ми йдемо на довгу прогулянку.",
      ja: "今日はとても良い天気なので、長い散歩に行きます。",
      ko: "오늘은 날씨가 정말 좋아서 우리는 오래 산책을 갑니다.",
      hi: "आज मौसम बहुत अच्छा है और हम लंबी सैर पर जा रहे हैं।",
      ne: "आज मौसम धेरै राम्रो छ र हामी लामो यात्रामा जाँदैछौं।",
      fi: "Tänään on kaunis sää ja lähdemme pitkälle kävelylle.",
      pl: "Dzisiaj jest piękna pogoda i idziemy na długi spacer.",
      vi: "Hôm nay thời tiết rất đẹp và chúng tôi đi dạo một quãng dài.",
      fa: "امروز هوا بسیار خوب است و ما به پیاده روی طولانی می رویم.",
      th: "วันนี้อากาศดีมากและเรากำลังจะไปเดินเล่นนานๆ",
      bg: "Днес времето е прекрасно и отиваме на дълга разходка.",
      mr: "आज हवामान खूप छान आहे आणि आम्ही लांब फिरायला जात आहोत.",
      ur: "آج موسم بہت اچھا ہے اور ہم لمبی سیر پر جا رہے ہیں۔",
      ar: "الطقس جميل اليوم ونحن ذاهبون في نزهة طويلة.",
      sw: "Hali ya hewa ni nzuri leo na tunaenda matembezi marefu.",
      it: "Il tempo è bellissimo oggi e andiamo a fare una lunga passeggiata.",
      fr: "Il fait très beau aujourd'hui et nous partons pour une longue promenade.",
      he: "מזג האוויר נפלא היום ואנחנו יוצאים לטיול ארוך.",
    };
    for (const [lang, text] of Object.entries(samples)) expect([lang, detectLanguage(text)]).toEqual([lang, lang]);
    expect(detectLanguage("!!! 123")).toBeNull();
  });
});
