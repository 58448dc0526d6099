// Bad input gives a clear JS error and never takes the process down (the test process
// itself is the proof: an abort inside llama.cpp would kill the runner).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAdapter, loadModel, quantize, type Model } from "../../native/index.ts";
import { llamaModelsDir, tiny, writeTinyLora } from "./helpers.ts";

let dir: string;
let modelPath: string;
let model: Model;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-native-errors-"));
  modelPath = await tiny();
  model = await loadModel(modelPath, { contextSize: 256, parallel: 2 });
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("model files", () => {
  test("missing file", async () => {
    await expect(loadModel(join(dir, "nope.gguf"))).rejects.toThrow(/nope\.gguf: cannot open: No such file/);
  });

  test("a directory", async () => {
    await expect(loadModel(dir)).rejects.toThrow(/not a regular file/);
  });

  test("not a GGUF", async () => {
    const p = join(dir, "text.gguf");
    writeFileSync(p, "this is not a model, just some text that is long enough");
    await expect(loadModel(p)).rejects.toThrow(/not a GGUF file \(bad magic\)/);
  });

  test("empty and tiny files", async () => {
    const p = join(dir, "empty.gguf");
    writeFileSync(p, "");
    await expect(loadModel(p)).rejects.toThrow(/not a GGUF file/);
    writeFileSync(p, "GGUF");
    await expect(loadModel(p)).rejects.toThrow(/not a GGUF file/);
  });

  test("unsupported GGUF version", async () => {
    const bytes = readFileSync(modelPath).subarray(0, 4096);
    const copy = new Uint8Array(bytes);
    new DataView(copy.buffer).setUint32(4, 99, true);
    const p = join(dir, "v99.gguf");
    writeFileSync(p, copy);
    await expect(loadModel(p)).rejects.toThrow(/unsupported GGUF version 99/);
  });

  test("truncated GGUF, cut at many points", async () => {
    const bytes = readFileSync(modelPath);
    const n = bytes.length;
    // Inside the header, inside the vocabulary, inside the tensor table, inside the data.
    const cuts = [24, 100, 1000, 100_000, 1_000_000, 3_000_000, Math.floor(n / 2), n - 1000, n - 1];
    for (const cut of cuts) {
      const p = join(dir, `cut-${cut}.gguf`);
      writeFileSync(p, bytes.subarray(0, cut));
      const err = await loadModel(p).then(
        (m) => {
          m.dispose();
          return null;
        },
        (e: Error) => e,
      );
      expect(err, `cut at ${cut}`).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/truncated|malformed/);
      rmSync(p);
    }
  });

  test("a vocabulary-only file loaded as a full model", async () => {
    await expect(loadModel(join(llamaModelsDir(), "ggml-vocab-qwen2.gguf"))).rejects.toThrow(/ggml-vocab-qwen2\.gguf: has no tensors: a vocabulary-only file/);
  });

  test("a context far larger than memory", async () => {
    const m = await loadModel(modelPath, { vocabOnly: false, contextSize: 128, parallel: 1 });
    try {
      await expect(m.createContext({ contextSize: 2 ** 31 - 1, parallel: 1 })).rejects.toThrow();
    } finally {
      m.dispose();
    }
  });

  test("an adapter is not a model", async () => {
    const p = await writeTinyLora(join(dir, "lora-as-model.gguf"));
    await expect(loadModel(p)).rejects.toThrow(/is a LoRA adapter, not a model/);
  });

  test("loader options are checked", async () => {
    // @ts-expect-error wrong type on purpose
    await expect(async () => loadModel(modelPath, { gpuLayers: "all" })).toThrow(/gpuLayers must be a number/);
    await expect(async () => loadModel(modelPath, { parallel: 0 })).toThrow(/parallel/);
    // @ts-expect-error wrong type on purpose
    await expect(async () => loadModel(42)).toThrow(/path must be a string/);
  });
});

describe("adapters", () => {
  test("adapter of another architecture", async () => {
    const p = await writeTinyLora(join(dir, "llama-lora.gguf"), { arch: "llama" });
    await expect(loadAdapter(model, p)).rejects.toThrow(/adapter is for architecture 'llama' but the model is 'qwen2'/);
  });

  test("alpha of the wrong type would abort llama.cpp: rejected first", async () => {
    const p = await writeTinyLora(join(dir, "f64-alpha.gguf"), { alphaType: "f64" });
    await expect(loadAdapter(model, p)).rejects.toThrow(/adapter.lora.alpha must be f32/);
  });

  test("a model is not an adapter", async () => {
    await expect(loadAdapter(model, modelPath)).rejects.toThrow(/not an adapter/);
  });

  test("adapter with tensors the model lacks", async () => {
    const p = await writeTinyLora(join(dir, "deep.gguf"), { layers: 5 });
    await expect(loadAdapter(model, p)).rejects.toThrow(/deep\.gguf: LoRA tensor blk\.2\.attn_q\.weight adapts a tensor the model .* does not have/);
  });

  test("missing adapter file", async () => {
    await expect(loadAdapter(model, join(dir, "none.gguf"))).rejects.toThrow(/cannot open/);
  });
});

describe("scoring input", () => {
  const V = 151936;
  test("out-of-range and non-integer token ids", async () => {
    await expect(async () => model.score([{ prompt: [1, 2], continuation: [V] }])).toThrow(/items\[0\]\.continuation\[0\] = 151936 is not a token id/);
    await expect(async () => model.score([{ prompt: [-5], continuation: [1] }])).toThrow(/items\[0\]\.prompt\[0\] = -5/);
    await expect(async () => model.score([{ prompt: [1], continuation: [2.5] }])).toThrow(/not an integer/);
    await expect(async () => model.score([{ prompt: [1], continuation: [2], candidates: [V + 1] }])).toThrow(/candidates\[0\]/);
    // @ts-expect-error wrong shape on purpose
    await expect(async () => model.score([{ prompt: [1] }])).toThrow(/continuation is missing/);
    // @ts-expect-error wrong shape on purpose
    await expect(async () => model.score("nope")).toThrow(/items must be an array/);
  });

  test("empty prompt", async () => {
    await expect(model.score([{ prompt: [], continuation: [1] }])).rejects.toThrow(/item 0: the prompt is empty/);
    await expect(model.score([{ prompt: "", continuation: "x" }])).rejects.toThrow(/item 0: the prompt is empty/);
  });

  test("item longer than the context", async () => {
    const long = Array.from({ length: 400 }, (_, i) => 100 + i);
    await expect(model.score([{ prompt: long, continuation: [5] }])).rejects.toThrow(/item 0: 400 positions do not fit the context \(contextSize 256\)/);
  });

  test("evalLogits with bad ids", async () => {
    await expect(async () => model.evalLogits([V])).toThrow(/not a token id/);
  });

  test("the context still works after all that", async () => {
    const r = await model.score([{ prompt: [1, 2, 3], continuation: [4, 5] }]);
    expect(r.items[0]!.logprobs).toHaveLength(2);
  });
});

describe("use after dispose", () => {
  test("model, context and adapter", async () => {
    const m = await loadModel(modelPath, { contextSize: 128, parallel: 1 });
    const ctx = m.context;
    const a = await loadAdapter(m, await writeTinyLora(join(dir, "ok.gguf")));
    a.dispose();
    a.dispose();
    expect(a.disposed).toBe(true);
    await expect(async () => m.score([{ prompt: [1], continuation: [2], }], { adapters: [{ adapter: a }] })).toThrow(/adapter is disposed/);
    m.dispose();
    m.dispose(); // idempotent
    expect(m.disposed).toBe(true);
    expect(() => m.tokenize("x")).toThrow(/model is disposed/);
    expect(() => m.context).toThrow(/model is disposed/);
    expect(() => ctx.info).toThrow(/context is disposed/);
    await expect(async () => ctx.score([{ prompt: [1], continuation: [2] }])).toThrow(/context is disposed/);
    await expect(async () => loadAdapter(m, join(dir, "ok.gguf"))).toThrow(/model is disposed/);
  });
});

describe("quantize", () => {
  test("unknown type, bad input", async () => {
    // @ts-expect-error wrong type on purpose
    await expect(async () => quantize(modelPath, join(dir, "q.gguf"), "q3_weird")).toThrow(/unknown type 'q3_weird'/);
    await expect(quantize(join(dir, "nope.gguf"), join(dir, "q.gguf"), "q8_0")).rejects.toThrow(/cannot open/);
    await expect(async () => quantize(modelPath, modelPath, "q8_0")).toThrow(/must differ/);
  });
});
