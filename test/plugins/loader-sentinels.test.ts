// Sentinel probes (SPEC §2): each fail | warn | off; a chat-contaminated model (here a
// scripted generator that answers like one) fails the chat-markup probe and, with
// `fail`, the load; the loader's config needs exactly one of model / synthesize.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { loadModel, type Model } from "../../native/index.ts";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { ContaminationGuard } from "../../plugins/loader/guard.ts";
import { fatalSentinels, runSentinels, SENTINEL_PROMPTS, type SentinelConfig } from "../../plugins/loader/sentinels.ts";
import type { GenerationRequest, TextGenerator } from "../../plugins/shared/generation.ts";
import { cli, tempDir, writeConfig } from "../helpers.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

let model: Model;
let guard: ContaminationGuard;
beforeAll(async () => {
  model = await loadModel(await tinyModel({ type: "f16" }), { threads: 1, contextSize: 512, parallel: 4 });
  guard = ContaminationGuard.forModel(model);
});
afterAll(() => model.dispose());

/** Answers every probe with `text` (and `tokens`), recording what it was sent. */
function scripted(text: string, tokens: number[] = []): TextGenerator & { sent: GenerationRequest[] } {
  const sent: GenerationRequest[] = [];
  return {
    sent,
    async generate(requests) {
      sent.push(...requests);
      return requests.map(() => ({ text, tokens, stop: "eos" as const, stopString: null }));
    },
  };
}

const ALL: SentinelConfig = { tokenizer: "fail", criticChoices: "fail", chatMarkup: "fail", persona: "warn", maxTokens: 16 };

describe("sentinels", () => {
  test("a base-model-like completion passes every probe; probes are greedy and guarded", async () => {
    const gen = scripted(" Paris, which is also its largest city.");
    const res = await runSentinels(model, guard, gen, ALL);
    expect(res.map((r) => [r.name, r.status, r.passed])).toEqual([
      ["tokenizer", "fail", true],
      ["critic-choices", "fail", true],
      ["chat-markup", "fail", true],
      ["persona", "warn", true],
    ]);
    expect(gen.sent.length).toBe(SENTINEL_PROMPTS.length);
    for (const r of gen.sent) {
      expect(r.sampling.temperature).toBe(0);
      expect(r.sampling.maxTokens).toBe(16);
      expect(guard.findSpecial(r.prompt)).toBeNull();
    }
  });

  test("chat markers in a completion fail the chat-markup probe", async () => {
    const res = await runSentinels(model, guard, scripted(" Sure!<|im_end|>\n<|im_start|>assistant\nParis"), ALL);
    const cm = res.find((r) => r.name === "chat-markup")!;
    expect(cm.passed).toBe(false);
    expect(cm.detail).toContain("<|im_end|>");
    // fail: the load is refused, naming the probe; warn: it goes on.
    expect(fatalSentinels(res)).toContain("load refused: sentinel probe(s) failed: chat-markup:");
    const warned = await runSentinels(model, guard, scripted(" <|im_start|>"), { ...ALL, chatMarkup: "warn" });
    expect(warned.find((r) => r.name === "chat-markup")!.passed).toBe(false);
    expect(fatalSentinels(warned)).toBeNull();
  });

  test("a generated control token fails it too, end-of-generation does not", async () => {
    const imStart = 151644;
    expect((await runSentinels(model, guard, scripted(" Paris", [12095, imStart]), ALL)).find((r) => r.name === "chat-markup")!.passed).toBe(false);
    const eos = model.info.eos!;
    expect((await runSentinels(model, guard, scripted(" Paris", [12095, eos]), ALL)).find((r) => r.name === "chat-markup")!.passed).toBe(true);
  });

  test("an assistant persona fails the persona probe; off probes are not run", async () => {
    const gen = scripted(" As an AI language model, I cannot browse the internet.");
    const res = await runSentinels(model, guard, gen, { ...ALL, chatMarkup: "off" });
    expect(res.find((r) => r.name === "persona")).toMatchObject({ status: "warn", passed: false });
    expect(res.find((r) => r.name === "chat-markup")).toMatchObject({ status: "off", passed: null });
    const none = scripted("x");
    const off = await runSentinels(model, guard, none, { ...ALL, chatMarkup: "off", persona: "off" });
    expect(none.sent.length).toBe(0); // nothing generated when no completion probe is on
    expect(off.filter((r) => r.passed === null).map((r) => r.name)).toEqual(["chat-markup", "persona"]);
  });
});

describe("loader config", () => {
  test("exactly one of model and synthesize", async () => {
    const dir = tempDir();
    const both = writeConfig(dir, "both.yaml", `name: x\nstages:\n  - plugin: loader\n    config:\n      model: /nowhere.gguf\n      synthesize: { arch: qwen2 }\n`);
    const r = await cli(["validate", both]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("exactly one of `model`");
    const typo = writeConfig(dir, "typo.yaml", `name: x\nstages:\n  - plugin: loader\n    config:\n      model: /m.gguf\n      sentinels: { chatMarkups: warn }\n`);
    const t = await cli(["validate", typo]);
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toContain("chatMarkup");
    const missing = writeConfig(dir, "missing.yaml", `name: x\nstages:\n  - plugin: loader\n    config: { model: ${join(dir, "none.gguf")} }\n`);
    const m = await cli(["run", missing, "--run-dir", join(dir, "run")]);
    expect(m.exitCode).toBe(1);
  });
});
