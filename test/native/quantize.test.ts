// quantize(): llama_model_quantize for the types the pipeline uses; the results load and
// score close to the f32 original.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, quantize, type QuantType } from "../../native/index.ts";
import { tiny } from "./helpers.ts";

let dir: string;
let src: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "selftune-native-quant-"));
  // K-quants work on 256-element blocks: a hidden size of 256 lets them apply for real.
  // The llama-spm vocabulary (32k tokens) keeps the file small.
  src = await tiny({ arch: "llama", shape: { hidden: 256, ffn: 512, heads: 4, kvHeads: 2 } });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cases: [QuantType, string][] = [
  ["f16", "F16"],
  ["q8_0", "Q8_0"],
  ["q6_k", "Q6_K"],
  ["q4_k", "Q4_K - Medium"],
];

describe("quantize", () => {
  for (const [type, fileType] of cases) {
    test(type, async () => {
      const out = join(dir, `${type}.gguf`);
      await quantize(src, out, type);
      expect(statSync(out).size).toBeLessThan(statSync(src).size);
      const m = await loadModel(out, { contextSize: 128, parallel: 1 });
      const f = await loadModel(src, { contextSize: 128, parallel: 1 });
      try {
        expect(m.info.fileType).toBe(fileType);
        expect(m.info.parameterCount).toBe(f.info.parameterCount);
        const item = { prompt: "The quick brown fox", continuation: " jumps over the lazy dog" };
        const [q] = (await m.score([item])).items;
        const [r] = (await f.score([item])).items;
        // Random weights amplify quantization error; this only has to be the same model.
        expect(Math.abs(q!.sum - r!.sum) / Math.abs(r!.sum)).toBeLessThan(0.2);
      } finally {
        m.dispose();
        f.dispose();
      }
    });
  }
});
