// Loading and freeing models repeatedly must not grow the process (the evaluator loads
// base, SFT and DPO models one after another in one process).
//
// The cycles use the llama-architecture tiny model (32k-token SentencePiece vocabulary):
// building qwen2's 151k-merge BPE tables costs ~0.5 s per load on a 2-core machine, which
// would make 100 cycles a two-minute test without testing anything more.
import { describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { join } from "node:path";
import { loadModel } from "../../native/index.ts";
import { llamaModelsDir, rssBytes, tiny } from "./helpers.ts";

const MB = 1024 * 1024;

// Bun runs N-API finalizers after the collection, on later event-loop turns.
async function settle() {
  for (let i = 0; i < 3; i++) {
    Bun.gc(true);
    await Bun.sleep(50);
  }
}

async function growthOver(cycles: number, warmup: number, cycle: () => Promise<void>): Promise<number> {
  for (let i = 0; i < warmup; i++) await cycle(); // allocator pools, arenas, caches
  await settle();
  const before = rssBytes();
  for (let i = 0; i < cycles; i++) await cycle();
  await settle();
  return (rssBytes() - before) / MB;
}

describe("load/unload cycles", () => {
  test("100 cycles of model + context + a scoring call: no RSS growth", async () => {
    const path = await tiny({ arch: "llama" });
    const growth = await growthOver(100, 20, async () => {
      const m = await loadModel(path, { contextSize: 256, parallel: 2 });
      await m.score([{ prompt: "Hello there", continuation: " general" }]);
      m.dispose();
    });
    // The model is ~17 MB and its context a few MB: leaking either would be >1 GB here.
    expect(growth).toBeLessThan(64);
  }, 300_000);

  test("100 cycles of a vocabulary-only load: no RSS growth", async () => {
    const path = join(llamaModelsDir(), "ggml-vocab-llama-spm.gguf");
    const growth = await growthOver(100, 20, async () => {
      const m = await loadModel(path, { vocabOnly: true });
      m.tokenize("some text to tokenize");
      m.dispose();
    });
    expect(growth).toBeLessThan(32);
  }, 300_000);

  test("10 cycles of the qwen2 tiny model", async () => {
    const path = await tiny();
    const growth = await growthOver(10, 3, async () => {
      const m = await loadModel(path, { contextSize: 256, parallel: 2 });
      await m.score([{ prompt: "Hello there", continuation: " general" }]);
      m.dispose();
    });
    expect(growth).toBeLessThan(100); // the model alone is ~40 MB: 10 leaked would be 400
  }, 300_000);

  test("models dropped without dispose are freed by the garbage collector", async () => {
    const path = await tiny({ arch: "llama" });
    const growth = await growthOver(40, 10, async () => {
      await loadModel(path, { contextSize: 128, parallel: 1 });
    });
    expect(growth).toBeLessThan(200); // 40 leaked models would be ~700 MB
  }, 300_000);
});
