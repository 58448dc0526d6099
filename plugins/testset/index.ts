// The test-set stage (SPEC §8): template-made held-out instructions with
// verifiable checks, 5 types × 40 by default, seeded, disjoint from the prompt
// pools and from any training data named in `exclude:`. It consumes nothing,
// so it can run first or alone; disjointness from data made later in the same
// run is checked where both exist (checkDisjoint, plugins/testset/disjoint.ts).
import { dirname, resolve } from "node:path";
import { definePlugin } from "../../core/plugin.ts";
import { TestInstructionKind } from "../shared/kinds.ts";
import { readIfevalTests } from "../evaluator/ifeval/tests.ts";
import { sha256File } from "../../core/artifacts.ts";
import { templateTypes, TestsetConfig } from "./config.ts";
import { poolInstructions, ReferenceSet, type Collision } from "./disjoint.ts";
import { readExcludeFiles } from "./exclude.ts";
import { makeTestSet } from "./make.ts";

export default definePlugin({
  name: "testset",
  version: "1.0.0",
  description: "template-made held-out test instructions with verifiable checks, disjoint from training data",
  config: TestsetConfig,
  consumes: {},
  produces: { tests: TestInstructionKind },
  async run(ctx) {
    const c = ctx.config;
    const base = dirname(ctx.run.configPath);
    const { refs, files } = await readExcludeFiles(c.exclude.map((p) => resolve(base, p)));
    const types = templateTypes(c);
    const set = makeTestSet({ seed: c.seed, perType: c.perType, types, exclude: refs, threshold: c.nearDuplicateThreshold });
    // IFEval prompts are a fixed benchmark: a collision is reported (and gated), never replaced.
    const ifevalPath = c.ifeval ? resolve(base, c.ifeval.path) : null;
    const ifeval = ifevalPath ? readIfevalTests(ifevalPath, c.ifeval!.semantics) : [];
    let ifevalCollisions: Collision[] = [];
    if (ifevalPath) {
      const against = new ReferenceSet(c.nearDuplicateThreshold).add(refs, "training").add(poolInstructions(), "pool");
      ifevalCollisions = ifeval.flatMap((t) => against.collision(t.id, t.instruction) ?? []);
      Object.assign(ctx.provenance.extra, { ifeval: { path: ifevalPath, sha256: await sha256File(ifevalPath!), semantics: c.ifeval!.semantics, items: ifeval.length } });
    }
    for (const it of [...set.items, ...ifeval]) ctx.outputs.tests.write(it);
    ctx.outputs.tests.commit();

    const training = set.collisions.filter((x) => x.source === "training");
    const pool = set.collisions.length - training.length;
    await ctx.writeFile("disjointness.json", JSON.stringify({ threshold: c.nearDuplicateThreshold, onCollision: c.onCollision, excludeFiles: files, collisions: set.collisions, ifevalCollisions }, null, 2) + "\n");
    const summary =
      `${set.items.length} test instructions (${types.length} types × ${c.perType}, seed ${c.seed})${ifeval.length ? ` and ${ifeval.length} IFEval prompts (${c.ifeval!.semantics} semantics)` : ""} checked against ${refs.length} training texts` +
      ` from ${files.length} file(s) and the prompt pools; ${training.length} training collision(s)${c.onCollision === "replace" ? " replaced" : ""}, ${pool} pool collision(s) replaced` +
      (ifevalPath ? `; ${ifevalCollisions.length} IFEval prompt(s) collide with training or pool texts (kept: a benchmark is not altered)` : "");
    ctx.gate({ name: "testset-disjoint", passed: (c.onCollision === "replace" || training.length === 0) && ifevalCollisions.length === 0, summary, details: { excludeFiles: files, collisions: [...training, ...ifevalCollisions].slice(0, 20) } });
    ctx.log.info(summary);
  },
});
