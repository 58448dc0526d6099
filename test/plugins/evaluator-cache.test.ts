// The response cache and generation loop in-process: what is cached is not
// generated again, an interrupted evaluation resumes from the cache, a torn
// cache line is skipped, a variant whose responses are all cached is not
// loaded, and the variant hash follows model, adapters and decoding.
import { describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers.ts";
import { FileHashes, identifyVariant, ResponseCache } from "../../plugins/evaluator/cache.ts";
import { evaluateVariants, TestInstruction, validateInstructions, type PromptFormat } from "../../plugins/evaluator/evaluate.ts";
import { registerGenerator, resolveGenerator, unregisterGenerator, type Generator, type Variant } from "../../plugins/evaluator/generator.ts";

const format: PromptFormat = {
  prompt: (i) => `Instruction: ${i}\nResponse:`,
  clean: (raw) => ({ text: raw.split("\nEND")[0]!.trim(), stopReason: raw.includes("\nEND") ? "END" : "eos" }),
  identity: { test: 1 },
};
const decode = { maxTokens: 16, stop: ["\nEND\n"] };

/** Scripted: answers "4" to everything; records loads and prompts; can abort after N batches. */
function scripted(opts: { abortAfter?: number; controller?: AbortController } = {}) {
  const log: string[] = [];
  let batches = 0;
  const gen: Generator = {
    async load(v) {
      log.push(`load ${v.name}`);
      return {
        async generate(prompts) {
          log.push(...prompts.map((p) => `gen ${v.name} ${p.split("\n")[0]}`));
          if (opts.abortAfter !== undefined && ++batches >= opts.abortAfter) opts.controller?.abort();
          return prompts.map(() => ({ text: " 4\nEND\n", tokens: 2, stop: "stop" as const }));
        },
        async dispose() {
          log.push(`dispose ${v.name}`);
        },
      };
    },
  };
  return { gen, log };
}

function items(n: number) {
  return Array.from({ length: n }, (_, k) => TestInstruction.parse({ id: `q${k}`, type: "factual", instruction: `What is 2+2? (${k})`, checks: [{ type: "math_result", value: 4 }] }));
}

async function setup() {
  const dir = tempDir("selftune-evalcache-");
  writeFileSync(join(dir, "m.gguf"), "model");
  writeFileSync(join(dir, "a.gguf"), "adapter");
  const variants: Variant[] = [{ name: "base", model: join(dir, "m.gguf"), adapters: [] }, { name: "sft", model: join(dir, "m.gguf"), adapters: [{ path: join(dir, "a.gguf"), scale: 1 }] }];
  const hashes = new FileHashes(dir);
  const identities = await Promise.all(variants.map((v) => identifyVariant(v, decode, format.identity, hashes)));
  return { dir, variants, identities };
}

describe("evaluator cache and generation loop", () => {
  test("interrupted after a batch: the next run generates only the rest; all-cached variants are not loaded", async () => {
    const { dir, variants, identities } = await setup();
    const controller = new AbortController();
    const first = scripted({ abortAfter: 1, controller });
    const common = { variants, identities, instructions: items(10), format, decode, batchSize: 4, cacheDir: dir };
    expect(await evaluateVariants({ ...common, generator: first.gen, signal: controller.signal })).toBeNull();
    expect(first.log.filter((l) => l.startsWith("gen")).length).toBe(4);
    expect(first.log.at(-1)).toBe("dispose base"); // disposed even when interrupted

    const second = scripted();
    const res = (await evaluateVariants({ ...common, generator: second.gen, signal: new AbortController().signal }))!;
    expect(second.log.filter((l) => l.startsWith("gen base")).length).toBe(6);
    expect(second.log.filter((l) => l.startsWith("gen sft")).length).toBe(10);
    expect(res.map((r) => [r.variant.name, r.generated, r.cached])).toEqual([["base", 6, 4], ["sft", 10, 0]]);
    expect(res[0]!.items.every((i) => i.success.strict)).toBe(true);
    expect(res[0]!.items.filter((i) => i.cached).map((i) => i.id)).toEqual(["q0", "q1", "q2", "q3"]);

    const third = scripted();
    await evaluateVariants({ ...common, generator: third.gen, signal: new AbortController().signal });
    expect(third.log).toEqual([]); // nothing to generate: no model loaded at all
  });

  test("a torn last line is skipped and the next append starts on a new line", async () => {
    const { dir, identities } = await setup();
    const cache = new ResponseCache(dir, identities[0]!.hash);
    cache.put([{ id: "a", promptSha256: "p", generation: { text: "x", tokens: 1, stop: "eos" } }]);
    const file = join(dir, `${identities[0]!.hash}.jsonl`);
    appendFileSync(file, '{"id":"b","promptSha2');
    const reopened = new ResponseCache(dir, identities[0]!.hash);
    expect(reopened.size).toBe(1);
    reopened.put([{ id: "c", promptSha256: "p", generation: { text: "y", tokens: 1, stop: "eos" } }]);
    const again = new ResponseCache(dir, identities[0]!.hash);
    expect(again.get("a", "p")?.text).toBe("x");
    expect(again.get("c", "p")?.text).toBe("y");
    expect(again.get("a", "other prompt")).toBeUndefined();
    expect(readFileSync(file, "utf8").split("\n").length).toBe(4);
  });

  test("the variant hash follows model bytes, adapters, scales, decoding and prompt format", async () => {
    const { dir, variants } = await setup();
    const hashes = new FileHashes(dir);
    const h = async (v: Variant, d = decode, f = format.identity) => (await identifyVariant(v, d, f, hashes)).hash;
    const base = await h(variants[0]!);
    const sft = await h(variants[1]!);
    expect(sft).not.toBe(base);
    expect(await h({ ...variants[1]!, adapters: [{ ...variants[1]!.adapters[0]!, scale: 0.5 }] })).not.toBe(sft);
    expect(await h(variants[0]!, { ...decode, maxTokens: 32 })).not.toBe(base);
    expect(await h(variants[0]!, decode, { test: 2 })).not.toBe(base);
    expect(await h({ ...variants[0]!, name: "renamed" })).toBe(base); // the name is not part of it
    await Bun.sleep(5);
    writeFileSync(join(dir, "m.gguf"), "model v2");
    expect(await h(variants[0]!)).not.toBe(base);
  });

  test("test instructions are validated: duplicate ids and missing checks", () => {
    expect(() => validateInstructions([...items(2), ...items(1)])).toThrow(/duplicate id 'q0'/);
    const noCheck = TestInstruction.parse({ id: "x", type: "factual", instruction: "Capital of France?", checks: [] });
    expect(() => validateInstructions([noCheck])).toThrow(/x: a factual item needs/);
  });

  test("generators: registered by name, loaded from a module path, or a clear error", async () => {
    const { gen } = scripted();
    registerGenerator("scripted-test", () => gen);
    expect(await resolveGenerator("scripted-test", {}, "/")).toBe(gen);
    unregisterGenerator("scripted-test");
    await expect(resolveGenerator("scripted-test", {}, "/")).rejects.toThrow(/unknown generator/);
    const dir = tempDir();
    writeFileSync(join(dir, "g.ts"), "export const nothing = 1;\n");
    await expect(resolveGenerator("./g.ts", {}, dir)).rejects.toThrow(/createGenerator/);
  });
});
