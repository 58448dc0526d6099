// Build provenance readable from TypeScript (SPEC §9: native build in every record).
import { describe, expect, test, setDefaultTimeout } from "bun:test";

// Model loads and full-vocabulary reference logits are slow on a shared 2-core CI box.
setDefaultTimeout(120_000);
import { buildInfo, getLogLevel, nativeAvailable, physicalCores, setLogLevel } from "../../native/index.ts";

describe("build info", () => {
  test("the addon is built and loads", () => {
    expect(nativeAvailable()).toBe(true);
  });

  test("llama.cpp version, commit, backend, compiler", () => {
    const b = buildInfo();
    expect(b.llamaCommit).toMatch(/^[0-9a-f]{7,}$|^unknown$/);
    expect(b.llamaBuildNumber).toBeGreaterThanOrEqual(0);
    expect(b.llamaVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(b.ggmlVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(["cpu", "cuda"]).toContain(b.backend);
    if (b.backend === "cuda") expect(b.cudaArch).not.toBe("");
    else expect(b.cudaArch).toBe("");
    expect(b.compiler).not.toBe("");
    expect(b.devices.length).toBeGreaterThan(0);
    if (!process.env.LLAMA_CPP_DIR) expect(b.llamaSource).toBe("npm:node-llama-cpp@3.22.1");
  });

  test("threads default to physical cores", () => {
    const n = physicalCores();
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(navigator.hardwareConcurrency);
  });

  test("log level", () => {
    const was = getLogLevel();
    setLogLevel("warn");
    expect(getLogLevel()).toBe("warn");
    // @ts-expect-error wrong value on purpose
    expect(() => setLogLevel("loud")).toThrow(/one of/);
    setLogLevel(was);
  });
});
