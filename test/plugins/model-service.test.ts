// The model service: one model resident at a time (unless asked and memory allows),
// loaded once per run and shared; load provenance (file sha256 cached by path + size +
// mtime, tokenizer hash, native build, backend, device).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { copyFileSync, realpathSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { cachedFileDigest, clearHashMemory, hashStats } from "../../plugins/shared/file-hash.ts";
import { ModelService, ModelServiceError } from "../../plugins/shared/model-service.ts";
import { computeTokenizerSha256 } from "../../plugins/shared/tokenizer-hash.ts";
import type { Services } from "../../core/plugin.ts";
import { tempDir } from "../helpers.ts";
import { generate } from "../../native/index.ts";
import { writeTinyLora } from "../native/helpers.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

/** A Services registry like the pipeline's. */
function services(): Services & { disposeAll(): Promise<void> } {
  const items = new Map<string, { value: unknown; dispose?: (v: never) => unknown }>();
  return {
    get: <T>(k: string) => items.get(k)?.value as T | undefined,
    async getOrCreate<T>(k: string, create: () => Promise<T> | T, dispose?: (v: T) => unknown) {
      if (!items.has(k)) items.set(k, { value: await create(), dispose: dispose as never });
      return items.get(k)!.value as T;
    },
    async release(k: string) {
      const it = items.get(k);
      items.delete(k);
      await it?.dispose?.(it.value as never);
    },
    async disposeAll() {
      for (const k of [...items.keys()].reverse()) await this.release(k);
    },
  };
}

let qwen: string;
let qwen32: string;
let llama: string;
const dir = tempDir();
process.env.SELFTUNE_HASH_CACHE = join(dir, "hashes");

beforeAll(async () => {
  qwen = await tinyModel({ type: "f16" });
  qwen32 = await tinyModel({ type: "f32" });
  llama = await tinyModel({ arch: "llama", type: "f16" });
});

describe("model service", () => {
  const reg = services();
  afterAll(() => reg.disposeAll());

  test("a model is loaded once and shared; the service lives in ctx.services", async () => {
    const s = await ModelService.of(reg);
    expect(await ModelService.of(reg)).toBe(s);
    const a = await s.acquire(qwen, { load: { threads: 2, contextSize: 512, parallel: 2 } });
    const b = await s.acquire(qwen);
    expect(b).toBe(a);
    expect(s.loads).toBe(1);
    expect(s.resident().length).toBe(1);
    // Concurrent requests for the same model still load it once.
    const [c, d] = await Promise.all([s.acquire(qwen), s.acquire(qwen)]);
    expect(c).toBe(a);
    expect(d).toBe(a);
    expect(s.loads).toBe(1);
  });

  test("adapters: loaded once per (model, file), applied per call, switched without reloading the base, freed with the model", async () => {
    const s = new ModelService(); // its own: the other tests count the shared service's loads
    const lm = await s.acquire(qwen);
    const loads = s.loads;
    const [a1, a2] = [await writeTinyLora(join(dir, "a1.gguf"), { seed: 1 }), await writeTinyLora(join(dir, "a2.gguf"), { seed: 2 })];
    const x = await s.adapter(qwen, a1);
    expect(await s.adapter(qwen, a1)).toBe(x);
    const y = await s.adapter(qwen, a2);
    expect(s.adapterLoads).toBe(2);
    // Per call: the bare base, one adapter, the other, and the bare base again, on one context.
    const ctx = await lm.workContext();
    const req = [{ prompt: "Instruction: say hi\nResponse:", sampling: { temperature: 0, maxTokens: 6 } }];
    try {
      const run = async (adapters: { adapter: typeof x; scale: number }[]) => (await generate(ctx, req, { adapters })).results[0]!.tokens.join(",");
      const bare = await run([]);
      const withX = await run([{ adapter: x, scale: 4 }]);
      const withY = await run([{ adapter: y, scale: 4 }]);
      expect(withX).not.toBe(bare); // the adapter does something, so the switch is observable
      expect(await run([])).toBe(bare);
      expect(await run([{ adapter: x, scale: 4 }])).toBe(withX);
      expect(withY).toBeString();
    } finally {
      ctx.dispose();
    }
    expect(s.loads).toBe(loads);
    expect(s.adapterLoads).toBe(2);
    // Asking for an adapter of a model that is not resident is an error naming it.
    await expect(s.adapter(llama, a1)).rejects.toThrow(/not loaded \(acquire it first\)/);
    await s.unload(qwen);
    expect(x.disposed).toBe(true);
    expect(y.disposed).toBe(true);
  });

  test("work contexts: one kept across batches — as it is with split KV caches, reset before each batch with the unified cache", async () => {
    const req = [{ prompt: "Instruction: say hi\nResponse:", sampling: { temperature: 1, seed: 3, maxTokens: 6 } }];
    for (const kvUnified of [false, true]) {
      const s = new ModelService();
      const lm = await s.acquire(qwen32, { load: { threads: 1, contextSize: 1024, parallel: 3, kvUnified, kvType: "f32", flashAttention: "off" } });
      const seen = new Set<unknown>();
      const outs: string[] = [];
      for (let b = 0; b < 4; b++) outs.push(await lm.inWorkContext(async (ctx) => (seen.add(ctx), (await generate(ctx, req)).results[0]!.tokens.join(","))));
      expect(lm.contexts).toEqual({ created: 1, resets: kvUnified ? 3 : 0 });
      expect(seen.size).toBe(1);
      // Same request, same seed: the kept context gives every batch the bytes a fresh one gives.
      expect(new Set(outs).size).toBe(1);
      const fresh = await lm.workContext();
      expect((await generate(fresh, req)).results[0]!.tokens.join(",")).toBe(outs[0]!);
      fresh.dispose();
      const kept = [...seen][0] as { disposed: boolean };
      await s.unload();
      expect(kept.disposed).toBe(true); // the service disposes the kept context with its model
    }
  });

  test("a training copy is the service's too: everything else unloads first, and it goes when released or when the service loads anything", async () => {
    const s = new ModelService();
    const lm = await s.acquire(qwen32);
    const t = await s.trainModel(qwen32, { backend: "cpu" });
    expect(lm.model.disposed).toBe(true); // the llama.cpp copy went before the training copy loaded
    expect(s.resident()).toEqual([]);
    expect(s.trainingResident()).toBe(realpathSync(qwen32));
    await t.release();
    expect(s.trainingResident()).toBeNull();
    // Not released by the stage (an error before its finally): the next acquire releases it.
    await s.trainModel(qwen32, { backend: "cpu" });
    await s.acquire(qwen32);
    expect(s.trainingResident()).toBeNull();
    await s.dispose();
  });

  test("provenance: sha256 of the file, tokenizer hash, build, backend, device", async () => {
    const s = await ModelService.of(reg);
    const p = (await s.acquire(qwen)).provenance;
    expect(p.sha256).toBe(await sha256File(qwen));
    expect(p.tokenizerSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p.architecture).toBe("qwen2");
    expect(p.fileType).toBe("F16");
    expect(p.chatTemplate).toBe("present, disabled");
    expect(p.backend).toBe("cpu");
    expect(p.device).toBe("cpu (2 threads)");
    expect(p.nativeBuild.llamaCpp).toContain("ggml");
    expect(p.nativeBuild.gpu).toBeNull();
  });

  test("asking for another model unloads the current one first", async () => {
    const s = await ModelService.of(reg);
    const a = await s.acquire(qwen);
    const b = await s.acquire(llama, { load: { threads: 2, contextSize: 512, parallel: 2 } });
    expect(a.model.disposed).toBe(true);
    expect(b.model.disposed).toBe(false);
    expect(s.resident().map((m) => m.provenance.architecture)).toEqual(["llama"]);
    // Back again: a fresh load.
    const a2 = await s.acquire(qwen, { load: { threads: 2, contextSize: 512, parallel: 2 } });
    expect(a2).not.toBe(a);
    expect(b.model.disposed).toBe(true);
    expect(s.loads).toBe(3);
  });

  test("two models resident together only when asked and memory allows", async () => {
    const s = await ModelService.of(reg);
    await s.acquire(qwen);
    const both = await s.acquire(llama, { keepOthers: true, load: { threads: 2, contextSize: 512, parallel: 2 } });
    expect(s.resident().length).toBe(2);
    expect(s.resident().every((m) => !m.model.disposed)).toBe(true);
    expect(both.provenance.architecture).toBe("llama");
    await s.unload();
    expect(s.resident().length).toBe(0);
  });

  test("a model too big for the memory left is refused, not loaded beside another", async () => {
    const s = new ModelService();
    await s.acquire(qwen, { load: { threads: 2, contextSize: 512, parallel: 2 } });
    // Pretend the resident model is enormous.
    (s.resident()[0]!.provenance as { sizeBytes: number }).sizeBytes = 2 ** 50;
    await expect(s.acquire(llama, { keepOthers: true })).rejects.toThrow(ModelServiceError);
    await s.dispose();
    expect(s.resident().length).toBe(0);
  });

  test("releaseAll unloads what the run's service holds (for stages that load outside it)", async () => {
    const r = services();
    await ModelService.releaseAll(r); // no service yet: nothing to do
    const s = await ModelService.of(r);
    const a = await s.acquire(qwen, { load: { threads: 2, contextSize: 512, parallel: 2 } });
    await ModelService.releaseAll(r);
    expect(a.model.disposed).toBe(true);
    expect(s.resident().length).toBe(0);
  });

  test("disposing the run's services unloads every model", async () => {
    const r = services();
    const s = await ModelService.of(r);
    const a = await s.acquire(qwen, { load: { threads: 2, contextSize: 512, parallel: 2 } });
    await r.disposeAll();
    expect(a.model.disposed).toBe(true);
  });
});

describe("hashes", () => {
  test("a file is hashed once; the cache is keyed by path, size and mtime", async () => {
    const f = join(dir, "m.gguf");
    copyFileSync(qwen, f);
    const before = hashStats.computed;
    const h1 = await cachedFileDigest(f);
    expect(hashStats.computed).toBe(before + 1);
    clearHashMemory(); // a new process: the disk cache answers
    const h2 = await cachedFileDigest(f);
    expect(h2).toBe(h1);
    expect(hashStats.computed).toBe(before + 1);
    // Touching the file invalidates the entry.
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    await cachedFileDigest(f);
    expect(hashStats.computed).toBe(before + 2);
  });

  test("the tokenizer hash depends on the vocabulary, not on the weights or the chat template", async () => {
    const a = computeTokenizerSha256(qwen);
    expect(computeTokenizerSha256(qwen32)).toBe(a);
    expect(computeTokenizerSha256(llama)).not.toBe(a);
  });
});
