// The response-only loss mask (SPEC §6): made from the character (byte) offsets of the
// rendered training text mapped onto the tokens of the whole text, never by searching for
// the template in token space. Proved on the real qwen2, llama-spm (SentencePiece, adds a
// leading space) and llama-bpe vocabularies, on awkward responses, and on the boundary rule
// with a tokenizer built to straddle it.
import { describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { loadModel } from "../../native/index.ts";
import { vocabPath } from "../../native/gguf/index.ts";
import { lossMask, type Tokenizer } from "../../native/train.ts";
import { trainingText } from "../../plugins/prompts/prompts.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// Responses chosen to stress the boundary and byte handling: punctuation right after
// "Response:", a leading colon, digits, CJK, emoji (byte tokens in SentencePiece), a word
// equal to the delimiter's, internal newlines, leading dots, a single character.
const AWKWARD: [string, string][] = [
  ["Say hi.", "Hi!"],
  ["Punctuate.", ":)"],
  ["Colon first.", ": yes"],
  ["Digits.", "12345"],
  ["Greet in Chinese.", "你好，世界"],
  ["An emoji.", "🙂 ok"],
  ["Repeat the word.", "Response"],
  ["Two lines.", "a\nb"],
  ["Trail off.", "...and more"],
  ["One letter.", "x"],
  ["Quote.", "\"Quoted\" text"],
  ["Tabs.", "a\tb"],
  ["Accents.", "Café déjà vu"],
  ["Arithmetic.", "2+2=4"],
];

for (const vocab of ["qwen2", "llama-spm", "llama-bpe"]) {
  describe(`${vocab} vocabulary`, async () => {
    const tok = await loadModel(vocabPath(vocab), { vocabOnly: true });

    for (const [instruction, response] of AWKWARD) {
      test(JSON.stringify(response), () => {
        const t = trainingText(instruction, response);
        const m = lossMask(tok, t.text, t.lossBytes);
        const bytes = enc.encode(t.text);
        // The tokens are the whole text's tokenization (no BOS, no special parsing).
        expect(m.tokens).toEqual(tok.tokenize(t.text));
        // Loss tokens are a contiguous tail that starts exactly at the span: " {r}\nEND".
        const first = m.loss.indexOf(1);
        expect(first).toBeGreaterThan(0);
        expect(m.loss.slice(first).every((x) => x === 1)).toBe(true);
        expect(m.spans[first]![0]).toBe(t.lossBytes.start);
        expect(m.spans.at(-1)![1]).toBe(bytes.length);
        expect(m.uncoveredBytes).toBe(0);
        const lossBytes = m.tokens.slice(first).flatMap((id) => Array.from(tok.tokenBytes(id)));
        expect(dec.decode(new Uint8Array(lossBytes))).toBe(` ${response}\nEND`);
        // Nothing of "Instruction: {i}\nResponse:" is a loss token.
        const promptBytes = m.tokens.slice(0, first).flatMap((id) => Array.from(tok.tokenBytes(id)));
        expect(dec.decode(new Uint8Array(promptBytes)).trimStart()).toBe(`Instruction: ${instruction}\nResponse:`);
      });
    }

    test("a span starting inside a token: that token is not a loss token, the rest are", () => {
      const text = "Instruction: Say hi.\nResponse: Hi!\nEND";
      const start = text.indexOf("Response") + 3; // inside "Response"
      const m = lossMask(tok, text, { start, end: enc.encode(text).length });
      const straddler = m.spans.findIndex(([s, e]) => s < start && e > start);
      expect(straddler).toBeGreaterThanOrEqual(0);
      expect(m.loss[straddler]).toBe(0);
      expect(m.loss.slice(straddler + 1).every((x) => x === 1)).toBe(true);
      expect(m.uncoveredBytes).toBe(m.spans[straddler]![1] - start);
    });
  });
}

test("SentencePiece: the pieces read ' ' + text; spans are shifted back by that space", async () => {
  const tok = await loadModel(vocabPath("llama-spm"), { vocabOnly: true });
  const t = trainingText("Say hi.", "Hi!");
  const m = lossMask(tok, t.text, t.lossBytes);
  expect(dec.decode(tok.tokenBytes(m.tokens[0]!))[0]).toBe(" ");
  expect(m.spans[0]![0]).toBe(0);
});

// A toy greedy longest-match tokenizer whose vocabulary merges ":" with the space after it,
// so one token straddles the start of the loss span.
function toyTokenizer(vocab: string[]): Tokenizer {
  const pieces = [...vocab].sort((a, b) => b.length - a.length);
  return {
    tokenize(text: string) {
      const ids: number[] = [];
      for (let i = 0; i < text.length; ) {
        const p = pieces.find((v) => text.startsWith(v, i)) ?? text[i]!;
        let id = vocab.indexOf(p);
        if (id < 0) {
          vocab.push(p);
          id = vocab.length - 1;
        }
        ids.push(id);
        i += p.length;
      }
      return ids;
    },
    tokenBytes: (id: number) => enc.encode(vocab[id]!),
  };
}

describe("the boundary rule (a token is a loss token iff its first byte is inside the span)", () => {
  test("a token straddling the start (': H') is not a loss token; the bytes it covers are reported", () => {
    const tok = toyTokenizer(["Instruction", "Response", ": H", "i!", "\n", "END"]);
    const t = trainingText("Say hi.", "Hi!");
    const m = lossMask(tok, t.text, t.lossBytes);
    const pieces = m.tokens.map((id) => dec.decode(tok.tokenBytes(id)));
    const k = pieces.lastIndexOf(": H");
    expect(m.loss[k]).toBe(0);
    expect(pieces.slice(k + 1)).toEqual(["i!", "\n", "END"]);
    expect(m.loss.slice(k + 1)).toEqual([1, 1, 1]);
    expect(m.uncoveredBytes).toBe(2); // " H" is in the span but trained on as prompt
  });

  test("a token that starts inside the span is a loss token even if it runs past its end", () => {
    const tok = toyTokenizer(["ab", "cd", "ef"]);
    const m = lossMask(tok, "abcdef", { start: 2, end: 3 });
    expect(m.loss).toEqual([0, 1, 0]);
    expect(m.uncoveredBytes).toBe(0);
  });

  test("tokens that do not reproduce the text are an error, never a guess", () => {
    const bad: Tokenizer = { tokenize: () => [0, 1], tokenBytes: (id) => enc.encode(id === 0 ? "Hel" : "xo") };
    expect(() => lossMask(bad, "Hello", { start: 2, end: 5 })).toThrow(/differ|reproduce/);
    expect(() => lossMask(bad, "Hello", { start: 2, end: 9 })).toThrow(/outside/);
  });
});
