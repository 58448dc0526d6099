// The stage's two work lists, fixed before any model call so that shards and resumed runs
// agree on them: instructions for best-of-N and chosen examples for synthetic negatives.
// Both come from the trainable sft-examples only (plugins/qc/trainable.ts), in file order,
// duplicates dropped (the same instruction once for best-of-N; the same instruction and
// response once for negatives), then `limit`, then this shard's share (every N-th).
import { normalizeInstruction } from "../prompts/dedupe.ts";
import { isTrainable } from "../qc/trainable.ts";
import type { SftExample } from "../shared/kinds.ts";
import type { NegativeKindName } from "./config.ts";
import { assignKinds } from "./mix.ts";
import type { Chosen } from "./negatives.ts";
import { normalizeText } from "./text.ts";

export interface InstructionItem {
  instructionId: string;
  instruction: string;
}

export interface NegativeItem extends Chosen {
  instructionId: string;
  kind: NegativeKindName;
}

export interface WorkLists {
  bestOfN: InstructionItem[];
  synthetic: NegativeItem[];
  /** Every deduplicated trainable example (not only this shard's): off-topic and run-on material. */
  pool: (Chosen & { instructionId: string })[];
  stats: { examples: number; untrainable: number; duplicateInstructions: number; duplicateExamples: number };
}

type Shard = { index: number; count: number } | null;

function share<T>(items: T[], limit: number | undefined, shard: Shard): T[] {
  const kept = limit !== undefined ? items.slice(0, limit) : items;
  return shard ? kept.filter((_, i) => i % shard.count === shard.index) : kept;
}

export function workLists(examples: readonly SftExample[], o: { shard: Shard; bestOfNLimit?: number; syntheticLimit?: number; mix: Record<NegativeKindName, number>; mixSeed: number }): WorkLists {
  const trainable = examples.filter((e) => isTrainable(e));
  const seenIns = new Set<string>();
  const seenEx = new Set<string>();
  const instructions: InstructionItem[] = [];
  const pool: WorkLists["pool"] = [];
  for (const e of trainable) {
    const ni = normalizeInstruction(e.instruction);
    if (!seenIns.has(ni)) {
      seenIns.add(ni);
      instructions.push({ instructionId: e.instructionId, instruction: e.instruction });
    }
    const ne = `${ni}\0${normalizeText(e.response)}`;
    if (seenEx.has(ne)) continue;
    seenEx.add(ne);
    pool.push({ id: e.id, instructionId: e.instructionId, instruction: e.instruction, response: e.response });
  }
  // Kinds are dealt over the limited list before sharding: the mix holds for the whole run.
  const chosen = o.syntheticLimit !== undefined ? pool.slice(0, o.syntheticLimit) : pool;
  const kinds = assignKinds(chosen.length, o.mix, o.mixSeed);
  const synthetic = share(chosen.map((c, i) => ({ ...c, kind: kinds[i]! })), undefined, o.shard);
  return {
    bestOfN: share(instructions, o.bestOfNLimit, o.shard),
    synthetic,
    pool,
    stats: { examples: examples.length, untrainable: examples.length - trainable.length, duplicateInstructions: trainable.length - instructions.length, duplicateExamples: trainable.length - pool.length },
  };
}
