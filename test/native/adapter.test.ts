// LoRA adapters (llama.cpp GGUF format): loaded per model, applied per call with a scale,
// checked against the reference path, and never leaking into calls that don't ask.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAdapter, loadModel, type Adapter, type Model, type ScoreItem } from "../../native/index.ts";
import { logSoftmaxRow, tiny, writeTinyLora } from "./helpers.ts";
import { logprobTol } from "./numerics.ts";

let dir: string;
let model: Model;
let lora: Adapter;
let items: ScoreItem[];

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-native-lora-"));
  model = await loadModel(await tiny(), { contextSize: 1024, parallel: 4, kvType: "f32", flashAttention: "off" });
  lora = await loadAdapter(model, await writeTinyLora(join(dir, "a.gguf"), { rank: 4, alpha: 8 }));
  const header = "A shared header that every item starts with, long enough to be cached as a prefix. ";
  items = ["one", "two", "three"].map((w) => ({ prompt: `${header}Word: ${w}\nNext:`, continuation: " something else entirely" }));
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("adapters", () => {
  test("metadata", () => {
    expect(lora.alpha).toBe(8);
    expect(lora.path).toEndWith("a.gguf");
  });

  test("an adapter changes the scores; scale 0 does not", async () => {
    const base = await model.score(items);
    const adapted = await model.score(items, { adapters: [{ adapter: lora, scale: 1 }] });
    const zero = await model.score(items, { adapters: [{ adapter: lora, scale: 0 }] });
    for (let i = 0; i < items.length; i++) {
      expect(maxDiff(adapted.items[i]!.logprobs, base.items[i]!.logprobs)).toBeGreaterThan(1e-3);
      expect(maxDiff(zero.items[i]!.logprobs, base.items[i]!.logprobs)).toBeLessThan(1e-4);
    }
  });

  test("the prefix cached under an adapter is not reused without it", async () => {
    const base = await model.score(items);
    await model.score(items, { adapters: [{ adapter: lora }] });
    const again = await model.score(items);
    expect(again.stats.prefixTokens).toBeGreaterThan(0); // recomputed, not taken from the adapter's cache
    for (let i = 0; i < items.length; i++) expect(maxDiff(again.items[i]!.logprobs, base.items[i]!.logprobs)).toBeLessThan(1e-6);
  });

  test("scores with an adapter match the reference path with it", async () => {
    const use = [{ adapter: lora, scale: 0.5 }];
    const out = await model.score(items, { adapters: use });
    const V = model.info.vocabSize;
    for (let i = 0; i < items.length; i++) {
      const p = model.tokenize(items[i]!.prompt as string), c = model.tokenize(items[i]!.continuation as string);
      const logits = await model.evalLogits([...p, ...c], { adapters: use });
      const ref = c.map((t, k) => logSoftmaxRow(logits.subarray((p.length - 1 + k) * V, (p.length + k) * V))[t]!);
      expect(maxDiff(out.items[i]!.logprobs, ref)).toBeLessThan(logprobTol(1e-4));
    }
  });

  test("scale is linear in the LoRA delta: two copies at 0.5 equal one at 1", async () => {
    const other = await loadAdapter(model, join(dir, "a.gguf"));
    try {
      const one = await model.score(items, { adapters: [{ adapter: lora, scale: 1 }] });
      const halves = await model.score(items, { adapters: [{ adapter: lora, scale: 0.5 }, { adapter: other, scale: 0.5 }] });
      for (let i = 0; i < items.length; i++) expect(maxDiff(one.items[i]!.logprobs, halves.items[i]!.logprobs)).toBeLessThan(1e-3);
    } finally {
      other.dispose();
    }
  });

  test("an adapter of another model is refused", async () => {
    const m2 = await loadModel(await tiny(), { contextSize: 128, parallel: 1 });
    try {
      await expect(async () => m2.score(items, { adapters: [{ adapter: lora }] })).toThrow(/loaded for another model/);
    } finally {
      m2.dispose();
    }
  });

  test("dispose while applied: the context keeps it until the next call without it", async () => {
    const extra = await loadAdapter(model, join(dir, "a.gguf"));
    const p = model.score(items, { adapters: [{ adapter: extra }] });
    extra.dispose();
    await p;
    const base = await model.score(items);
    expect(base.items).toHaveLength(items.length);
    expect(() => extra.native).toThrow(/disposed/);
  });
});
