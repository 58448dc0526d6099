// The evaluator's native generator (plugins/evaluator/generator.ts) on the addon: greedy,
// stop strings put back into the raw text for the cleaner, adapters at their scale, one
// load at a time, clear errors for bad options.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

setDefaultTimeout(120_000);
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate, loadModel, type Model } from "../../native/index.ts";
import { nativeGenerator, resolveGenerator } from "../../plugins/evaluator/generator.ts";
import { cleanResponse, responseStopStrings } from "../../plugins/prompts/clean.ts";
import { tiny, writeTinyLora } from "./helpers.ts";

let dir: string;
let modelPath: string;
let reference: Model;
const OPTS = { threads: 1, contextSize: 2048, parallel: 4 };
const HEADER = "Instruction: Name a colour.\nResponse: Blue.\nEND\n\nInstruction: Add two and two.\nResponse: Four.\nEND\n\n";
const PROMPTS = ["Say hello.", "Name a fruit.", "Why is the sky blue?", "Count to three.", "Spell dog."].map((i) => `${HEADER}Instruction: ${i}\nResponse:`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-native-gen-eval-"));
  modelPath = await tiny({ arch: "llama" });
  reference = await loadModel(modelPath, OPTS);
});
afterAll(() => {
  reference?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("nativeGenerator", () => {
  test("is what `generator: native` resolves to, and generates greedily in prompt order", async () => {
    const gen = await resolveGenerator("native", OPTS, dir);
    const v = await gen.load({ name: "base", model: modelPath, adapters: [] });
    try {
      expect(v.info?.backend).toBeString();
      const decode = { maxTokens: 24, stop: responseStopStrings() };
      const out = await v.generate(PROMPTS, decode);
      const ref = await generate(reference, PROMPTS.map((prompt) => ({ prompt })), { sampling: { temperature: 0, maxTokens: 24, stop: decode.stop } });
      expect(out.length).toBe(PROMPTS.length);
      for (let i = 0; i < PROMPTS.length; i++) {
        const r = ref.results[i]!;
        expect(out[i]!.stop).toBe(r.stop);
        expect(out[i]!.tokens).toBe(r.nTokens);
        // The matched stop string is put back: the cleaner cuts at it and names it.
        expect(out[i]!.text).toBe(r.text + (r.stopString ?? ""));
        expect(() => cleanResponse(out[i]!.text, { hitMaxTokens: out[i]!.stop === "length" })).not.toThrow();
      }
      // Deterministic: the same prompts again give the same text.
      expect((await v.generate(PROMPTS, decode)).map((g) => g.text)).toEqual(out.map((g) => g.text));
    } finally {
      await v.dispose();
    }
  });

  test("a stop string ends the raw text, which then carries it", async () => {
    const gen = await nativeGenerator(OPTS);
    const v = await gen.load({ name: "base", model: modelPath, adapters: [] });
    try {
      const [free] = await v.generate([PROMPTS[0]!], { maxTokens: 24, stop: [] });
      const stop = free!.text.slice(4, 7);
      const [stopped] = await v.generate([PROMPTS[0]!], { maxTokens: 24, stop: [stop] });
      expect(stopped!.stop).toBe("stop");
      expect(stopped!.text.endsWith(stop)).toBe(true);
      expect(free!.text.startsWith(stopped!.text)).toBe(true);
    } finally {
      await v.dispose();
    }
  });

  test("a variant's adapters change the output; scale 0 does not", async () => {
    const path = await writeTinyLora(join(dir, "lora.gguf"), { arch: "llama", rank: 4, alpha: 8 });
    const gen = await nativeGenerator(OPTS);
    const run = async (adapters: { path: string; scale: number }[]) => {
      const v = await gen.load({ name: "x", model: modelPath, adapters });
      try {
        return (await v.generate(PROMPTS, { maxTokens: 16, stop: [] })).map((g) => g.text);
      } finally {
        await v.dispose();
      }
    };
    const base = await run([]);
    const adapted = await run([{ path, scale: 2 }]);
    const zero = await run([{ path, scale: 0 }]);
    expect(adapted.filter((t, i) => t !== base[i]).length).toBeGreaterThan(PROMPTS.length / 2);
    expect(zero).toEqual(base);
  });

  test("bad options and a missing adapter are clear errors", async () => {
    await expect(nativeGenerator({ parallel: 0 })).rejects.toThrow(/generatorOptions for the native generator/);
    await expect(nativeGenerator({ temperature: 1 })).rejects.toThrow(/temperature/);
    const gen = await nativeGenerator(OPTS);
    await expect(gen.load({ name: "x", model: modelPath, adapters: [{ path: join(dir, "missing.gguf"), scale: 1 }] })).rejects.toThrow();
    const v = await gen.load({ name: "x", model: modelPath, adapters: [] });
    await v.dispose();
  });
});
