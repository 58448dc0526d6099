// The engine's gradient checks (native/src/train/gradcheck.cpp), run through the addon:
// every op's backward and the whole model's LoRA gradient against central differences in
// double precision, the blocked float kernels against plain references, thread-count
// independence, padding invariance, float vs double.
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads, training and full-vocabulary logits are slow on a shared 2-core box.
setDefaultTimeout(300_000);
import { selfCheck, type SelfCheckResult } from "../../native/train.ts";

let results: SelfCheckResult[];
beforeAll(async () => {
  results = await selfCheck({ seed: 1, threads: 2 });
});

// The bounds are the spec's (specs/training.md §10), never the tolerance a check reports about
// itself: an engine that loosened its own tolerance would otherwise pass whatever its error.
const OP_BOUND = 1e-6;
const MODEL_BOUND = 1e-5;
const FLOAT_VS_DOUBLE_BOUND = 1e-4;

const find = (name: string) => {
  const r = results.find((x) => x.name === name);
  if (!r) throw new Error(`no check named ${name}; have ${results.map((x) => x.name).join(", ")}`);
  return r;
};

describe("gradient checks (double precision, central differences)", () => {
  const ops = [
    "matmul.dx", "matmul.dW", "matmul.dx (blocked)", "matmul.dW (blocked)",
    "rmsnorm.dx", "rmsnorm.dw", "rope.norm.dx", "rope.neox.dx",
    "attention.dq", "attention.dk", "attention.dv", "attention.causal_mask",
    "swiglu.dgate", "swiglu.dup", "embedding.dE", "cross_entropy.dz",
  ];
  for (const name of ops) {
    test(name, () => {
      const r = find(name);
      expect(r.checked).toBeGreaterThan(0);
      // The causal mask is checked exactly; every gradient within the spec's relative bound.
      expect(r.maxRelErr).toBeLessThanOrEqual(name === "attention.causal_mask" ? 0 : OP_BOUND);
      expect(r.passed).toBe(true);
    });
  }

  for (const arch of ["llama", "qwen2"]) {
    test(`whole ${arch} model, LoRA on all seven projections, dropout off and on`, () => {
      for (const name of [`model.${arch}.lora_grad`, `model.${arch}.dropout.lora_grad`]) {
        const r = find(name);
        expect(r.checked).toBeGreaterThanOrEqual(400);
        expect(r.maxRelErr).toBeLessThanOrEqual(MODEL_BOUND);
        expect(r.passed).toBe(true);
      }
    });
    test(`${arch}: backward with a weight per target (the objective seam) is the gradient of sum w·logp`, () => {
      for (const name of [`model.${arch}.weighted_logp_grad`, `model.${arch}.dropout.weighted_logp_grad`]) {
        const r = find(name);
        expect(r.checked).toBeGreaterThanOrEqual(400);
        expect(r.maxRelErr).toBeLessThanOrEqual(MODEL_BOUND);
        expect(r.passed).toBe(true);
      }
    });
    test(`${arch}: DPO (sigmoid) and IPO through the objective's own code: loss of two pairs vs its gradient`, () => {
      for (const name of [`model.${arch}.dpo_grad`, `model.${arch}.ipo_grad`]) {
        const r = find(name);
        expect(r.checked).toBeGreaterThanOrEqual(400);
        expect(r.maxRelErr).toBeLessThanOrEqual(MODEL_BOUND);
        expect(r.passed).toBe(true);
      }
    });
    test(`${arch}: a padded micro-batch equals its sequences one by one; float engine tracks the double one`, () => {
      expect(find(`model.${arch}.padding_invariance`).maxAbsErr).toBe(0);
      const fd = find(`model.${arch}.float_vs_double`);
      expect(fd.checked).toBeGreaterThan(0);
      expect(fd.maxAbsErr).toBeLessThanOrEqual(FLOAT_VS_DOUBLE_BOUND);
      expect(fd.passed).toBe(true);
    });
  }
});

describe("kernels", () => {
  test("blocked matmuls match the references and do not depend on the thread count", () => {
    const kernels = results.filter((r) => r.group === "kernel" && r.name.startsWith("kernel.matmul"));
    expect(kernels.length).toBeGreaterThanOrEqual(16);
    for (const r of kernels) expect({ name: r.name, passed: r.passed }).toEqual({ name: r.name, passed: true });
  });
  test("fast exp and the one-pass float cross-entropy", () => {
    expect(find("kernel.fast_expf[-86, 88] (scalar == SIMD)").passed).toBe(true);
    expect(find("kernel.cross_entropy float vs double [V=151936]").passed).toBe(true);
  });
  test("nothing failed", () => {
    expect(results.filter((r) => !r.passed).map((r) => r.name)).toEqual([]);
  });
});
