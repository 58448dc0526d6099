// The exported chat template renders the training format byte for byte: through jinja2 (the
// reference Jinja; configured as transformers' apply_chat_template configures it, and plain),
// through llama.cpp's own Jinja engine (common/jinja, what llama-server and llama-cli --jinja
// use), and compared with the prompt builders' output (plugins/prompts), never with a copy of
// the format written out here.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CHAT_STOP_STRINGS, TRAINING_CHAT_TEMPLATE, renderTrainingFormat, type ChatMessage } from "../../native/export/chat-template.ts";
import { buildResponsePrompt, formatQuery, responsePrompt, trainingText } from "../../plugins/prompts/prompts.ts";
import { RESPONSE_POOL } from "../../plugins/prompts/pool.ts";
import { responseStopStrings } from "../../plugins/prompts/clean.ts";
import { llamaCppDirs } from "../../native/gguf/vocab.ts";
import { ROOT, tempDir } from "../helpers.ts";

setDefaultTimeout(300_000); // the first run compiles llama.cpp's Jinja engine (~1-2 min on 2 cores)

/** Conversations and what the builders make of them. */
function cases(): { name: string; messages: ChatMessage[]; expected: string }[] {
  const few = buildResponsePrompt("Name three primary colors.", { seed: 1234, key: "instr-7", k: 3 });
  const shown = few.fewShotIds.map((id) => RESPONSE_POOL.find((e) => e.id === id)!);
  const fewMessages: ChatMessage[] = shown.flatMap((e) => [
    { role: "user" as const, content: e.instruction },
    { role: "assistant" as const, content: e.response },
  ]);
  fewMessages.push({ role: "user", content: "Name three primary colors." });
  const t = trainingText("Translate 'cat' into French.", "Chat.");
  return [
    { name: "one user turn = the zero-shot response prompt", messages: [{ role: "user", content: "What is 7 times 8?" }], expected: responsePrompt("What is 7 times 8?", []) },
    { name: "few-shot turns = buildResponsePrompt's prompt", messages: fewMessages, expected: few.prompt },
    { name: "a finished turn = the training text and its separator", messages: [{ role: "user", content: "Translate 'cat' into French." }, { role: "assistant", content: "Chat." }], expected: `${t.text}\n\n` },
    { name: "multi-line response, quotes and non-ASCII", messages: [{ role: "user", content: 'Say "hé" twice — 😀' }, { role: "assistant", content: "hé\nhé" }, { role: "user", content: "Again?" }], expected: responsePrompt("Again?", [{ id: "x", category: "completion", instruction: 'Say "hé" twice — 😀', response: "hé\nhé" }]) },
    { name: "a system message goes first, then a blank line", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Why is the sky blue?" }], expected: `Be brief.\n\n${formatQuery("Why is the sky blue?")}` },
  ];
}

describe("the reference rendering (renderTrainingFormat) is the builders' format", () => {
  for (const c of cases()) test(c.name, () => expect(renderTrainingFormat(c.messages)).toBe(c.expected));
});

const JINJA2 = `
import json, sys
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
job = json.load(sys.stdin)
out = []
for trim in (True, False):
    env = ImmutableSandboxedEnvironment(trim_blocks=trim, lstrip_blocks=trim)
    t = env.from_string(job["template"])
    out.append([t.render(messages=m, add_generation_prompt=True, bos_token="<s>", eos_token="</s>") for m in job["conversations"]])
print(json.dumps(out))
`;

const hasJinja2 = Bun.spawnSync(["python3", "-c", "import jinja2"], { stderr: "ignore" }).exitCode === 0;

describe("jinja2 renders the template as the training format", () => {
  test.skipIf(!hasJinja2)("with and without trim_blocks/lstrip_blocks (transformers sets both)", () => {
    const all = cases();
    const r = Bun.spawnSync(["python3", "-c", JINJA2], { stdin: Buffer.from(JSON.stringify({ template: TRAINING_CHAT_TEMPLATE, conversations: all.map((c) => c.messages) })), stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    const [trimmed, plain] = JSON.parse(r.stdout.toString()) as string[][];
    for (let i = 0; i < all.length; i++) {
      expect(trimmed![i]).toBe(all[i]!.expected);
      expect(plain![i]).toBe(all[i]!.expected);
    }
  });
});

/** Builds test/fixtures/jinja-render.cpp once per llama.cpp tree (cached in .cache/). */
function jinjaRenderer(): string | null {
  const tree = llamaCppDirs().find((d) => existsSync(join(d, "common", "jinja", "runtime.cpp")));
  if (!tree) return null;
  const dir = join(ROOT, ".cache", "jinja-render");
  const exe = join(dir, `jinja-render-${Bun.hash(tree).toString(16)}`);
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const jinja = ["caps", "lexer", "parser", "runtime", "string", "value"].map((f) => join(tree, "common", "jinja", `${f}.cpp`));
  const tmp = `${exe}.${process.pid}.tmp`;
  const cc = Bun.spawnSync(["c++", "-std=c++17", "-O0", `-I${join(tree, "common")}`, `-I${join(tree, "vendor")}`, join(ROOT, "test/fixtures/jinja-render.cpp"), ...jinja, join(tree, "common", "unicode.cpp"), join(tree, "common", "json.cpp"), `-I${join(tree, "ggml", "include")}`, "-o", tmp], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`building jinja-render failed:\n${cc.stderr.toString().slice(-3000)}`);
  Bun.spawnSync(["mv", tmp, exe]);
  return exe;
}

const hasCompiler = Bun.spawnSync(["sh", "-c", "command -v c++"], { stdout: "ignore" }).exitCode === 0;

describe("llama.cpp's Jinja engine renders the template as the training format", () => {
  test.skipIf(!hasCompiler)("every conversation, byte for byte", () => {
    const exe = jinjaRenderer();
    if (!exe) throw new Error("no llama.cpp tree with common/jinja (native/deps/llama.cpp or $LLAMA_CPP_DIR)");
    const dir = tempDir("selftune-jinja-");
    const tmpl = join(dir, "template.jinja");
    writeFileSync(tmpl, TRAINING_CHAT_TEMPLATE);
    for (const c of cases()) {
      const ctx = join(dir, "ctx.json");
      writeFileSync(ctx, JSON.stringify({ messages: c.messages, add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" }));
      const r = Bun.spawnSync([exe, tmpl, ctx], { stdout: "pipe", stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      expect(r.stdout.toString()).toBe(c.expected);
    }
  });
});

describe("stop strings", () => {
  test("are the generator's, with \\nEND\\n shortened to \\nEND", () => {
    expect([...CHAT_STOP_STRINGS]).toEqual(responseStopStrings(1).map((s) => (s === "\nEND\n" ? "\nEND" : s)));
  });
  test("each one ends the training format's reply where the cleaner would (up to trailing whitespace, which it trims)", () => {
    // A reply the model writes after "Response:" and the continuation it would run into.
    const reply = " Red, yellow and blue.";
    for (const after of ["\nEND\n\nInstruction: next", "\nEND", "\n\nInstruction: next", "\nInstruction: next", "\nResponse: more"]) {
      const text = reply + after;
      const cut = Math.min(...CHAT_STOP_STRINGS.map((s) => text.indexOf(s)).filter((i) => i >= 0));
      expect(text.slice(0, cut).trimEnd()).toBe(reply);
    }
  });
});
