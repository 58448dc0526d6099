// Bad input to generate() is a clear JS error before any work starts, never a crash, and
// the context stays usable after it.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

setDefaultTimeout(120_000);
import { generate, loadModel, type GenerateRequest, type Model } from "../../native/index.ts";
import { tiny } from "./helpers.ts";

let model: Model;

beforeAll(async () => {
  model = await loadModel(await tiny({ arch: "llama" }), { contextSize: 256, parallel: 2, threads: 1 });
});
afterAll(() => model?.dispose());

const bad = (reqs: unknown, opts?: unknown) => generate(model, reqs as GenerateRequest[], opts as object);

describe("generate: bad input", () => {
  test("token ids out of range or not integers", async () => {
    const V = model.info.vocabSize;
    await expect(bad([{ prompt: [1, V] }])).rejects.toThrow(RangeError);
    await expect(bad([{ prompt: [1, V] }])).rejects.toThrow(/requests\[0\]\.prompt\[1\] = 32000 is not a token id/);
    await expect(bad([{ prompt: [-1] }])).rejects.toThrow(RangeError);
    await expect(bad([{ prompt: [1.5] }])).rejects.toThrow(/not an integer token id/);
    await expect(bad([{ prompt: "ok" }, { prompt: [1], prefix: [V + 5] }])).rejects.toThrow(/requests\[1\]\.prefix\[0\]/);
    await expect(bad([{ prompt: Int32Array.of(3, 2 ** 30) }])).rejects.toThrow(RangeError);
  });

  test("a prompt that leaves no room in the context", async () => {
    const long = "word ".repeat(400);
    await expect(bad([{ prompt: "fine" }, { prompt: long }])).rejects.toThrow(/request 1: the prompt has \d+ tokens, which leaves no room to generate in the context \(contextSize 256\)/);
  });

  test("empty prompts", async () => {
    await expect(bad([{ prompt: "" }])).rejects.toThrow(/requests\[0\]\.prompt is empty/);
    await expect(bad([{ prompt: [] }])).rejects.toThrow(/requests\[0\]\.prompt is empty/);
    await expect(bad([{ prompt: "", prefix: "" }])).rejects.toThrow(/is empty/);
    await expect(bad([{}])).rejects.toThrow(/requests\[0\]\.prompt is missing/);
  });

  test("bad option types and values name the request and field", async () => {
    await expect(bad([{ prompt: "x", sampling: { temperature: "hot" } }])).rejects.toThrow(TypeError);
    await expect(bad([{ prompt: "x", sampling: { temperature: "hot" } }])).rejects.toThrow(/requests\[0\]\.sampling\.temperature must be a number/);
    await expect(bad([{ prompt: "x", sampling: { temperature: -1 } }])).rejects.toThrow(RangeError);
    await expect(bad([{ prompt: "x", sampling: { topP: 0 } }])).rejects.toThrow(/topP/);
    await expect(bad([{ prompt: "x", sampling: { topK: 1.5 } }])).rejects.toThrow(/topK must be an integer/);
    await expect(bad([{ prompt: "x", sampling: { maxTokens: 0 } }])).rejects.toThrow(/maxTokens/);
    await expect(bad([{ prompt: "x", sampling: { seed: 2 ** 32 } }])).rejects.toThrow(/seed/);
    await expect(bad([{ prompt: "x", sampling: { repetitionPenalty: 0 } }])).rejects.toThrow(/repetitionPenalty/);
    await expect(bad([{ prompt: "x", sampling: { stop: "END" } }])).rejects.toThrow(/stop must be an array of strings/);
    await expect(bad([{ prompt: "x", sampling: { stop: ["ok", 3] } }])).rejects.toThrow(/stop\[1\] must be a string/);
    await expect(bad([{ prompt: "x", sampling: { stop: [""] } }])).rejects.toThrow(/stop\[0\] is empty/);
    await expect(bad([{ prompt: "x", sampling: { temp: 0.5 } }])).rejects.toThrow(/unknown option 'temp'/);
    await expect(bad([{ prompt: "x" }], { sampling: { topK: "many" } })).rejects.toThrow(/options\.sampling\.topK/);
    await expect(bad([{ prompt: "x" }], { minSharedPrefix: 0 })).rejects.toThrow(RangeError);
    await expect(bad([{ prompt: "x", sampling: 5 }])).rejects.toThrow(/sampling must be an object/);
    await expect(bad([{ prompt: 42 }])).rejects.toThrow(TypeError);
    await expect(bad([7])).rejects.toThrow(/requests\[0\] must be an object/);
    await expect(bad("not an array")).rejects.toThrow(/requests must be an array/);
    await expect(generate({} as Model, [{ prompt: "x" }])).rejects.toThrow(/Model or a Context/);
  });

  test("an empty request list is fine; the context is usable after errors", async () => {
    const none = await generate(model, []);
    expect(none.results).toEqual([]);
    const ok = await generate(model, [{ prompt: "Hello", sampling: { maxTokens: 4 } }]);
    expect(ok.results[0]!.nTokens).toBe(4);
  });

  test("use after dispose is an error", async () => {
    const ctx = await model.createContext({ contextSize: 128, parallel: 1, threads: 1 });
    ctx.dispose();
    await expect(generate(ctx, [{ prompt: "x" }])).rejects.toThrow(/disposed/);
  });
});
