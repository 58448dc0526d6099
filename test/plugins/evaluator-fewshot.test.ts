// Issue 13 item 4: the in-context baseline `base+few-shot`. Its prompts are the prompts
// plugin's builder's, byte for byte (k pool examples, one seeded header, then the item);
// they are seeded; no example is the test instruction itself; the evaluation loop prompts
// that variant with them and every other one zero-shot; the default pairs put SFT and DPO
// against it, each gated.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers.ts";
import { FileHashes, identifyVariant } from "../../plugins/evaluator/cache.ts";
import { evaluateVariants, TestInstruction } from "../../plugins/evaluator/evaluate.ts";
import { FEW_SHOT_VARIANT, fewShotPool } from "../../plugins/evaluator/fewshot.ts";
import type { Generator, Variant } from "../../plugins/evaluator/generator.ts";
import { analysisOptions, EvaluatorConfig, promptFormat, variantFormats } from "../../plugins/evaluator/index.ts";
import { RESPONSE_POOL } from "../../plugins/prompts/pool.ts";
import { buildResponsePrompt } from "../../plugins/prompts/prompts.ts";

const INSTR = "Name three primary colors.";
const config = (over: Record<string, unknown> = {}) => EvaluatorConfig.parse({ ...over });
const formatsOf = (c: EvaluatorConfig, instructions: string[]) => variantFormats(c, [{ name: "base" }, { name: FEW_SHOT_VARIANT }, { name: "sft" }], instructions, promptFormat(c));

describe("base+few-shot prompts", () => {
  test("defaults: on, k 3, seed 0; the variant's prompt is the builder's, the others zero-shot", () => {
    const c = config();
    expect(c.fewShotBaseline).toEqual({ enabled: true, k: 3, seed: 0 });
    const [base, fs, sft] = formatsOf(c, [INSTR]);
    const want = buildResponsePrompt(INSTR, { seed: 0, key: "evaluation", k: 3 });
    expect(want.fewShotIds.length).toBe(3);
    expect(Buffer.from(fs!.prompt(INSTR))).toEqual(Buffer.from(want.prompt));
    expect(base!.prompt(INSTR)).toBe(`Instruction: ${INSTR}\nResponse:`);
    expect(sft).toBe(base);
    // One header for every item (its KV cache is shared), and the same cleaning as the others.
    const other = "Write a haiku about rain.";
    expect(fs!.prompt(other).startsWith(want.header)).toBe(true);
    expect(fs!.clean("Red, blue, yellow.\nEND\nInstruction: x", false)).toEqual(base!.clean("Red, blue, yellow.\nEND\nInstruction: x", false));
    // k and the seed are in the variant hash's identity: another k is another cache.
    expect(fs!.identity).toMatchObject({ fewShot: 3, fewShotSeed: 0 });
    expect(formatsOf(config({ fewShotBaseline: { k: 5 } }), [INSTR])[1]!.prompt(INSTR)).toBe(buildResponsePrompt(INSTR, { seed: 0, key: "evaluation", k: 5 }).prompt);
  });

  test("seeded: the same seed gives the same prompt, another seed other examples", () => {
    const at = (seed: number) => formatsOf(config({ fewShotBaseline: { seed } }), [INSTR])[1]!.prompt(INSTR);
    expect(at(7)).toBe(at(7));
    const ids = (seed: number) => buildResponsePrompt(INSTR, { seed, key: "evaluation", k: 3 }).fewShotIds.join();
    expect(ids(1)).not.toBe(ids(0));
    expect(at(1)).not.toBe(at(0));
    expect(at(1)).toBe(buildResponsePrompt(INSTR, { seed: 1, key: "evaluation", k: 3 }).prompt);
  });

  test("no example is a test instruction (normalized), for any seed", () => {
    const victim = RESPONSE_POOL[0]!;
    const instr = `${victim.instruction.toUpperCase()}  `.trim(); // normalizes to the pool's instruction
    const block = `Instruction: ${victim.instruction}\nResponse: ${victim.response}\nEND`;
    // Without the filter some seed does show the item as an example: the check below can fail.
    const k = 8;
    const unfiltered = Array.from({ length: 40 }, (_, seed) => buildResponsePrompt(instr, { seed, key: "evaluation", k }).prompt);
    expect(unfiltered.some((p) => p.includes(block))).toBe(true);
    expect(fewShotPool([instr]).map((e) => e.id)).not.toContain(victim.id);
    expect(fewShotPool([instr]).length).toBe(RESPONSE_POOL.length - 1);
    for (let seed = 0; seed < 40; seed++) {
      const fs = formatsOf(config({ fewShotBaseline: { seed, k } }), [instr, INSTR])[1]!;
      expect(fs.prompt(instr)).not.toContain(block);
      expect(fs.prompt(INSTR)).not.toContain(block);
      expect(fs.identity).toMatchObject({ fewShotExcluded: [victim.id] });
    }
  });

  test("the evaluation loop prompts base+few-shot with its examples and every other variant zero-shot", async () => {
    const dir = tempDir("selftune-fewshot-");
    writeFileSync(join(dir, "m.gguf"), "model");
    const variants: Variant[] = [{ name: "base", model: join(dir, "m.gguf"), adapters: [] }, { name: FEW_SHOT_VARIANT, model: join(dir, "m.gguf"), adapters: [] }];
    const items = [INSTR, "Write a haiku about rain."].map((instruction, k) => TestInstruction.parse({ id: `q${k}`, type: "creative", instruction }));
    const c = config();
    const format = promptFormat(c);
    const formats = variantFormats(c, variants, items.map((i) => i.instruction), format);
    const decode = { maxTokens: 8, stop: ["\nEND\n"] };
    const hashes = new FileHashes(dir);
    const identities = await Promise.all(variants.map((v, i) => identifyVariant(v, decode, formats[i]!.identity, hashes)));
    expect(identities[0]!.hash).not.toBe(identities[1]!.hash);
    const seen: Record<string, string[]> = {};
    const generator: Generator = {
      async load(v) {
        return {
          async generate(prompts) {
            (seen[v.name] ??= []).push(...prompts);
            return prompts.map(() => ({ text: " Fine.\nEND\n", tokens: 3, stop: "stop" as const }));
          },
          async dispose() {},
        };
      },
    };
    const res = (await evaluateVariants({ variants, identities, instructions: items, generator, format, formats, decode, batchSize: 4, cacheDir: dir, signal: new AbortController().signal }))!;
    expect(seen.base).toEqual(items.map((i) => `Instruction: ${i.instruction}\nResponse:`));
    expect(seen[FEW_SHOT_VARIANT]).toEqual(items.map((i) => buildResponsePrompt(i.instruction, { seed: 0, key: "evaluation", k: 3 }).prompt));
    expect(res.map((r) => r.items.map((i) => i.response))).toEqual([["Fine.", "Fine."], ["Fine.", "Fine."]]);
  });
});

describe("base+few-shot comparisons", () => {
  const own = ["base", FEW_SHOT_VARIANT, "sft", "dpo", "dpo-only"];
  test("the default pairs add SFT and DPO vs base+few-shot; a gate with no compare decides each pair", () => {
    const o = analysisOptions(config({ gate: { alpha: 0.05 } }), own, own);
    expect(o.pairs).toEqual([["sft", "base"], ["sft", FEW_SHOT_VARIANT], ["dpo", "sft"], ["dpo", FEW_SHOT_VARIANT], ["dpo", "dpo-only"]]);
    expect(o.gates!.map((g) => g.compare)).toEqual(o.pairs!);
    // Without DPO: SFT vs base and vs base+few-shot only; turned off: the old pairs.
    expect(analysisOptions(config(), own.slice(0, 3), own.slice(0, 3)).pairs).toEqual([["sft", "base"], ["sft", FEW_SHOT_VARIANT]]);
    expect(analysisOptions(config(), ["base", "sft"], ["base", "sft"]).pairs).toEqual([["sft", "base"]]);
  });

  test("a gate may name base+few-shot; a typo is a config error", () => {
    expect(() => config({ gate: { compare: ["sft", FEW_SHOT_VARIANT] } })).not.toThrow();
    expect(() => config({ gate: { compare: ["sft", "base+fewshot"] } })).toThrow(/not a variant/);
    expect(() => config({ fewShotBaseline: { k: 0 } })).toThrow();
  });
});
