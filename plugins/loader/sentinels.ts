// Sentinel probes (SPEC §2): short fixed checks run at load that the model behaves
// as a *base* model and that the guard holds. Each is `fail` (a failure stops the
// load), `warn` (logged and recorded) or `off` (not run; passed = null).
//
//   tokenizer      the addon's defaults hold: "<|im_start|>"-style text is not turned
//                  into a control id, no BOS/EOS is added, and the guard's plain-text
//                  tokenization keeps every special token's text out of the id stream
//   critic-choices the critic can read a label pair for this tokenizer (SPEC §4): " A" /
//                  " B" or another pair as single tokens, else multi-token labels by
//                  summed log-probs; the detail says which
//   chat-markup    greedy completions of fixed completion prompts contain no chat
//                  markup (<|im_start|>, <|assistant|>, [INST], ...) as text or as a
//                  token, and no special token other than the model's own end of text
//                  (end-of-generation, BOS, an end marker such as <|endoftext|>) or
//                  the unknown token
//   persona        those completions do not talk like a chat assistant
//                  ("As an AI language model", "I'm sorry, but I can't") — warn by default
import type { Model } from "../../native/index.ts";
import { chooseCriticLabels, describeCriticChoice } from "../critic/critic.ts";
import { findChatMarkup } from "../prompts/clean.ts";
import type { GenerationResult, TextGenerator } from "../shared/generation.ts";
import { classifyEndToken, type EndTokenModel } from "./end-token.ts";
import type { ContaminationGuard } from "./guard.ts";

export type SentinelMode = "fail" | "warn" | "off";

export interface SentinelResult {
  name: string;
  status: SentinelMode;
  passed: boolean | null;
  detail: string;
}

/** The fixed probe prompts: plain completion text, as every selftune prompt is. */
export const SENTINEL_PROMPTS = [
  { name: "plain", text: "The capital of France is" },
  { name: "instruction", text: "Instruction: Name three primary colors.\nResponse:" },
  { name: "question", text: "Question: What is two plus two?\nAnswer:" },
] as const;

const PERSONA = /\bas an ai\b|\bai (?:language )?model\b|\bI(?:'m| am) (?:sorry|an ai|a language model|an assistant)\b|\bI cannot (?:help|assist)\b|\bHow can I (?:help|assist) you\b/i;

const short = (s: string, n = 80) => JSON.stringify(s.length > n ? s.slice(0, n) + "…" : s);

/** The tokenizer checks (no generation needed). */
export function tokenizerProbe(model: Model, guard: ContaminationGuard): { passed: boolean; detail: string } {
  const problems: string[] = [];
  const control = model.info.controlTokenIds;
  // 1. The addon's defaults: control-token text stays text.
  for (const id of control) {
    const text = model.tokenPiece(id);
    if (!text) continue;
    const ids = model.tokenize(text);
    if (ids.includes(id)) problems.push(`tokenize(${short(text)}) yields control token ${id} with default options`);
  }
  const chatml = model.tokenize("<|im_start|>");
  const hit = guard.findSpecial(chatml);
  if (hit && hit.token.type === "control") problems.push(`tokenize("<|im_start|>") yields control token ${hit.token.id}`);
  // 2. No BOS/EOS added.
  const hello = model.tokenize("Hello");
  for (const id of [model.info.bos, model.info.eos]) {
    if (id !== null && hello.includes(id)) problems.push(`tokenize("Hello") adds special token ${id}`);
  }
  // 3. The guard's plain tokenization never yields a special id, and round-trips the text.
  let split = 0;
  for (const t of guard.blocked.values()) {
    if (!t.text) continue;
    const raw = model.tokenize(t.text);
    if (guard.findSpecial(raw)) split++;
    const ids = guard.tokenize(t.text);
    const again = guard.findSpecial(ids);
    if (again) problems.push(`guard.tokenize(${short(t.text)}) yields special token ${again.token.id}`);
    else if (model.detokenize(ids) !== t.text) problems.push(`guard.tokenize(${short(t.text)}) does not round-trip: ${short(model.detokenize(ids))}`);
  }
  if (problems.length) return { passed: false, detail: problems.slice(0, 5).join("; ") + (problems.length > 5 ? `; and ${problems.length - 5} more` : "") };
  return {
    passed: true,
    detail: `${guard.blocked.size} special tokens kept out of prompts; control-token text stays text; no BOS/EOS added` + (split ? `; ${split} user-defined token texts that llama.cpp would match are split into plain pieces by the guard` : ""),
  };
}

export function criticChoicesProbe(model: Model, guard: ContaminationGuard): { passed: boolean; detail: string } {
  try {
    return { passed: true, detail: describeCriticChoice(chooseCriticLabels(model, guard)) };
  } catch (e) {
    return { passed: false, detail: (e as Error).message };
  }
}

/** Greedy completions of the sentinel prompts. */
export async function probeCompletions(gen: TextGenerator, guard: ContaminationGuard, maxTokens: number, signal?: AbortSignal): Promise<{ name: string; prompt: string; result: GenerationResult }[]> {
  const requests = SENTINEL_PROMPTS.map((p) => ({
    prompt: guard.tokenizePrompt(p.text, `sentinel:${p.name}`),
    sampling: { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1, maxTokens, seed: 0, stop: [] },
  }));
  const results = await gen.generate(requests, { signal });
  return SENTINEL_PROMPTS.map((p, i) => ({ name: p.name, prompt: p.text, result: results[i]! }));
}

/**
 * Chat markup written as text fails, and so does a special token generated (the one that
 * ended the completion, or one among its tokens) unless it is the model's own end of
 * text (end-token.ts) or the unknown token: a base model that ends a story with `</s>`
 * or starts its next document with `<s>` passes, one that writes `<|im_start|>` does not.
 */
export function chatMarkupProbe(completions: { name: string; result: GenerationResult }[], guard: ContaminationGuard, info: EndTokenModel): { passed: boolean; detail: string } {
  const bad: string[] = [];
  const ended: string[] = [];
  const unknown: string[] = [];
  for (const c of completions) {
    const markup = findChatMarkup(c.result.text);
    if (markup) bad.push(`${c.name}: ${short(markup)} in ${short(c.result.text)}`);
    const special = c.result.tokens.map((id) => guard.blocked.get(id)).filter((t) => t !== undefined);
    const stop = c.result.stopToken;
    if (stop && !special.some((t) => t.id === stop.id)) special.push({ id: stop.id, text: stop.text, type: guard.special.find((t) => t.id === stop.id)?.type ?? "stop" });
    for (const t of special) {
      const kind = classifyEndToken(t, info);
      if (kind === "end-of-text") ended.push(`${c.name}: ${short(t.text)}`);
      else if (kind === "unknown") unknown.push(`${c.name}: ${short(t.text)}`);
      else bad.push(`${c.name}: generated ${kind === "chat-markup" ? "chat-markup" : "special"} token ${t.id} ${short(t.text)}`);
    }
  }
  if (bad.length) return { passed: false, detail: `chat markers in completions: ${bad.join("; ")}` };
  const own = (ended.length ? `; ended with the model's own end of text (${ended.join(", ")})` : "") + (unknown.length ? `; unknown token (${unknown.join(", ")})` : "");
  return { passed: true, detail: completions.map((c) => `${c.name} -> ${short(c.result.text, 48)}`).join("; ") + own };
}

export function personaProbe(completions: { name: string; result: GenerationResult }[]): { passed: boolean; detail: string } {
  const bad = completions.filter((c) => PERSONA.test(c.result.text));
  if (bad.length) return { passed: false, detail: `assistant-like completions: ${bad.map((c) => `${c.name}: ${short(c.result.text)}`).join("; ")}` };
  return { passed: true, detail: `no assistant persona in ${completions.length} completions` };
}

export interface SentinelConfig {
  tokenizer: SentinelMode;
  criticChoices: SentinelMode;
  chatMarkup: SentinelMode;
  persona: SentinelMode;
  maxTokens: number;
}

/** Run every sentinel that is not off; never throws for a failed probe (the caller decides). */
export async function runSentinels(model: Model, guard: ContaminationGuard, gen: TextGenerator | null, cfg: SentinelConfig, signal?: AbortSignal): Promise<SentinelResult[]> {
  const out: SentinelResult[] = [];
  const add = (name: string, status: SentinelMode, probe: (() => { passed: boolean; detail: string }) | null) => {
    if (status === "off" || !probe) {
      out.push({ name, status, passed: null, detail: status === "off" ? "off" : "not run" });
      return;
    }
    const r = probe();
    out.push({ name, status, passed: r.passed, detail: r.detail });
  };
  add("tokenizer", cfg.tokenizer, () => tokenizerProbe(model, guard));
  add("critic-choices", cfg.criticChoices, () => criticChoicesProbe(model, guard));
  const needGen = cfg.chatMarkup !== "off" || cfg.persona !== "off";
  const completions = needGen && gen ? await probeCompletions(gen, guard, cfg.maxTokens, signal) : null;
  add("chat-markup", cfg.chatMarkup, completions ? () => chatMarkupProbe(completions, guard, model.info) : null);
  add("persona", cfg.persona, completions ? () => personaProbe(completions) : null);
  return out;
}

/** The load is refused when a probe set to `fail` failed: the message names each one. */
export function fatalSentinels(results: readonly SentinelResult[]): string | null {
  const fatal = results.filter((s) => s.status === "fail" && s.passed === false);
  if (!fatal.length) return null;
  return `load refused: sentinel probe(s) failed: ${fatal.map((s) => `${s.name}: ${s.detail}`).join(" | ")} (set the loader's sentinels.<name> to warn or off to proceed anyway)`;
}
