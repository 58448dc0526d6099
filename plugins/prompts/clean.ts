// Reading what the model wrote: cleaning a raw response at its delimiters
// (SPEC §3), finding delimiters left in text, and parsing the continuation of
// the instruction list into candidate instructions. Exact rules: specs/prompts.md.

import { STOP_REASONS, type StopReason } from "../shared/kinds.ts";

// Why a cleaned response ends where it does. END / instruction / response /
// blank-lines: that delimiter was found (the response is the text before it);
// eos: no delimiter, and the generation ended before max tokens (end-of-generation
// token or a stop string); runaway: no delimiter, and the generation reached max
// tokens. The enum lives with the record schemas in plugins/shared/kinds.ts.
export { STOP_REASONS, type StopReason };

/** The delimiters that must never remain in a cleaned response or an instruction. */
export const DELIMITERS = ["Instruction:", "Response:", "END"] as const;
export type Delimiter = (typeof DELIMITERS)[number];

// END counts as a delimiter only as a whole upper-case word: "ENDING", "ENDs",
// "WEEKEND" and "end" are ordinary text.
const END_WORD = /(?<![A-Za-z0-9_])END(?![A-Za-z0-9_])/;
// An END line: a line holding only END (spaces or tabs around it allowed).
// No m flag: ^ and $ are the start and end of the whole text.
const END_LINE = /(?:^|\n)[ \t]*END[ \t]*(?=\n|$)/;
// What may follow a run of blank lines for the cut to be attributed to it.
const DELIMITER_AHEAD = /^\s*(?:(END)[ \t]*(?:\n|$)|(Instruction:)|(Response:))/;

// Chat-template markup as text: ChatML / Llama-3 style `<|...|>` tokens, Llama-2
// `[INST]` and `<<SYS>>`, sentence tags `<s>`/`</s>`, Gemma turn tags. The loader
// keeps such text from ever becoming special tokens (SPEC §2); in generated text
// it is a sign of a chat-contaminated model and must not reach training data.
const CHAT_MARKUP = /<\|[^|<>\s]{1,40}\|>|\[\/?INST\]|<<\/?SYS>>|<\/?s>|<(?:start|end)_of_turn>/;

/** The first piece of chat-template markup in `text`, or null. */
export function findChatMarkup(text: string): string | null {
  return CHAT_MARKUP.exec(text)?.[0] ?? null;
}

/** Delimiters present anywhere in `text` (case-sensitive), in DELIMITERS order. */
export function findLeakage(text: string): Delimiter[] {
  const out: Delimiter[] = [];
  if (text.includes("Instruction:")) out.push("Instruction:");
  if (text.includes("Response:")) out.push("Response:");
  if (END_WORD.test(text)) out.push("END");
  return out;
}

export interface CleanOptions {
  /** The generator stopped because it had produced its maximum number of tokens. */
  hitMaxTokens: boolean;
  /** How many consecutive blank lines end a response (default 1, i.e. "\n\n"). */
  blankLines?: number;
}

export interface CleanedResponse {
  /** The response text: leading and trailing whitespace removed, inner text untouched. */
  response: string;
  stopReason: StopReason;
  /** Copied from the options: a token-limit hit, whatever the stop reason. */
  hitMaxTokens: boolean;
  /** Index (in the \r\n-normalised raw text) where the cut delimiter starts; null without one. */
  cutAt: number | null;
}

/**
 * Clean a raw generation (the text after `Response:`, as generated; if the
 * generator stopped at a stop string, the raw text should include it). The
 * response ends at the earliest of:
 *   - an END line (a line that is only `END`, spaces/tabs allowed),
 *   - `Instruction:` or `Response:` anywhere,
 *   - a run of `blankLines` blank lines (whitespace-only lines) after the
 *     response's first non-space character.
 * A blank-line run directly followed by another delimiter is attributed to that
 * delimiter ("Paris\n\nEND" ended at END). Without a delimiter the response is
 * the whole text: `runaway` when the generation hit max tokens, else `eos`.
 */
export function cleanResponse(raw: string, opts: CleanOptions): CleanedResponse {
  const blank = opts.blankLines ?? 1;
  if (!Number.isInteger(blank) || blank < 1) throw new Error(`blankLines must be a positive integer, got ${blank}`);
  const text = raw.replace(/\r\n?/g, "\n");
  const first = text.search(/\S/);
  const start = first < 0 ? text.length : first;

  const found: { at: number; reason: StopReason }[] = [];
  const endLine = END_LINE.exec(text);
  if (endLine) found.push({ at: endLine.index, reason: "END" });
  const ins = text.indexOf("Instruction:");
  if (ins >= 0) found.push({ at: ins, reason: "instruction" });
  const res = text.indexOf("Response:");
  if (res >= 0) found.push({ at: res, reason: "response" });
  const blankRun = new RegExp(`\\n(?:[ \\t]*\\n){${blank}}`, "g");
  blankRun.lastIndex = start;
  const b = blankRun.exec(text);
  if (b) found.push({ at: b.index, reason: "blank-lines" });

  if (found.length === 0) {
    return { response: text.slice(start).trimEnd(), stopReason: opts.hitMaxTokens ? "runaway" : "eos", hitMaxTokens: opts.hitMaxTokens, cutAt: null };
  }
  found.sort((x, y) => x.at - y.at);
  const cut = found[0]!;
  let reason = cut.reason;
  if (reason === "blank-lines") {
    const ahead = DELIMITER_AHEAD.exec(text.slice(cut.at));
    if (ahead) reason = ahead[1] ? "END" : ahead[2] ? "instruction" : "response";
  }
  const response = cut.at > start ? text.slice(start, cut.at).trimEnd() : "";
  return { response, stopReason: reason, hitMaxTokens: opts.hitMaxTokens, cutAt: cut.at };
}

/**
 * Stop strings a generator may use for response generation so it does not
 * waste tokens past the end. They are conservative: each one implies a
 * delimiter that cleanResponse cuts at (`\nEND\n` rather than `\nEND`, so that
 * `\nENDING` does not stop generation). Include the matched stop string in the
 * raw text passed to cleanResponse.
 */
export function responseStopStrings(blankLines = 1): string[] {
  return ["\nEND\n", "Instruction:", "Response:", "\n" + "\n".repeat(blankLines)];
}

// ---------------------------------------------------------------- instruction list

const NUMBERED = /^\s*\d+[.)][ \t]*(.*)$/;

/**
 * Candidates from the continuation of an instruction-list prompt (the text
 * after the final `N.`). The first line finishes item N; each following line
 * must be numbered (`10. ...` or `10) ...`); the list ends at a blank line or
 * at the first line that is not numbered. When the generation hit max tokens,
 * a last line with no newline after it may be cut mid-sentence and is dropped.
 * Returns the candidates' raw text (trimmed), in order, empty ones skipped.
 */
export function parseInstructionList(raw: string, opts: { hitMaxTokens: boolean }): string[] {
  const lines = raw.replace(/\r\n?/g, "\n").split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") break;
    let body: string;
    if (i === 0) body = line;
    else {
      const m = NUMBERED.exec(line);
      if (!m) break;
      body = m[1]!;
    }
    const terminated = i < lines.length - 1;
    if (!terminated && opts.hitMaxTokens) break;
    if (body.trim() !== "") out.push(body.trim());
  }
  return out;
}

export const INSTRUCTION_REJECTIONS = ["empty", "control-characters", "no-letters", "too-short", "too-long", "delimiter", "chat-markup", "dangling-colon"] as const;
export type InstructionRejection = (typeof INSTRUCTION_REJECTIONS)[number];

export interface CandidateOptions {
  /** Fewer words than this is rejected as too short (default 3). */
  minWords?: number;
  /** More characters than this is rejected as too long (default 300). */
  maxChars?: number;
}

export type CandidateResult = { ok: true; text: string } | { ok: false; reason: InstructionRejection; text: string };

/**
 * Tidy one candidate instruction into the text used in prompts, or say why it
 * is unusable. Tidying: whitespace runs become one space, ends trimmed, a
 * leftover number or bullet prefix removed, one pair of wrapping double quotes
 * removed. Rejections are mechanical only; whether an instruction makes sense
 * is the instruction critic's job.
 */
export function cleanInstructionCandidate(raw: string, opts: CandidateOptions = {}): CandidateResult {
  const minWords = opts.minWords ?? 3;
  const maxChars = opts.maxChars ?? 300;
  let text = raw.replace(/\s+/g, " ").trim();
  text = text.replace(/^(?:\d+[.)]|[-*•])\s+/, "");
  const quoted = /^"([^"]*)"$/.exec(text);
  if (quoted) text = quoted[1]!.trim();
  const reject = (reason: InstructionRejection): CandidateResult => ({ ok: false, reason, text });
  if (text === "") return reject("empty");
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) return reject("control-characters");
  if (!/\p{L}/u.test(text)) return reject("no-letters");
  if (findLeakage(text).length) return reject("delimiter");
  if (findChatMarkup(text) !== null) return reject("chat-markup");
  if (text.length > maxChars) return reject("too-long");
  if (text.split(" ").length < minWords) return reject("too-short");
  if (text.endsWith(":")) return reject("dangling-colon");
  return { ok: true, text };
}

/** parseInstructionList + cleanInstructionCandidate in one step: the usable
 *  instruction texts of one list continuation, and the rest with reasons. */
export function extractInstructions(raw: string, opts: { hitMaxTokens: boolean } & CandidateOptions): { accepted: string[]; rejected: { text: string; reason: InstructionRejection }[] } {
  const accepted: string[] = [];
  const rejected: { text: string; reason: InstructionRejection }[] = [];
  for (const cand of parseInstructionList(raw, opts)) {
    const r = cleanInstructionCandidate(cand, opts);
    if (r.ok) accepted.push(r.text);
    else rejected.push({ text: r.text, reason: r.reason });
  }
  return { accepted, rejected };
}
