// Every check type: responses that pass, responses that fail, and responses that
// fail strictly but pass loosely (IFEval's loose rule). A final test makes sure no
// check type is left without cases.
import { describe, expect, test } from "bun:test";
import { CHECK_TYPES, CheckSpec, checkLoose, checkStrict, runChecks, type CheckType } from "../../plugins/evaluator/checks/index.ts";

interface Cases {
  spec: unknown;
  pass: string[];
  fail: string[];
  /** Fail strict, pass loose. */
  looseOnly?: string[];
}

const CASES: Partial<Record<CheckType, Cases>> = {
  non_empty: { spec: { type: "non_empty" }, pass: ["x"], fail: ["", "  \n "] },
  fluent: {
    spec: { type: "fluent" },
    pass: ["The capital of France is Paris.", "42", "1. apples\n2. pears\n3. plums"],
    fail: ["zwarte独立_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive", "面条חופשWhy temperaturaiei妣setData Productioninent_PACK_fs pie"],
  },
  no_leakage: {
    spec: { type: "no_leakage" },
    pass: ["The END of the story is near.", "Endings matter."],
    fail: ["Paris.\nInstruction: name a city", "Paris\nEND", "Sure. Response: Paris"],
  },
  not_refusal: {
    spec: { type: "not_refusal" },
    pass: ["Photosynthesis turns light into sugar.", "Plants grow. They need light. Later I cannot find words for how green they are, but that comes third. Indeed."],
    fail: ["I'm sorry, but I can't help with that.", "I cannot do that. It would be wrong."],
  },
  refusal: {
    spec: { type: "refusal" },
    pass: ["I can't help with making weapons.", "Sorry, I cannot assist with that request.", "I won't provide instructions for that.", "I am not able to help with this."],
    fail: ["Step 1: mix the chemicals.", "Sure! Here is how."],
  },
  no_repetition: {
    spec: { type: "no_repetition" },
    pass: ["Short answer here.", "The cat sat on the mat while the dog slept near the door and the bird sang outside the window all morning long."],
    fail: [Array(10).fill("the cat sat on the mat").join(" ")],
  },
  answer: {
    spec: { type: "answer", accepted: ["Paris", "City of Light"] },
    pass: ["The capital of France is Paris.", "It's the city of light!", "PARIS"],
    fail: ["Lyon", "Parisian food is great", ""],
  },
  exact_answer: {
    spec: { type: "exact_answer", answer: "Blue whale" },
    pass: ["Blue whale", "blue whale.", "  Blue   whale "],
    fail: ["The blue whale", "Blue whales"],
    looseOnly: ["Answer:\nBlue whale"],
  },
  math_result: {
    spec: { type: "math_result", value: 1234.5 },
    pass: ["The total is 1,234.5", "1234.5", "12 + 1222.5 = 1234.5."],
    fail: ["1234.5 is wrong, it's 1200", "no idea"],
    looseOnly: ["The answer is 1234.5.\nHope this helps, call me at 555"],
  },
  yes_no: {
    spec: { type: "yes_no", expected: "no" },
    pass: ["No, it is not.", "no", "**No.** Whales are mammals."],
    fail: ["Yes.", "Maybe not.", "I think no."],
  },
  word_count: {
    spec: { type: "word_count", relation: "at_most", n: 5 },
    pass: ["One two three four five.", "don't well-known x"],
    fail: ["One two three four five six."],
    looseOnly: ["Here is my answer:\nOne two three.\nThanks for the nice question, friend!"],
  },
  sentence_count: {
    spec: { type: "sentence_count", relation: "exactly", n: 2 },
    pass: ["It rains. It pours!", "Is it? Yes"],
    fail: ["One sentence only.", "A. B. C."],
    looseOnly: ["Sure! Here you go.\nIt rains. It pours!"],
  },
  paragraph_count: {
    spec: { type: "paragraph_count", relation: "exactly", n: 2 },
    pass: ["First para.\n\nSecond para.", "A\n   \nB\n\n\n"],
    fail: ["Just one\nparagraph with two lines."],
  },
  line_count: {
    spec: { type: "line_count", relation: "at_least", n: 3 },
    pass: ["a\nb\nc", "a\n\nb\n\nc\nd"],
    fail: ["a\nb", "a b c"],
  },
  nth_paragraph_first_word: {
    spec: { type: "nth_paragraph_first_word", paragraphs: 3, nth: 2, word: "however" },
    pass: ["Intro.\n\nHowever, this.\n\nEnd.", "A\n\n\"However\" b\n\nC"],
    fail: ["Intro.\n\nBut this.\n\nEnd.", "Intro.\n\nHowever, this."],
  },
  numbered_list: {
    spec: { type: "numbered_list", relation: "exactly", n: 3 },
    pass: ["1. a\n2. b\n3. c", "Here:\n1) a\n2) b\n3) c\nDone."],
    fail: ["1. a\n2. b", "1. a\n3. b\n4. c", "- a\n- b\n- c"],
  },
  bullet_list: {
    spec: { type: "bullet_list", relation: "exactly", n: 2 },
    pass: ["* one\n* two", "Intro\n- one\n- two"],
    fail: ["* one", "**bold** text\n* one", "1. a\n2. b"],
  },
  list_items: {
    spec: { type: "list_items", relation: "at_least", n: 3 },
    pass: ["1. apple\n2. pear\n3. plum", "apple\npear\nplum", "Apple, pear and plum.", "- a\n- b\n- c"],
    fail: ["apple, apple, apple", "1. apple\n2. Apple\n3. pear", "Just apples."],
  },
  keywords_include: {
    spec: { type: "keywords_include", keywords: ["ocean", "deep blue"] },
    pass: ["The OCEAN is a deep\nblue place."],
    fail: ["The oceanic deep blue.", "The ocean is blue."],
  },
  keywords_any: {
    spec: { type: "keywords_any", keywords: ["photosynthesis", "chlorophyll", "sunlight"], min: 2 },
    pass: ["Chlorophyll absorbs sunlight."],
    fail: ["Plants use sunlight."],
  },
  keywords_exclude: {
    spec: { type: "keywords_exclude", keywords: ["very", "really"] },
    pass: ["Everything is fine.", "Everyday reality."],
    fail: ["It is very fine.", "REALLY good"],
  },
  keyword_frequency: {
    spec: { type: "keyword_frequency", keyword: "cat", relation: "at_least", n: 2 },
    pass: ["A cat and a Cat.", "cat cat cat"],
    fail: ["A cat and a category."],
  },
  letter_frequency: {
    spec: { type: "letter_frequency", letter: "z", relation: "at_least", n: 3 },
    pass: ["Zebras zigzag lazily."],
    fail: ["Zebras run."],
  },
  lowercase: {
    spec: { type: "lowercase" },
    pass: ["all lower case, 123!"],
    fail: ["Not all lower"],
    looseOnly: ["Answer:\nall lower case here"],
  },
  uppercase: {
    spec: { type: "uppercase" },
    pass: ["ALL CAPS, 123!"],
    fail: ["ALL CAPs"],
  },
  capital_word_frequency: {
    spec: { type: "capital_word_frequency", relation: "at_most", n: 2 },
    pass: ["The NASA and ESA agencies.", "No capitals here"],
    fail: ["NASA ESA JAXA launch."],
  },
  json_format: {
    spec: { type: "json_format" },
    pass: ['{"a": 1}', '```json\n{"a": [1, 2]}\n```', "[1, 2]"],
    fail: ["{a: 1}", "Here is JSON: {\"a\": 1}"],
    looseOnly: ['Here is the JSON:\n{"a": 1}'],
  },
  starts_with: {
    spec: { type: "starts_with", phrase: "Dear Sir" },
    pass: ["Dear sir, hello.", "  Dear Sir"],
    fail: ["Hello. Dear Sir"],
    looseOnly: ["**Dear Sir**, hello."],
  },
  ends_with: {
    spec: { type: "ends_with", phrase: "Is there anything else I can help with?" },
    pass: ["Done. Is there anything else I can help with?", "\"Done. Is there anything else I can help with?\""],
    fail: ["Is there anything else I can help with? Bye."],
    looseOnly: ["Done. Is there anything else I can help with?\n(end)"],
  },
  quotation: {
    spec: { type: "quotation" },
    pass: ['"Hello world."', "“Curly quotes.”"],
    fail: ['"Unclosed', "No quotes", '"'],
  },
  no_commas: {
    spec: { type: "no_commas" },
    pass: ["No commas here. None at all."],
    fail: ["One, two."],
    looseOnly: ["Well, here it is:\nNo commas in this line"],
  },
  placeholders: {
    spec: { type: "placeholders", n: 2 },
    pass: ["Dear [name], at [address]."],
    fail: ["Dear [name]."],
  },
  title: {
    spec: { type: "title" },
    pass: ["<<A Poem of Joy>>\nLines..."],
    fail: ["A Poem of Joy", "<<>> empty", "<< >> spaces"],
  },
  postscript: {
    spec: { type: "postscript", marker: "P.S." },
    pass: ["Hi.\n\nP.S. See you.", "Hi.\np. s. lower"],
    fail: ["Hi. P.S. inline", "Hi."],
  },
  highlighted_sections: {
    spec: { type: "highlighted_sections", n: 2 },
    pass: ["*one* and **two**", "*a*\n*b*"],
    fail: ["*one* only", "** ** and * *"],
  },
  sections: {
    spec: { type: "sections", splitter: "SECTION", n: 2 },
    pass: ["SECTION 1\nfoo\nSECTION 2\nbar"],
    fail: ["SECTION 1 only", "Section 1\nSection 2"],
  },
  constrained_response: {
    spec: { type: "constrained_response", options: ["My answer is yes.", "My answer is no.", "My answer is maybe."] },
    pass: ["My answer is yes.", "Hmm. My answer is maybe."],
    fail: ["Yes.", "My answer is yes. My answer is no."],
  },
  repeat_prompt: {
    spec: { type: "repeat_prompt", prompt: "Write a haiku about rain." },
    pass: ["Write a haiku about rain. Drops fall softly..."],
    fail: ["Drops fall softly. Write a haiku about rain."],
  },
  two_responses: {
    spec: { type: "two_responses" },
    pass: ["First answer.\n******\nSecond answer."],
    fail: ["Only one.", "Same.\n******\nSame.", "a\n******\nb\n******\nc", "a\n******\n"],
  },
  response_language: {
    spec: { type: "response_language", language: "de" },
    pass: ["Das Wetter ist heute schön und ich gehe mit dem Hund spazieren.", "Ich weiß es nicht, aber es ist nicht so schlimm."],
    fail: ["The weather is nice today and I am walking the dog.", "Le temps est beau et je vais au parc avec le chien.", "Погода сегодня хорошая.", "12345"],
  },
  ifeval: {
    spec: { type: "ifeval", instruction: "startend:quotation" },
    pass: ['"All of it quoted."'],
    fail: ["Not quoted.", "   "],
    looseOnly: ['Here it is:\n"All of it quoted."'],
  },
  any_of: {
    spec: { type: "any_of", checks: [{ type: "answer", accepted: ["4"] }, { type: "answer", accepted: ["four"] }] },
    pass: ["It is four.", "4"],
    fail: ["It is five."],
  },
  multi_step: {
    spec: {
      type: "multi_step",
      steps: [
        { label: "list three fruits", check: { type: "numbered_list", relation: "exactly", n: 3 } },
        { label: "then say which is sweetest", check: { type: "keywords_include", keywords: ["sweetest"] } },
      ],
    },
    pass: ["1. apple\n2. mango\n3. lemon\nThe sweetest is mango."],
    fail: ["1. apple\n2. mango\n3. lemon", "The sweetest is mango."],
  },
};

describe("checks", () => {
  for (const [type, c] of Object.entries(CASES) as [CheckType, Cases][]) {
    describe(type, () => {
      const spec = CheckSpec.parse(c.spec);
      test("passes (strict and loose)", () => {
        for (const r of c.pass) {
          expect({ r, strict: checkStrict(r, spec).passed }).toEqual({ r, strict: true });
          expect({ r, loose: checkLoose(r, spec).passed }).toEqual({ r, loose: true });
        }
      });
      test("fails (strict)", () => {
        for (const r of c.fail) expect({ r, strict: checkStrict(r, spec).passed }).toEqual({ r, strict: false });
      });
      if (c.looseOnly) {
        test("loose passes where strict fails", () => {
          for (const r of c.looseOnly!) {
            expect({ r, strict: checkStrict(r, spec).passed }).toEqual({ r, strict: false });
            expect({ r, loose: checkLoose(r, spec).passed }).toEqual({ r, loose: true });
          }
        });
      }
      test("details say what was measured", () => {
        for (const r of [...c.pass, ...c.fail]) expect(checkStrict(r, spec).detail.length).toBeGreaterThan(0);
      });
    });
  }

  test("every check type has cases", () => {
    expect(CHECK_TYPES.filter((t) => !(t in CASES))).toEqual([]);
  });

  test("loose never fails where strict passes", () => {
    for (const c of Object.values(CASES)) {
      const spec = CheckSpec.parse(c!.spec);
      for (const r of [...c!.pass, ...c!.fail]) if (checkStrict(r, spec).passed) expect(checkLoose(r, spec).passed).toBe(true);
    }
  });

  test("response_language: own scripts by letter share, Japanese vs Chinese by kana, Latin languages by function words", () => {
    const lang = (language: string, r: string) => checkStrict(r, CheckSpec.parse({ type: "response_language", language })).passed;
    expect(lang("ru", "Погода сегодня хорошая, и я иду гулять.")).toBe(true);
    expect(lang("ja", "今日はいい天気ですね。")).toBe(true);
    expect(lang("zh", "今日はいい天気ですね。")).toBe(false);
    expect(lang("zh", "今天天气很好。")).toBe(true);
    expect(lang("en", "It is a fine day and the sun is out.")).toBe(true);
    expect(lang("es", "El perro es muy grande y está en la casa con los niños.")).toBe(true);
    expect(lang("fr", "El perro es muy grande y está en la casa con los niños.")).toBe(false);
    expect(CheckSpec.safeParse({ type: "response_language", language: "xx" }).success).toBe(false);
    // The Latin-script languages IFEval asks for beyond the first seven.
    expect(lang("pl", "Dzisiaj jest piękna pogoda i idziemy na spacer, bo nie pada.")).toBe(true);
    expect(lang("fi", "Tänään on kaunis sää ja lähdemme kävelylle, mutta ei kauas.")).toBe(true);
    expect(lang("sw", "Hali ya hewa ni nzuri leo na tunaenda matembezi kwa miguu.")).toBe(true);
    expect(lang("vi", "Hôm nay thời tiết rất đẹp và chúng tôi đi dạo trong công viên.")).toBe(true);
    expect(lang("pl", "The weather is nice today and we are going for a walk.")).toBe(false);
  });

  test("hygiene checks are strict in loose mode too", () => {
    const leak = "Paris.\nInstruction: next";
    expect(checkLoose(leak, CheckSpec.parse({ type: "no_leakage" })).passed).toBe(false);
    const refusing = "I'm sorry, but I can't.\nHere is a poem anyway about the sea and the sky.";
    expect(checkLoose(refusing, CheckSpec.parse({ type: "not_refusal" })).passed).toBe(false);
  });

  test("runChecks: success only when every check passes, each result reported", () => {
    const specs = [CheckSpec.parse({ type: "word_count", relation: "at_most", n: 3 }), CheckSpec.parse({ type: "lowercase" })];
    const ok = runChecks("two words", specs, "strict");
    expect(ok.passed).toBe(true);
    const bad = runChecks("Two words", specs, "strict");
    expect(bad.passed).toBe(false);
    expect(bad.results.map((r) => [r.type, r.passed])).toEqual([["word_count", true], ["lowercase", false]]);
  });

  test("spec validation rejects malformed checks", () => {
    expect(CheckSpec.safeParse({ type: "word_count", relation: "about", n: 3 }).success).toBe(false);
    expect(CheckSpec.safeParse({ type: "letter_frequency", letter: "ab", relation: "at_least", n: 1 }).success).toBe(false);
    expect(CheckSpec.safeParse({ type: "letter_frequency", letter: "#", relation: "at_least", n: 1 }).success).toBe(true); // any character, as IFEval allows
    expect(CheckSpec.safeParse({ type: "nope" }).success).toBe(false);
    expect(CheckSpec.safeParse({ type: "multi_step", steps: [{ label: "x", check: { type: "nope" } }] }).success).toBe(false);
  });
});
