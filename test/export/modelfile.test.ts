// The Ollama Modelfile (no Ollama here): parsed by the rules of Ollama's parser
// (parser/parser.go: values taken literally, "..." / """...""" may span lines, no escapes),
// and its TEMPLATE rendered by a Go text/template evaluator for the constructs it uses
// (range, if / else if eq, field access, {{- trimming}}); both must give the training format
// as the prompt builders make it, and the stops the generator's delimiters.
import { describe, expect, test } from "bun:test";
import { CHAT_STOP_STRINGS, OLLAMA_TEMPLATE, renderTrainingFormat, type ChatMessage } from "../../native/export/chat-template.ts";
import { modelfile } from "../../native/export/modelfile.ts";
import { buildResponsePrompt } from "../../plugins/prompts/prompts.ts";
import { RESPONSE_POOL } from "../../plugins/prompts/pool.ts";
import { testProvenance } from "./helpers.ts";

/** Commands of a Modelfile as Ollama's parser reads them: [name, value]. */
function parseModelfile(text: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === "\n" || text[i] === " ") {
      i++;
      continue;
    }
    if (text[i] === "#") {
      i = text.indexOf("\n", i) + 1 || text.length;
      continue;
    }
    const nameEnd = text.indexOf(" ", i);
    let name = text.slice(i, nameEnd).toLowerCase();
    i = nameEnd + 1;
    if (name === "parameter") {
      const end = text.indexOf(" ", i);
      name = text.slice(i, end);
      i = end + 1;
    }
    let value: string;
    for (const q of ['"""', '"']) {
      if (text.startsWith(q, i)) {
        const close = text.indexOf(q, i + q.length);
        if (close < 0) throw new Error(`unterminated ${q} for ${name}`);
        value = text.slice(i + q.length, close);
        i = close + q.length;
        break;
      }
    }
    if (value! === undefined) {
      const end = text.indexOf("\n", i);
      value = text.slice(i, end < 0 ? text.length : end).trim();
      i = end < 0 ? text.length : end;
    }
    out.push([name, value!]);
  }
  return out;
}

type Node = { text: string } | { field: string } | { range: string; body: Node[] } | { branches: { role: string | null; body: Node[] }[] };

/** Go text/template, the subset the template uses. Trim markers remove all adjacent whitespace. */
function parseGoTemplate(src: string): Node[] {
  const parts: (string | { action: string })[] = [];
  let at = 0;
  while (at < src.length) {
    const open = src.indexOf("{{", at);
    if (open < 0) {
      parts.push(src.slice(at));
      break;
    }
    let text = src.slice(at, open);
    const close = src.indexOf("}}", open);
    let action = src.slice(open + 2, close);
    if (action.startsWith("-")) {
      text = text.replace(/\s+$/, "");
      action = action.slice(1);
    }
    let next = close + 2;
    if (action.endsWith("-")) {
      action = action.slice(0, -1);
      while (next < src.length && /\s/.test(src[next]!)) next++;
    }
    parts.push(text, { action: action.trim() });
    at = next;
  }
  let k = 0;
  const block = (): Node[] => {
    const nodes: Node[] = [];
    while (k < parts.length) {
      const p = parts[k]!;
      if (typeof p === "string") {
        if (p) nodes.push({ text: p });
        k++;
        continue;
      }
      const a = p.action;
      if (a === "end" || a.startsWith("else")) return nodes;
      k++;
      if (a.startsWith("range ")) {
        nodes.push({ range: a.slice(6), body: block() });
        k++; // end
      } else if (a.startsWith("if ")) {
        const branches: { role: string | null; body: Node[] }[] = [{ role: /^if eq \.Role "(\w+)"$/.exec(a)![1]!, body: block() }];
        for (;;) {
          const e = (parts[k] as { action: string }).action;
          k++;
          if (e === "end") break;
          const m = /^else if eq \.Role "(\w+)"$/.exec(e);
          branches.push({ role: m ? m[1]! : null, body: block() });
        }
        nodes.push({ branches });
      } else if (/^\.\w+$/.test(a)) nodes.push({ field: a.slice(1) });
      else throw new Error(`unsupported action {{${a}}}`);
    }
    return nodes;
  };
  return block();
}

function renderGo(nodes: Node[], dot: Record<string, unknown>): string {
  let out = "";
  for (const n of nodes) {
    if ("text" in n) out += n.text;
    else if ("field" in n) out += String(dot[n.field]);
    else if ("range" in n) for (const item of dot[n.range.slice(1)] as Record<string, unknown>[]) out += renderGo(n.body, item);
    else {
      const hit = n.branches.find((b) => b.role === null || b.role === dot.Role);
      if (hit) out += renderGo(hit.body, dot);
    }
  }
  return out;
}

const ollamaMessages = (ms: ChatMessage[]) => ({ Messages: ms.map((m) => ({ Role: m.role, Content: m.content })) });

describe("the Modelfile", () => {
  const prov = testProvenance({ runId: "run-42", stage: "dpo", baseModel: { path: "/m.gguf", sha256: "b".repeat(64), architecture: "llama" } });
  const text = modelfile(prov);
  const commands = parseModelfile(text);

  test("FROM the merged file beside it, one TEMPLATE, a stop per delimiter", () => {
    expect(commands.filter(([n]) => n === "from")).toEqual([["from", "./model.gguf"]]);
    expect(commands.filter(([n]) => n === "template").map(([, v]) => v)).toEqual([OLLAMA_TEMPLATE]);
    expect(commands.filter(([n]) => n === "stop").map(([, v]) => v)).toEqual([...CHAT_STOP_STRINGS]);
    expect(commands.map(([n]) => n).sort()).toEqual(["from", "stop", "stop", "stop", "stop", "template"]);
  });

  test("the provenance is in its comments", () => {
    const comments = text.split("\n").filter((l) => l.startsWith("#")).join("\n");
    for (const s of ["run-42", "dpo", "b".repeat(64), prov.adapterSha256, prov.configHash, prov.data.textSha256!]) expect(comments).toContain(s);
  });

  test("TEMPLATE renders the training format as the builders do", () => {
    const few = buildResponsePrompt("Name three primary colors.", { seed: 7, key: "k", k: 2 });
    const shown = few.fewShotIds.map((id) => RESPONSE_POOL.find((e) => e.id === id)!);
    const conversations: ChatMessage[][] = [
      [{ role: "user", content: "What is 7 times 8?" }],
      [...shown.flatMap((e) => [{ role: "user" as const, content: e.instruction }, { role: "assistant" as const, content: e.response }]), { role: "user", content: "Name three primary colors." }],
      [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }, { role: "assistant", content: "Hello.\nHow can I help?" }, { role: "user", content: "Bye" }],
    ];
    const tree = parseGoTemplate(OLLAMA_TEMPLATE);
    expect(renderGo(tree, ollamaMessages(conversations[1]!))).toBe(few.prompt);
    for (const c of conversations) expect(renderGo(tree, ollamaMessages(c))).toBe(renderTrainingFormat(c));
  });
});
