// Cleaning raw generations at their delimiters (SPEC §3, specs/prompts.md "Cleaning").
import { describe, expect, test } from "bun:test";
import { cleanInstructionCandidate, cleanResponse, extractInstructions, findChatMarkup, findLeakage, parseInstructionList, responseStopStrings } from "../../plugins/prompts/clean.ts";

const clean = (raw: string, hitMaxTokens = false, blankLines?: number) => {
  const r = cleanResponse(raw, { hitMaxTokens, blankLines });
  return [r.response, r.stopReason] as const;
};

describe("cleanResponse", () => {
  test("the usual case: cut at the END line", () => {
    expect(clean(" Paris is the capital of France.\nEND\n\nInstruction: next")).toEqual(["Paris is the capital of France.", "END"]);
    expect(clean(" Paris\nEND")).toEqual(["Paris", "END"]);
    expect(clean(" Paris\n  END  \nmore")).toEqual(["Paris", "END"]);
    expect(cleanResponse(" Paris\nEND", { hitMaxTokens: false }).cutAt).toBe(6);
  });

  test("no delimiter: eos before max tokens, runaway at max tokens", () => {
    expect(clean(" Paris is lovely")).toEqual(["Paris is lovely", "eos"]);
    expect(clean(" Paris is lovely and", true)).toEqual(["Paris is lovely and", "runaway"]);
    expect(cleanResponse(" x", { hitMaxTokens: true }).cutAt).toBeNull();
  });

  test("a delimiter found at max tokens is not a runaway, but still a token-limit hit", () => {
    const r = cleanResponse(" Paris\nEND\n\nInstruction: Name a", { hitMaxTokens: true });
    expect(r).toEqual({ response: "Paris", stopReason: "END", hitMaxTokens: true, cutAt: 6 });
  });

  test("early delimiter: an END or Instruction: first gives an empty response", () => {
    expect(clean(" END\nParis")).toEqual(["", "END"]);
    expect(clean("\nEND")).toEqual(["", "END"]);
    expect(clean(" Instruction: Name a river.\nResponse: The Nile.")).toEqual(["", "instruction"]);
  });

  test("nested Instruction:/Response: ends the response, on its own line or inline", () => {
    expect(clean(" Sure.\nInstruction: Write a poem.\nResponse: Roses are red.\nEND")).toEqual(["Sure.", "instruction"]);
    expect(clean(" 42. Instruction: What is 6 times 7?")).toEqual(["42.", "instruction"]);
    expect(clean(" The answer is 12.\nResponse: 12")).toEqual(["The answer is 12.", "response"]);
    expect(clean(" lowercase instruction: and response: are text")).toEqual(["lowercase instruction: and response: are text", "eos"]);
  });

  test("END inside a word or in lower case does not cut", () => {
    expect(clean(" The ENDING was sad.\nEND")).toEqual(["The ENDING was sad.", "END"]);
    expect(clean(" A WEEKEND trip\nENDING\nthe end\nEND")).toEqual(["A WEEKEND trip\nENDING\nthe end", "END"]);
    expect(clean(" Paris END", true)).toEqual(["Paris END", "runaway"]); // not an END line: left in, and QC counts it as leakage
    expect(clean(" END. of story")).toEqual(["END. of story", "eos"]);
  });

  test("blank-line runs: one blank line ends a response by default; more when configured", () => {
    expect(clean(" Paris\n\nLondon is also nice")).toEqual(["Paris", "blank-lines"]);
    expect(clean(" Paris\n \t \nLondon")).toEqual(["Paris", "blank-lines"]);
    expect(clean(" a\n\nb\n\n\nc", false, 2)).toEqual(["a\n\nb", "blank-lines"]);
    expect(clean(" a\nb\nc")).toEqual(["a\nb\nc", "eos"]);
  });

  test("a blank-line run followed by a delimiter is attributed to the delimiter", () => {
    expect(clean(" Paris\n\nEND")).toEqual(["Paris", "END"]);
    expect(clean(" Paris\n\n\nInstruction: x")).toEqual(["Paris", "instruction"]);
    expect(clean(" Paris\n\n  Response: x")).toEqual(["Paris", "response"]);
    expect(clean(" Paris\n\nENDING")).toEqual(["Paris", "blank-lines"]);
  });

  test("leading spaces and blank lines before the response are trimmed, never a cut", () => {
    expect(clean("\n\n   Paris\nEND")).toEqual(["Paris", "END"]);
    expect(clean("   \n\n  \n")).toEqual(["", "eos"]);
    expect(clean("")).toEqual(["", "eos"]);
    expect(clean(" \tindented\n  second line  \nEND")).toEqual(["indented\n  second line", "END"]);
  });

  test("CRLF is read as LF", () => {
    expect(clean(" Paris\r\nEND\r\n")).toEqual(["Paris", "END"]);
    expect(clean(" a\r\n\r\nb")).toEqual(["a", "blank-lines"]);
  });

  test("the earliest delimiter wins", () => {
    expect(clean(" a\n\nb\nEND")).toEqual(["a", "blank-lines"]);
    expect(clean(" a Response: b\nEND")).toEqual(["a", "response"]);
    expect(clean(" a\nEND\nInstruction:")).toEqual(["a", "END"]);
  });

  test("bad options", () => {
    expect(() => cleanResponse("x", { hitMaxTokens: false, blankLines: 0 })).toThrow();
  });

  test("stop strings each imply a delimiter the cleaner cuts at", () => {
    for (const s of responseStopStrings()) {
      const r = cleanResponse(` Paris${s}`, { hitMaxTokens: false });
      expect(r.response).toBe("Paris");
      expect(r.stopReason).not.toBe("eos");
    }
    expect(responseStopStrings(2)).toContain("\n\n\n");
  });
});

describe("findLeakage", () => {
  test("Instruction:, Response: and whole-word END, case-sensitive", () => {
    expect(findLeakage("fine text")).toEqual([]);
    expect(findLeakage("Response: x and Instruction: y END")).toEqual(["Instruction:", "Response:", "END"]);
    expect(findLeakage("THE END.")).toEqual(["END"]);
    expect(findLeakage("ENDING WEEKEND ENDs _END end")).toEqual([]);
    expect(findLeakage("instruction: response:")).toEqual([]);
  });
});

describe("parseInstructionList", () => {
  test("the first line finishes the open item; numbered lines follow; numbering stripped", () => {
    expect(parseInstructionList(" Write a poem about rain.\n10. Explain gravity.\n11) Name a fish.\n", { hitMaxTokens: false })).toEqual([
      "Write a poem about rain.",
      "Explain gravity.",
      "Name a fish.",
    ]);
  });

  test("stops at a blank line or at a line that is not numbered", () => {
    expect(parseInstructionList(" A b c.\n10. D e f.\n\n11. G h i.", { hitMaxTokens: false })).toEqual(["A b c.", "D e f."]);
    expect(parseInstructionList(" A b c.\nThis list was made by\n11. G h i.", { hitMaxTokens: false })).toEqual(["A b c."]);
    expect(parseInstructionList("\n10. x", { hitMaxTokens: false })).toEqual([]);
  });

  test("a last line without newline is dropped only when generation hit max tokens", () => {
    expect(parseInstructionList(" A b c.\n10. Explain how", { hitMaxTokens: true })).toEqual(["A b c."]);
    expect(parseInstructionList(" A b c.\n10. Explain how", { hitMaxTokens: false })).toEqual(["A b c.", "Explain how"]);
    expect(parseInstructionList(" A b c.\n10. D e f.\n", { hitMaxTokens: true })).toEqual(["A b c.", "D e f."]);
  });

  test("empty numbered items are skipped", () => {
    expect(parseInstructionList(" A b c.\n10.\n11. D e f.\n", { hitMaxTokens: false })).toEqual(["A b c.", "D e f."]);
  });
});

describe("cleanInstructionCandidate", () => {
  test("tidies whitespace, numbering, bullets and wrapping quotes", () => {
    expect(cleanInstructionCandidate("  Write   a\tpoem  about rain. ")).toEqual({ ok: true, text: "Write a poem about rain." });
    expect(cleanInstructionCandidate("12. Name three fish.")).toEqual({ ok: true, text: "Name three fish." });
    expect(cleanInstructionCandidate("- Name three fish.")).toEqual({ ok: true, text: "Name three fish." });
    expect(cleanInstructionCandidate('"Name three fish."')).toEqual({ ok: true, text: "Name three fish." });
    expect(cleanInstructionCandidate('Say "hi" to "me" now')).toEqual({ ok: true, text: 'Say "hi" to "me" now' });
  });

  test("mechanical rejections", () => {
    const reason = (s: string, o = {}) => {
      const r = cleanInstructionCandidate(s, o);
      return r.ok ? "ok" : r.reason;
    };
    expect(reason("   ")).toBe("empty");
    expect(reason("Name two\u0007 fish")).toBe("control-characters");
    expect(reason("1234 5678 ???")).toBe("no-letters");
    expect(reason("Summarize.")).toBe("too-short");
    expect(reason("Name a fish", { minWords: 4 })).toBe("too-short");
    expect(reason(`Write ${"very ".repeat(80)}long`)).toBe("too-long");
    expect(reason("Write the word END now")).toBe("delimiter");
    expect(reason("Complete this Response: yes")).toBe("delimiter");
    expect(reason("Translate the following sentence:")).toBe("dangling-colon");
    expect(reason("Say hello <|im_start|>user please")).toBe("chat-markup");
  });

  test("extractInstructions parses, tidies and sorts out a whole continuation", () => {
    const raw = " Write a poem about rain.\n10. Summarize.\n11. Explain <|im_end|> things now\n12)  Name three  rivers in Europe.\nThanks for reading";
    expect(extractInstructions(raw, { hitMaxTokens: false })).toEqual({
      accepted: ["Write a poem about rain.", "Name three rivers in Europe."],
      rejected: [
        { text: "Summarize.", reason: "too-short" },
        { text: "Explain <|im_end|> things now", reason: "chat-markup" },
      ],
    });
  });
});

describe("findChatMarkup", () => {
  test("chat-template tokens written as text", () => {
    for (const m of ["<|im_start|>", "<|eot_id|>", "<|start_header_id|>", "[INST]", "[/INST]", "<<SYS>>", "</s>", "<s>", "<start_of_turn>"]) expect(findChatMarkup(`x ${m} y`)).toBe(m);
    for (const ok of ["a < b | c > d", "x || y", "<b>bold</b>", "INST", "[inst]"]) expect(findChatMarkup(ok)).toBeNull();
  });
});
