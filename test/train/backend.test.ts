// The backend factory: which backend loads a model, what it reports, and a clear refusal
// when CUDA is asked for where it cannot run (CI builds without it).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";

setDefaultTimeout(300_000);
import { estimateTrainingSeconds, loadTrainModel, trainBackends, type TrainModel } from "../../native/train.ts";
import { sftData, tiny } from "./helpers.ts";

let path: string;
let model: TrainModel;
beforeAll(async () => {
  path = await tiny("qwen2");
  model = await loadTrainModel(path, { backend: "cpu" });
});
afterAll(() => model?.dispose());

describe("training backends", () => {
  test("trainBackends() says whether CUDA was built and why it cannot be used", () => {
    const b = trainBackends();
    expect(typeof b.cudaBuilt).toBe("boolean");
    if (!b.cudaUsable) expect(b.cudaReason).toMatch(/\S/);
  });

  test("the cpu backend holds the base as f32 and reports itself in model and session info", () => {
    expect(model.info.backend).toBe("cpu");
    expect(model.info.storage).toBe("dense");
    expect(model.info.baseBytes).toBeGreaterThan(4 * model.info.vocabSize * model.info.embeddingSize - 1);
    const s = model.createSession({ rank: 4, threads: 2 });
    try {
      expect(s.info.backend).toBe("cpu");
      expect(s.info.device).toContain("2 threads");
      expect(s.info.threads).toBe(2);
      expect(s.info.peakMemoryBytes).toBe(0);
    } finally {
      s.dispose();
    }
  });

  test("auto picks cuda only where it is usable", async () => {
    const m = await loadTrainModel(path, { backend: "auto" });
    try {
      expect(m.info.backend).toBe(trainBackends().cudaUsable ? "cuda" : "cpu");
    } finally {
      m.dispose();
    }
  });

  test("asking for cuda where it cannot run is an error that says why", async () => {
    if (trainBackends().cudaUsable) return;
    await expect(loadTrainModel(path, { backend: "cuda" })).rejects.toThrow(/training backend cuda: .*(built without|device|driver)/);
  });

  test("a bad backend or storage name is refused", async () => {
    await expect(loadTrainModel(path, { backend: "tpu" as never })).rejects.toThrow(/backend must be auto, cpu or cuda/);
    await expect(loadTrainModel(path, { storage: "fp8" as never })).rejects.toThrow(/storage must be dense or stored/);
  });

  test("the CPU time estimate grows with the data and shrinks with threads", async () => {
    const data = await sftData(path);
    const s1 = model.createSession({ rank: 4, threads: 1 });
    const s2 = model.createSession({ rank: 4, threads: 2 });
    try {
      const one = estimateTrainingSeconds(model, s1, data, { epochs: 1, microBatch: 2, gradAccum: 1 });
      const two = estimateTrainingSeconds(model, s1, data, { epochs: 2, microBatch: 2, gradAccum: 1 });
      expect(one).toBeGreaterThan(0);
      expect(two / one).toBeCloseTo(2, 5);
      expect(estimateTrainingSeconds(model, s2, data, { epochs: 1, microBatch: 2, gradAccum: 1 })).toBeCloseTo(one / 2, 9);
    } finally {
      s1.dispose();
      s2.dispose();
    }
  });
});
