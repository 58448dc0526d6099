// sft-example records -> what the engine trains on: the trainable records (plugins/qc's
// rule), rendered with the one training-text builder (plugins/prompts trainingText),
// tokenized whole and masked to the response by character offsets (native/train.ts
// lossMask), with the contamination guard's check that no control/special token slipped in.
import { createHash } from "node:crypto";
import type { Model } from "../../native/index.ts";
import { lossMask, packExamples, type TrainData, type TrainExample } from "../../native/train.ts";
import { trainingText } from "../prompts/prompts.ts";
import { untrainableReasons } from "../qc/trainable.ts";
import type { SftExample } from "../shared/kinds.ts";

export interface PreparedData {
  records: number;
  train: TrainData;
  trainIds: string[];
  heldOut: TrainData | null;
  heldOutIds: string[];
  skipped: Record<string, number>;
  textSha256: string;
  tokensSha256: string;
  tokens: number;
  lossTokens: number;
}

type Tok = Pick<Model, "tokenize" | "tokenBytes" | "info">;

export function specialTokens(tok: Tok): Set<number> {
  return new Set(tok.info.specialTokenIds);
}

/**
 * One training sequence: `trainingText(instruction, response)` tokenized whole, the loss on the
 * response's tokens only (by byte offsets), refused when a special token slipped in or no
 * response token is left to train on. `what` names the record in errors. `allowDelimiters`:
 * only for a preference pair's rejected side (trainingText's rule).
 */
export function encodeTrainingText(tok: Tok, special: Set<number>, what: string, instruction: string, response: string, opts: { allowDelimiters?: boolean } = {}): { text: string; ex: TrainExample } {
  let t;
  try {
    t = trainingText(instruction, response, opts);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  const m = lossMask(tok, t.text, t.lossBytes);
  const hit = m.tokens.find((id) => special.has(id));
  if (hit !== undefined) throw new Error(`${what}: training text contains the special token ${hit} (contamination guard)`);
  if (!m.loss.some((x) => x)) throw new Error(`${what}: no response token to train on`);
  return { text: t.text, ex: { tokens: m.tokens, loss: m.loss } };
}

/** sha256 over the token ids, loss masks and boundaries the engine trains on. */
export function trainDataSha256(data: TrainData): string {
  const h = createHash("sha256");
  h.update(new Uint8Array(data.tokens.buffer, data.tokens.byteOffset, data.tokens.byteLength));
  h.update(data.loss);
  h.update(new Uint8Array(data.offsets.buffer, data.offsets.byteOffset, data.offsets.byteLength));
  return h.digest("hex");
}

export function lossTokenCount(data: TrainData): number {
  let n = 0;
  for (const x of data.loss) n += x;
  return n;
}

/** Seeded, order-independent choice: sort by sha256(seed:id). */
export function heldOutChoice(ids: string[], n: number, seed: number): Set<string> {
  const key = (id: string) => createHash("sha256").update(`${seed}:${id}`).digest("hex");
  return new Set([...ids].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).slice(0, n));
}

export function prepareSftData(records: SftExample[], tok: Tok, opts: { heldOut: number; seed: number }): PreparedData {
  const skipped: Record<string, number> = {};
  const usable: { rec: SftExample; text: string; ex: TrainExample }[] = [];
  const special = specialTokens(tok);
  for (const rec of records) {
    const reasons = untrainableReasons(rec);
    if (reasons.length) {
      for (const r of reasons) skipped[r] = (skipped[r] ?? 0) + 1;
      continue;
    }
    usable.push({ rec, ...encodeTrainingText(tok, special, `sft-example ${rec.id}`, rec.instruction, rec.response) });
  }
  if (usable.length === 0) throw new Error(`no trainable sft-example records (of ${records.length}; skipped: ${JSON.stringify(skipped)})`);
  if (opts.heldOut >= usable.length) throw new Error(`heldOut ${opts.heldOut} leaves nothing to train on (${usable.length} trainable records)`);
  const held = heldOutChoice(usable.map((u) => u.rec.id), opts.heldOut, opts.seed);
  const train = usable.filter((u) => !held.has(u.rec.id));
  const test = usable.filter((u) => held.has(u.rec.id));

  const textHash = createHash("sha256");
  for (const u of train) textHash.update(JSON.stringify([u.rec.id, u.text]) + "\n");
  const data = packExamples(train.map((u) => u.ex));
  return {
    records: records.length,
    train: data,
    trainIds: train.map((u) => u.rec.id),
    heldOut: test.length ? packExamples(test.map((u) => u.ex)) : null,
    heldOutIds: test.map((u) => u.rec.id),
    skipped,
    textSha256: textHash.digest("hex"),
    tokensSha256: trainDataSha256(data),
    tokens: data.tokens.length,
    lossTokens: lossTokenCount(data),
  };
}
