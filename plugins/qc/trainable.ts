// Which sft-example records are fit to train on. sft.jsonl keeps every
// generation (so QC sees true rates); SFT and pair-making take only these.
import { findChatMarkup, findLeakage } from "../prompts/clean.ts";
import type { SftExample } from "../shared/kinds.ts";

export const UNTRAINABLE_REASONS = ["empty-response", "runaway", "leakage", "chat-markup", "critic-rejected", "instruction-leakage"] as const;
export type UntrainableReason = (typeof UNTRAINABLE_REASONS)[number];

/** Every reason a record must not be trained on; empty when it is fine.
 *  A record without a critic verdict (critic off) is not rejected for that. */
export function untrainableReasons(ex: Pick<SftExample, "instruction" | "response" | "stopReason" | "critic">): UntrainableReason[] {
  const out: UntrainableReason[] = [];
  if (ex.response.trim() === "") out.push("empty-response");
  if (ex.stopReason === "runaway") out.push("runaway");
  if (findLeakage(ex.response).length) out.push("leakage");
  if (findChatMarkup(ex.response) !== null || findChatMarkup(ex.instruction) !== null) out.push("chat-markup");
  if (ex.critic && !ex.critic.accepted) out.push("critic-rejected");
  if (findLeakage(ex.instruction).length) out.push("instruction-leakage");
  return out;
}

export function isTrainable(ex: Pick<SftExample, "instruction" | "response" | "stopReason" | "critic">): boolean {
  return untrainableReasons(ex).length === 0;
}
