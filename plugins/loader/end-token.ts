// What the special token that ended a completion says about the model (SPEC §2 sentinels).
//
// A base model ends its text with its own end-of-text: the end-of-generation token, the
// BOS that starts its next document (stories260K writes "...ever after.<s>"), or an end
// marker the file does not flag as end-of-generation ("<|end_story|>"). That is fine. A
// chat turn or role marker (<|im_start|>, <|eot_id|>, [INST]) is the chat template
// showing through, even where llama.cpp counts it as end-of-generation (<|im_end|>).
// The unknown token (<unk>: a character the vocabulary lacks) says nothing about chat.
// Any other special token (<|fim_prefix|>, a user-defined token) has no business in a
// completion either.

export type EndTokenKind = "end-of-text" | "chat-markup" | "unknown" | "other-special";

/** Chat-template turn and role markers (narrower than findChatMarkup, which also matches `<s>`/`</s>`). */
const CHAT_TURN =
  /^(?:<\|(?:im_start|im_end|im_sep|system|user|assistant|tool|ipython|eot_id|start_header_id|end_header_id|start_of_turn|end_of_turn)\|>|<(?:start|end)_of_turn>|\[\/?INST\]|<<\/?SYS>>)$/i;

/** A control token whose name says the text ends: <|endoftext|>, <|end_of_text|>, <|end_story|>, <eos>, </s>. */
const END_NAME = /^(?:<\/s>|<\|?[^<>|\s]*(?:end|eos|eot)[^<>|\s]*\|?>)$/i;

export interface EndTokenModel {
  eogTokenIds: readonly number[];
  bos: number | null;
  eos: number | null;
}

/** `type` is the guard's type of the token (specialTokenType), when known. */
export function classifyEndToken(token: { id: number; text: string; type?: string }, info: EndTokenModel): EndTokenKind {
  const text = token.text.trim();
  if (CHAT_TURN.test(text)) return "chat-markup";
  if (info.eogTokenIds.includes(token.id) || token.id === info.bos || token.id === info.eos || END_NAME.test(text)) return "end-of-text";
  if (token.type === "unknown") return "unknown";
  return "other-special";
}
