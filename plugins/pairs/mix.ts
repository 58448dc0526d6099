// Which chosen example gets which kind of negative. Counts follow the mix exactly
// (largest remainder), and which example gets which kind is a seeded shuffle over the
// whole list, made before sharding, so every shard and every resume agrees on the split.
import { Rng } from "../prompts/rng.ts";
import { NegativeKind } from "../shared/kinds.ts";
import type { NegativeKindName } from "./config.ts";

export const KINDS: readonly NegativeKindName[] = NegativeKind.options;

/** Items of each kind out of `n`, proportional to `mix` (largest remainder; ties in KINDS order). */
export function apportion(n: number, mix: Record<NegativeKindName, number>): Record<NegativeKindName, number> {
  const total = KINDS.reduce((s, k) => s + mix[k], 0);
  const exact = KINDS.map((k) => (n * mix[k]) / total);
  const out = Object.fromEntries(KINDS.map((k, i) => [k, Math.floor(exact[i]!)])) as Record<NegativeKindName, number>;
  let left = n - KINDS.reduce((s, k) => s + out[k], 0);
  const order = KINDS.map((k, i) => ({ k, r: exact[i]! - Math.floor(exact[i]!) })).sort((a, b) => b.r - a.r);
  for (const { k } of order) {
    if (left-- <= 0) break;
    out[k]++;
  }
  return out;
}

/** One kind per item, in item order. */
export function assignKinds(n: number, mix: Record<NegativeKindName, number>, seed: number): NegativeKindName[] {
  const counts = apportion(n, mix);
  const list = KINDS.flatMap((k) => Array<NegativeKindName>(counts[k]).fill(k));
  return new Rng(seed, "negative-kinds", n).shuffle(list);
}
