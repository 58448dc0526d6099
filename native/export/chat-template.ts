// The training format (specs/prompts.md §2, §7) written as a chat template, for the
// merged GGUF's `tokenizer.chat_template` (Jinja, as llama.cpp's server and chat mode and
// transformers' apply_chat_template render it) and for Ollama (Go text/template).
//
// A conversation renders exactly as the response prompt with few-shot examples does:
//   user u            -> "Instruction: {u}\nResponse:"
//   assistant a       -> " {a}\nEND\n\n"
// so [u1, a1, u2] gives formatExample(u1, a1) + formatQuery(u2), byte for byte, and the
// model continues after "Response:" as it was trained (` {r}\nEND`). Nothing is added for
// the generation prompt: a user turn already ends where the model writes. A system message
// (not part of the training format) renders as its text and a blank line before the turns.
// Content is inserted as given: the training format had one-line, trimmed instructions.
import { formatExample, formatQuery } from "../../plugins/prompts/prompts.ts";

/**
 * Jinja. Every tag trims the whitespace around it, so the output is the same whether or
 * not the engine sets trim_blocks/lstrip_blocks (transformers does, llama.cpp does not).
 * Only `for`, `if`, string concatenation and `\n` escapes: constructs llama.cpp's own Jinja
 * engine (common/jinja), minja and jinja2 all implement.
 */
export const TRAINING_CHAT_TEMPLATE = [
  "{%- for message in messages -%}",
  "{%- if message['role'] == 'system' -%}",
  "{{- message['content'] + '\\n\\n' -}}",
  "{%- elif message['role'] == 'user' -%}",
  "{{- 'Instruction: ' + message['content'] + '\\nResponse:' -}}",
  "{%- elif message['role'] == 'assistant' -%}",
  "{{- ' ' + message['content'] + '\\nEND\\n\\n' -}}",
  "{%- endif -%}",
  "{%- endfor -%}",
].join("\n");

/**
 * Ollama's TEMPLATE (Go text/template over .Messages). `{{-` trims the whitespace before a
 * tag, so the line breaks between actions are layout only; the literal newlines inside the
 * branches are the format's own.
 */
export const OLLAMA_TEMPLATE = [
  "{{- range .Messages }}",
  '{{- if eq .Role "system" }}{{ .Content }}',
  "",
  '{{ else if eq .Role "user" }}Instruction: {{ .Content }}',
  'Response:{{ else if eq .Role "assistant" }} {{ .Content }}',
  "END",
  "",
  "{{ end }}",
  "{{- end }}",
].join("\n");

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** What both templates must render, from the prompt builders themselves (the reference). */
export function renderTrainingFormat(messages: readonly ChatMessage[]): string {
  let out = "";
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role === "system") out += `${m.content}\n\n`;
    else if (m.role === "user") {
      const next = messages[i + 1];
      if (next?.role === "assistant") {
        out += formatExample(m.content, next.content);
        i++;
      } else out += formatQuery(m.content);
    } else out += ` ${m.content}\nEND\n\n`; // an assistant turn with no user turn before it
  }
  return out;
}

/**
 * Stop strings for chat use: the generator's `responseStopStrings(1)` (plugins/prompts
 * clean.ts: `\nEND\n`, `Instruction:`, `Response:`, a blank line), except that `\nEND\n` is
 * shortened to `\nEND`: a server strips the stop string it matched from the reply, and the
 * model may emit end-of-generation right after END, where `\nEND\n` would never match and
 * `\nEND` would stay in the reply. The cost: a reply line starting with "ENDING" stops too.
 */
export const CHAT_STOP_STRINGS: readonly string[] = ["\nEND", "Instruction:", "Response:", "\n\n"];
