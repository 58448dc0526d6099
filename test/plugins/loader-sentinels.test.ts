// Sentinel probes (SPEC §2): each fail | warn | off; a chat-contaminated model (here a
// scripted generator that answers like one) fails the chat-markup probe and, with
// `fail`, the load; the loader's config needs exactly one of model / synthesize.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { generate, loadAdapter, loadModel, type Model } from "../../native/index.ts";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { classifyEndToken } from "../../plugins/loader/end-token.ts";
import { ContaminationGuard } from "../../plugins/loader/guard.ts";
import { fatalSentinels, runSentinels, SENTINEL_PROMPTS, type SentinelConfig } from "../../plugins/loader/sentinels.ts";
import type { GenerationRequest, GenerationResult, TextGenerator } from "../../plugins/shared/generation.ts";
import { nativeGenerator } from "../../plugins/shared/native-generator.ts";
import { cli, tempDir, writeConfig } from "../helpers.ts";
import { writeFavouringLora } from "../native/helpers.ts";

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

/** Answers every probe with `text` (and `tokens`, and how it ended), recording what it was sent. */
function scripted(text: string, tokens: number[] = [], ending: Partial<GenerationResult> = {}): TextGenerator & { sent: GenerationRequest[] } {
  const sent: GenerationRequest[] = [];
  return {
    sent,
    async generate(requests) {
      sent.push(...requests);
      return requests.map(() => ({ text, tokens, stop: "eos" as const, stopString: null, ...ending }));
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

  test("a completion ended by the model's own end of text passes; one ended by chat markup or another special token fails", async () => {
    const chatMarkup = async (stopToken: { id: number; text: string }) => {
      const res = await runSentinels(model, guard, scripted(" Paris.", [12095, 13], { stop: "control", stopToken }), ALL);
      return res.find((r) => r.name === "chat-markup")!;
    };
    const eot = await chatMarkup({ id: model.info.eos!, text: "<|endoftext|>" });
    expect(eot.passed).toBe(true);
    expect(eot.detail).toContain("own end of text");
    const im = await chatMarkup({ id: 151644, text: "<|im_start|>" });
    expect(im.passed).toBe(false);
    expect(im.detail).toContain('generated chat-markup token 151644 "<|im_start|>"');
    const fim = await chatMarkup({ id: 151659, text: "<|fim_prefix|>" });
    expect(fim.passed).toBe(false);
    expect(fim.detail).toContain("generated special token 151659");
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

describe("the token that ended a completion", () => {
  const info = { eogTokenIds: [2, 7], bos: 1, eos: 2 };
  test.each([
    [{ id: 2, text: "</s>" }, "end-of-text"], // end-of-generation
    [{ id: 1, text: "<s>" }, "end-of-text"], // BOS: the model starts its next document
    [{ id: 9, text: "<|end_story|>" }, "end-of-text"], // an end marker not flagged end-of-generation
    [{ id: 9, text: "<|endoftext|>" }, "end-of-text"],
    [{ id: 9, text: "<|end_of_text|>" }, "end-of-text"],
    [{ id: 7, text: "<|im_end|>" }, "chat-markup"], // end-of-generation, yet a chat turn marker
    [{ id: 9, text: "<|im_start|>" }, "chat-markup"],
    [{ id: 9, text: "<|eot_id|>" }, "chat-markup"],
    [{ id: 9, text: "<end_of_turn>" }, "chat-markup"],
    [{ id: 9, text: "[INST]" }, "chat-markup"],
    [{ id: 9, text: "<|assistant|>" }, "chat-markup"],
    [{ id: 9, text: "<|fim_prefix|>" }, "other-special"],
    [{ id: 9, text: "[PAD151646]" }, "other-special"],
    [{ id: 0, text: "<unk>", type: "unknown" }, "unknown"], // a character the vocabulary lacks: not chat
    [{ id: 0, text: "<unk>" }, "other-special"],
  ] as const)("%j is %s", (token, kind) => {
    expect(classifyEndToken(token, info)).toBe(kind);
  });
});

// The generator itself on a model whose weights make a control token likely: a llama model
// with Qwen2's vocabulary (its own output matrix, which an adapter can bend towards one token).
describe("chat-markup probe on generated control tokens", () => {
  let qm: Model;
  let qguard: ContaminationGuard;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    qm = await loadModel(await tinyModel({ arch: "llama", vocab: "qwen2", type: "f16" }), { threads: 1, contextSize: 512, parallel: 4 });
    qguard = ContaminationGuard.forModel(qm);
  });
  afterAll(() => qm?.dispose());

  async function probe(token: number) {
    const first = (await generate(qm, [{ prompt: qguard.tokenizePrompt(SENTINEL_PROMPTS[0].text, "x"), sampling: { maxTokens: 1 } }])).results[0]!.tokens[0]!;
    const path = await writeFavouringLora(join(dir, `favour-${token}.gguf`), qm.path, { arch: "llama", hidden: qm.info.embeddingSize, vocab: qm.info.vocabSize, token, like: first });
    const adapter = await loadAdapter(qm, path);
    try {
      const res = await runSentinels(qm, qguard, nativeGenerator(qm, { adapters: [{ adapter }] }), { ...ALL, tokenizer: "off", criticChoices: "off" });
      return res.find((r) => r.name === "chat-markup")!;
    } finally {
      adapter.dispose();
    }
  }

  test("<|im_start|> (control, not end-of-generation) ends the completion and fails the probe", async () => {
    const im = qm.tokenize("<|im_start|>", { parseSpecial: true })[0]!;
    expect(qm.info.controlTokenIds).toContain(im);
    expect(qm.info.eogTokenIds).not.toContain(im);
    const r = await probe(im);
    expect(r.passed).toBe(false);
    expect(r.detail).toContain(`generated chat-markup token ${im} "<|im_start|>"`);
  });

  test("<|endoftext|> (the model's end of text) passes, and its text is in no completion", async () => {
    const eot = qm.info.eos!;
    const r = await probe(eot);
    expect(r.passed).toBe(true);
    expect(r.detail).toContain('own end of text (plain: "<|endoftext|>"');
    expect(r.detail).not.toMatch(/-> "[^"]*<\|endoftext\|>/);
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
