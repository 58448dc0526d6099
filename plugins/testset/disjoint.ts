// Disjointness of test instructions from training data (SPEC §8): no test
// instruction may equal a training instruction after normalisation or be a
// near-duplicate of one (plugins/prompts/dedupe.ts, Jaccard of character
// 5-grams ≥ threshold). The texts of the few-shot pools are training data too:
// every generation prompt shows them.
import { DuplicateIndex } from "../prompts/dedupe.ts";
import { INSTRUCTION_CRITIC_EXAMPLES, PAIR_CRITIC_EXAMPLES, RESPONSE_POOL, SEED_TASKS } from "../prompts/pool.ts";

export interface TextRef {
  id: string;
  text: string;
}

export interface Collision {
  /** The test item's id, or null for a candidate that was replaced before it got one. */
  testId: string | null;
  test: string;
  /** "pool" (a few-shot or critic example) or "training" (given training data). */
  source: "pool" | "training";
  trainId: string;
  train: string;
  kind: "exact" | "near";
  similarity: number;
}

/** Every instruction text that appears in a prompt the pipeline builds. */
export function poolInstructions(): TextRef[] {
  return [
    ...RESPONSE_POOL.map((e) => ({ id: `pool:${e.id}`, text: e.instruction })),
    ...SEED_TASKS.map((t) => ({ id: `pool:${t.id}`, text: t.text })),
    ...INSTRUCTION_CRITIC_EXAMPLES.map((e, i) => ({ id: `pool:instruction-critic-${i + 1}`, text: e.instruction })),
    ...PAIR_CRITIC_EXAMPLES.map((e, i) => ({ id: `pool:pair-critic-${i + 1}`, text: e.instruction })),
  ];
}

/** A reference set to test candidates against; keeps the texts for reports. */
export class ReferenceSet {
  private readonly index: DuplicateIndex;
  private readonly texts = new Map<string, { text: string; source: Collision["source"] }>();

  constructor(threshold = 0.7) {
    this.index = new DuplicateIndex({ threshold });
  }

  add(refs: Iterable<TextRef>, source: Collision["source"]): this {
    for (const r of refs) {
      this.index.insert(r.id, r.text);
      this.texts.set(r.id, { text: r.text, source });
    }
    return this;
  }

  get size(): number {
    return this.index.size;
  }

  /** The collision of `test` with the most similar reference text, or null. */
  collision(testId: string | null, test: string): Collision | null {
    const v = this.index.check(test);
    if (v.kind === "unique") return null;
    const ref = this.texts.get(v.of)!;
    return { testId, test, source: ref.source, trainId: v.of, train: ref.text, kind: v.kind, similarity: v.similarity };
  }
}

/**
 * Check finished test items against training texts (and, unless told not to,
 * the prompt pools). Returns every colliding test item; empty means disjoint.
 * This is the check a stage that has both sets at hand (e.g. the evaluator,
 * wired to the sft-example records it trained on) should run.
 */
export function checkDisjoint(tests: readonly { id: string; instruction: string }[], training: Iterable<TextRef>, opts: { threshold?: number; includePools?: boolean } = {}): Collision[] {
  const refs = new ReferenceSet(opts.threshold ?? 0.7).add(training, "training");
  if (opts.includePools ?? true) refs.add(poolInstructions(), "pool");
  return tests.flatMap((t) => refs.collision(t.id, t.instruction) ?? []);
}
