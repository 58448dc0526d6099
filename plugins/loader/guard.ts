// The contamination guard (SPEC §2): what the model is given is plain completion
// text, never chat-template structure.
//
// - Tokenization adds no BOS/EOS and parses no special tokens. The addon does that
//   by default for control tokens; llama.cpp still matches *user-defined* tokens
//   (e.g. Qwen2's "[PAD151646]" or "<tool_call>") in plain text. `tokenize()` here
//   closes that gap: text that would become a special id is re-tokenized in plain
//   pieces, so special-token text always stays ordinary text.
// - `guardPrompt(tokens, text, promptName)` checks the token ids actually sent
//   against the model's special ids (control, user-defined, unknown, end-of-
//   generation, BOS/EOS/...), an explicit allow-list aside; a hit is a GuardError
//   naming the prompt, the token and where it sits. Every plugin calls it (through
//   `tokenizePrompt`) before a prompt reaches the model.
import type { Model } from "../../native/index.ts";
import type { ModelInfo } from "../shared/kinds.ts";

export interface GuardToken {
  id: number;
  text: string;
  type: string;
}

export class GuardError extends Error {
  constructor(
    readonly promptName: string,
    readonly token: GuardToken,
    readonly position: number,
    context: string,
  ) {
    super(`contamination guard: prompt '${promptName}' contains special token ${token.id} ${JSON.stringify(token.text)} (${token.type}) at token ${position}${context ? ` near ${JSON.stringify(context)}` : ""}; special tokens never reach the model (allow it explicitly with the loader's allowSpecialTokens)`);
    this.name = "GuardError";
  }
}

/** The vocabulary's type for a special token, from llama.cpp's attributes. */
export function specialTokenType(attributes: readonly string[]): string {
  for (const t of ["control", "user_defined", "unknown", "unused", "byte"]) if (attributes.includes(t)) return t.replace("_", "-");
  if (attributes.includes("eog")) return "end-of-generation";
  return attributes.filter((a) => a !== "normal")[0] ?? "special";
}

/** The special tokens of a loaded model as model-info records them. */
export function specialTokensOf(model: Model): GuardToken[] {
  const seen = new Set<number>();
  const out: GuardToken[] = [];
  for (const t of model.info.specialTokens) {
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    out.push({ id: t.id, text: t.text, type: specialTokenType(t.attributes) });
  }
  for (const [name, id] of [["bos", model.info.bos], ["eos", model.info.eos], ["eot", model.info.eot], ["sep", model.info.sep], ["pad", model.info.pad]] as const) {
    if (id === null || seen.has(id)) continue;
    seen.add(id);
    out.push({ id, text: model.tokenPiece(id), type: name });
  }
  return out.sort((a, b) => a.id - b.id);
}

/** Resolve an allow-list of ids or token texts against the special tokens. */
export function resolveAllowList(allow: readonly (number | string)[], special: readonly GuardToken[]): number[] {
  const out = new Set<number>();
  for (const a of allow) {
    const hit = typeof a === "number" ? special.find((t) => t.id === a) : special.find((t) => t.text === a);
    if (!hit) throw new Error(`allowSpecialTokens: ${JSON.stringify(a)} is not a special token of this model`);
    out.add(hit.id);
  }
  return [...out].sort((a, b) => a - b);
}

export class ContaminationGuard {
  /** Special ids a prompt must not contain (allow-list removed). */
  readonly blocked: ReadonlyMap<number, GuardToken>;
  readonly allowed: readonly number[];
  /** Every special token of the model, allowed ones included. */
  readonly special: readonly GuardToken[];

  constructor(
    private readonly model: Model,
    special: readonly GuardToken[],
    allowed: readonly number[] = [],
  ) {
    this.allowed = [...allowed];
    this.special = [...special].sort((a, b) => a.id - b.id);
    const allow = new Set(allowed);
    this.blocked = new Map(special.filter((t) => !allow.has(t.id)).map((t) => [t.id, t]));
  }

  /** A guard from the loaded model's own special tokens. */
  static forModel(model: Model, allow: readonly (number | string)[] = []): ContaminationGuard {
    const special = specialTokensOf(model);
    return new ContaminationGuard(model, special, resolveAllowList(allow, special));
  }

  /**
   * A guard from a model-info record (what the loader recorded), checked against the
   * loaded model: every special id the model has must be in the record.
   */
  static fromInfo(model: Model, info: Pick<ModelInfo, "specialTokens" | "allowedSpecialTokens">): ContaminationGuard {
    const recorded = new Set(info.specialTokens.map((t) => t.id));
    const missing = specialTokensOf(model).filter((t) => !recorded.has(t.id));
    if (missing.length) throw new Error(`contamination guard: the model has special tokens the model-info record lacks (${missing.slice(0, 5).map((t) => `${t.id} ${JSON.stringify(t.text)}`).join(", ")}): re-run the load stage`);
    return new ContaminationGuard(model, info.specialTokens, info.allowedSpecialTokens);
  }

  /** The first blocked id in `tokens`, or null. */
  findSpecial(tokens: ArrayLike<number>): { position: number; token: GuardToken } | null {
    for (let i = 0; i < tokens.length; i++) {
      const t = this.blocked.get(tokens[i]!);
      if (t) return { position: i, token: t };
    }
    return null;
  }

  /**
   * Check the token ids of a prompt before it is sent. Throws a GuardError naming the
   * prompt and the first special token found; `text` (the prompt's text, when known)
   * only serves the message.
   */
  guardPrompt(tokens: ArrayLike<number>, text: string | null, promptName: string): void {
    const hit = this.findSpecial(tokens);
    if (!hit) return;
    let context = "";
    try {
      const ids = Array.from(tokens);
      context = this.model.detokenize(ids.slice(Math.max(0, hit.position - 8), hit.position + 1), { unparseSpecial: true }).slice(-60);
    } catch {
      context = text?.slice(0, 60) ?? "";
    }
    throw new GuardError(promptName, hit.token, hit.position, context);
  }

  /**
   * Plain-text tokenization: no BOS/EOS, no special-token parsing, and text that
   * llama.cpp would still turn into a (user-defined) special id is split into plain
   * pieces. The result never contains a blocked id.
   */
  tokenize(text: string): number[] {
    const ids = this.model.tokenize(text, { addSpecial: false, parseSpecial: false });
    if (!this.findSpecial(ids)) return ids;
    return this.tokenizePlain(text, 0);
  }

  /** Does `text` hold the literal text of a special token (one llama.cpp would match)? */
  containsSpecialText(text: string): GuardToken | null {
    const hit = this.findSpecial(this.model.tokenize(text, { addSpecial: false, parseSpecial: false }));
    return hit?.token ?? null;
  }

  private tokenizePlain(text: string, depth: number): number[] {
    const ids = this.model.tokenize(text, { addSpecial: false, parseSpecial: false });
    const hit = this.findSpecial(ids);
    if (!hit) return ids;
    if (depth > 64) throw new Error(`contamination guard: cannot tokenize ${JSON.stringify(text.slice(0, 60))} without special token ${hit.token.id}`);
    // Split at the first occurrence of the special token's text: before it normally,
    // the token text itself broken after its first character, the rest recursively.
    const lit = hit.token.text;
    const at = lit ? text.indexOf(lit) : -1;
    if (at < 0 || lit.length < 2) {
      // Fall back to one character at a time around the hit.
      if (text.length <= 1) throw new Error(`contamination guard: ${JSON.stringify(text)} tokenizes to special token ${hit.token.id}`);
      const mid = Math.ceil(text.length / 2);
      return [...this.tokenizePlain(text.slice(0, mid), depth + 1), ...this.tokenizePlain(text.slice(mid), depth + 1)];
    }
    const head = text.slice(0, at);
    const first = Array.from(lit)[0]!;
    return [
      ...(head ? this.tokenizePlain(head, depth + 1) : []),
      ...this.tokenizePlain(first, depth + 1),
      ...this.tokenizePlain(lit.slice(first.length), depth + 1),
      ...(at + lit.length < text.length ? this.tokenizePlain(text.slice(at + lit.length), depth + 1) : []),
    ];
  }

  /** Tokenize a prompt in plain text and guard the ids: what every plugin sends. */
  tokenizePrompt(text: string, promptName: string): number[] {
    const ids = this.tokenize(text);
    this.guardPrompt(ids, text, promptName);
    return ids;
  }
}
