// Drawing the test set from the templates: seeded, deterministic (the same
// seed and options give byte-identical records), varied (templates taken in
// turn, no topic twice), and disjoint from the prompt pools and any training
// texts given (a colliding candidate is skipped and the next one taken).
import { CheckSpecs, type TestType } from "../evaluator/checks/spec.ts";
import { assertInstruction } from "../prompts/prompts.ts";
import { DuplicateIndex } from "../prompts/dedupe.ts";
import { Rng } from "../prompts/rng.ts";
import type { TestInstruction } from "../shared/kinds.ts";
import { poolInstructions, ReferenceSet, type Collision, type TextRef } from "./disjoint.ts";
import { TEMPLATES, type Candidate } from "./templates.ts";

export interface MakeOptions {
  seed: number;
  perType: number;
  types: readonly TestType[];
  /** Training texts the test set must not duplicate. */
  exclude?: Iterable<TextRef>;
  /** Near-duplicate threshold (Jaccard of character 5-grams). */
  threshold?: number;
}

export interface TestSet {
  items: TestInstruction[];
  /** Candidates skipped because they collided with a pool or training text. */
  collisions: Collision[];
}

/** Candidates of one type in the order they are tried. */
function candidateQueues(type: TestType, seed: number): Candidate[][] {
  // Each template gets its own generator, so adding a template leaves the
  // others' draws unchanged.
  const queues = TEMPLATES[type].map((t) => new Rng(seed, "testset-order", t.id).shuffle(t.expand(new Rng(seed, "testset-fill", t.id))));
  return new Rng(seed, "testset-templates", type).shuffle(queues);
}

export function makeTestSet(opts: MakeOptions): TestSet {
  const threshold = opts.threshold ?? 0.7;
  const refs = new ReferenceSet(threshold).add(poolInstructions(), "pool").add(opts.exclude ?? [], "training");
  const items: TestInstruction[] = [];
  const collisions: Collision[] = [];
  for (const type of opts.types) {
    const queues = candidateQueues(type, opts.seed);
    const chosen = new DuplicateIndex({ threshold });
    const topics = new Set<string>();
    let n = 0;
    // Round robin over the templates: one item from each in turn.
    while (n < opts.perType && queues.some((q) => q.length)) {
      for (const q of queues) {
        if (n >= opts.perType) break;
        let c: Candidate | undefined;
        while ((c = q.shift())) {
          if (topics.has(c.topic)) continue;
          const hit = refs.collision(null, c.instruction);
          if (hit) {
            collisions.push(hit);
            continue;
          }
          if (chosen.check(c.instruction).kind !== "unique") continue;
          break;
        }
        if (!c) continue;
        assertInstruction(c.instruction, `template ${c.template}`);
        topics.add(c.topic);
        n++;
        const id = `${type}-${String(n).padStart(3, "0")}`;
        chosen.add(id, c.instruction);
        // Parsing fills every check default in, so records are explicit and stable.
        items.push({ id, type, template: c.template, instruction: c.instruction, checks: CheckSpecs.parse(c.checks), seed: opts.seed });
      }
    }
    if (n < opts.perType) throw new Error(`test type '${type}': only ${n} distinct candidates left after removing duplicates and collisions; asked for ${opts.perType} (lower perType or add templates)`);
  }
  return { items, collisions };
}
