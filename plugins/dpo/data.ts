// preference-pair records -> DPO's data: each pair's chosen and rejected response rendered
// and masked exactly as sft renders its examples (plugins/sft/data.ts encodeTrainingText),
// packed with chosen at 2i and rejected at 2i+1 (native/train.ts packPairs).
import { createHash } from "node:crypto";
import type { Model } from "../../native/index.ts";
import { packPairs, type TrainData, type TrainExample } from "../../native/train.ts";
import type { PreferencePair } from "../shared/kinds.ts";
import { encodeTrainingText, heldOutChoice, lossTokenCount, specialTokens, trainDataSha256 } from "../sft/data.ts";

export interface PreparedPairs {
  records: number;
  train: TrainData;
  trainIds: string[];
  heldOut: TrainData | null;
  heldOutIds: string[];
  textSha256: string;
  tokensSha256: string;
  tokens: number;
  lossTokens: number;
  meanLengthDifference: number;
  bySource: Record<string, number>;
}

interface Encoded {
  rec: PreferencePair;
  texts: [string, string];
  pair: { chosen: TrainExample; rejected: TrainExample };
}

const lossCount = (ex: TrainExample) => Array.from(ex.loss).filter(Boolean).length;

export function preparePairs(records: PreferencePair[], tok: Pick<Model, "tokenize" | "tokenBytes" | "info">, opts: { heldOut: number; seed: number }): PreparedPairs {
  const special = specialTokens(tok);
  const seen = new Set<string>();
  const encoded: Encoded[] = records.map((rec) => {
    if (seen.has(rec.id)) throw new Error(`preference-pair ${rec.id}: duplicate id`);
    seen.add(rec.id);
    const c = encodeTrainingText(tok, special, `preference-pair ${rec.id} (chosen)`, rec.instruction, rec.chosen);
    // A format-violation negative runs on into a new turn on purpose (specs/prompts.md §10).
    const r = encodeTrainingText(tok, special, `preference-pair ${rec.id} (rejected)`, rec.instruction, rec.rejected, { allowDelimiters: true });
    return { rec, texts: [c.text, r.text], pair: { chosen: c.ex, rejected: r.ex } };
  });
  if (encoded.length === 0) throw new Error("dpo: the pairs input holds no preference-pair records");
  if (opts.heldOut >= encoded.length) throw new Error(`heldOut ${opts.heldOut} leaves nothing to train on (${encoded.length} pairs)`);
  const held = heldOutChoice(encoded.map((e) => e.rec.id), opts.heldOut, opts.seed);
  const train = encoded.filter((e) => !held.has(e.rec.id));
  const test = encoded.filter((e) => held.has(e.rec.id));

  const textHash = createHash("sha256");
  for (const e of train) textHash.update(JSON.stringify([e.rec.id, ...e.texts]) + "\n");
  const data = packPairs(train.map((e) => e.pair));
  const bySource: Record<string, number> = {};
  for (const e of train) {
    const key = e.rec.negativeKind ? `${e.rec.source}/${e.rec.negativeKind}` : e.rec.source;
    bySource[key] = (bySource[key] ?? 0) + 1;
  }
  const lengthDiff = train.reduce((s, e) => s + lossCount(e.pair.chosen) - lossCount(e.pair.rejected), 0) / train.length;
  return {
    records: records.length,
    train: data,
    trainIds: train.map((e) => e.rec.id),
    heldOut: test.length ? packPairs(test.map((e) => e.pair)) : null,
    heldOutIds: test.map((e) => e.rec.id),
    textSha256: textHash.digest("hex"),
    tokensSha256: trainDataSha256(data),
    tokens: data.tokens.length,
    lossTokens: lossTokenCount(data),
    meanLengthDifference: lengthDiff,
    bySource,
  };
}
