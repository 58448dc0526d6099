// The tokenizer against llama.cpp's own test vectors (models/ggml-vocab-*.gguf.inp/.out),
// and the contamination guard's tokenization defaults (SPEC §2).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadModel, type Model } from "../../native/index.ts";
import { llamaModelsDir } from "./helpers.ts";

const SEP = "\n__ggml_vocab_test__\n";

// Same parsing as llama.cpp's tests/test-tokenizer-0.cpp: inputs split on the marker
// line, one output line of space-separated ids per input; repeated inputs collapse.
function readVectors(inp: string, out: string): Map<string, number[]> {
  const raw = readFileSync(inp, "utf8");
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(SEP, pos);
    if (next < 0) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + SEP.length;
  }
  const outputs = readFileSync(out, "utf8").split("\n");
  if (outputs.at(-1) === "") outputs.pop();
  if (inputs.length !== outputs.length) throw new Error(`${inp}: ${inputs.length} inputs but ${outputs.length} outputs`);
  const tests = new Map<string, number[]>();
  inputs.forEach((s, i) => {
    const o = outputs[i]!.trim();
    tests.set(s, o === "" ? [] : o.split(" ").map(Number));
  });
  return tests;
}

const dir = llamaModelsDir();
const vocabs = readdirSync(dir)
  .filter((f) => f.startsWith("ggml-vocab-") && f.endsWith(".gguf") && existsSync(join(dir, f + ".inp")))
  .sort();

describe("tokenizer matches llama.cpp's test vectors", () => {
  test("vocab files are present", () => {
    expect(vocabs).toContain("ggml-vocab-qwen2.gguf");
    expect(vocabs).toContain("ggml-vocab-llama-spm.gguf");
    expect(vocabs).toContain("ggml-vocab-llama-bpe.gguf");
  });

  for (const file of vocabs) {
    test(file, async () => {
      const vectors = readVectors(join(dir, file + ".inp"), join(dir, file + ".out"));
      const model = await loadModel(join(dir, file), { vocabOnly: true });
      try {
        const failures: string[] = [];
        for (const [text, want] of vectors) {
          const got = model.tokenize(text);
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            failures.push(`${JSON.stringify(text)}: got ${got.join(" ")}, want ${want.join(" ")}`);
          }
        }
        expect(failures).toEqual([]);
        expect(vectors.size).toBeGreaterThan(20);
      } finally {
        model.dispose();
      }
    });
  }
});

describe("special tokens stay text by default (qwen2 vocabulary)", () => {
  let m: Model;
  beforeAll(async () => {
    m = await loadModel(join(dir, "ggml-vocab-qwen2.gguf"), { vocabOnly: true });
  });
  afterAll(() => m.dispose());

  test("model info reports the specials and the (disabled) chat template", () => {
    const imStart = m.info.specialTokens.find((t) => t.text === "<|im_start|>");
    expect(imStart).toBeDefined();
    expect(imStart!.attributes).toContain("control");
    expect(m.info.controlTokenIds).toContain(imStart!.id);
    expect(m.info.specialTokenIds).toContain(imStart!.id);
    expect(m.info.eogTokenIds).toContain(m.info.eot!);
    expect(m.info.chatTemplatePresent).toBe(true);
    expect(m.info.vocabSize).toBe(151936);
    expect(m.info.architecture).toBe("qwen2");
    expect(m.info.vocabOnly).toBe(true);
  });

  test("<|im_start|> is ordinary text unless parseSpecial", () => {
    const text = "<|im_start|>user\nhi<|im_end|>";
    const special = new Set(m.info.specialTokenIds);
    const plain = m.tokenize(text);
    expect(plain.some((id) => special.has(id))).toBe(false);
    expect(m.detokenize(plain)).toBe(text);

    const parsed = m.tokenize(text, { parseSpecial: true });
    const imStart = m.info.specialTokens.find((t) => t.text === "<|im_start|>")!.id;
    expect(parsed[0]).toBe(imStart);
  });

  test("no BOS/EOS unless addSpecial", () => {
    const ids = m.tokenize("Hello");
    expect(ids[0]).not.toBe(m.info.bos);
    expect(ids.at(-1)).not.toBe(m.info.eos);
  });

  test("pieces and bytes", () => {
    const ids = m.tokenize(" hello world");
    expect(ids.map((id) => m.tokenPiece(id)).join("")).toBe(" hello world");
    const bytes = ids.flatMap((id) => Array.from(m.tokenBytes(id)));
    expect(new TextDecoder().decode(new Uint8Array(bytes))).toBe(" hello world");
    // A multi-byte character split across byte-level tokens reassembles from bytes.
    const emoji = m.tokenize("🦙");
    const eb = emoji.flatMap((id) => Array.from(m.tokenBytes(id)));
    expect(new TextDecoder().decode(new Uint8Array(eb))).toBe("🦙");
  });

  test("control tokens render only when asked", () => {
    const imStart = m.info.specialTokens.find((t) => t.text === "<|im_start|>")!.id;
    expect(m.detokenize([imStart])).toBe("");
    expect(m.detokenize([imStart], { unparseSpecial: true })).toBe("<|im_start|>");
    expect(m.tokenPiece(imStart)).toBe("<|im_start|>");
  });

  test("bad ids are JS errors", () => {
    expect(() => m.detokenize([151936])).toThrow(/not a token id/);
    expect(() => m.detokenize([-1])).toThrow(/not a token id/);
    expect(() => m.detokenize([1.5])).toThrow(/not an integer/);
    expect(() => m.tokenPiece(1e9)).toThrow(/not a token id/);
    expect(() => m.tokenPiece(Number.NaN)).toThrow(/not a token id/);
    // @ts-expect-error wrong type on purpose
    expect(() => m.tokenize(42)).toThrow(/must be a string/);
  });

  test("a vocabOnly model has no context", () => {
    expect(() => m.context).toThrow(/vocabOnly/);
  });
});
