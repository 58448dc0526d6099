// The test-set stage (SPEC §8): template-made held-out instructions with
// verifiable checks, 5 types × 40 by default, seeded, disjoint from the prompt
// pools and from any training data named in `exclude:`. It consumes nothing,
// so it can run first or alone; disjointness from data made later in the same
// run is checked where both exist (checkDisjoint, plugins/testset/disjoint.ts).
import { dirname, resolve } from "node:path";
import { definePlugin } from "../../core/plugin.ts";
import { TestInstructionKind } from "../shared/kinds.ts";
import { TestsetConfig } from "./config.ts";
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
    const set = makeTestSet({ seed: c.seed, perType: c.perType, types: c.types, exclude: refs, threshold: c.nearDuplicateThreshold });
    for (const it of set.items) ctx.outputs.tests.write(it);
    ctx.outputs.tests.commit();

    const training = set.collisions.filter((x) => x.source === "training");
    const pool = set.collisions.length - training.length;
    await ctx.writeFile("disjointness.json", JSON.stringify({ threshold: c.nearDuplicateThreshold, onCollision: c.onCollision, excludeFiles: files, collisions: set.collisions }, null, 2) + "\n");
    const summary =
      `${set.items.length} test instructions (${c.types.length} types × ${c.perType}, seed ${c.seed}) checked against ${refs.length} training texts` +
      ` from ${files.length} file(s) and the prompt pools; ${training.length} training collision(s)${c.onCollision === "replace" ? " replaced" : ""}, ${pool} pool collision(s) replaced`;
    ctx.gate({ name: "testset-disjoint", passed: c.onCollision === "replace" || training.length === 0, summary, details: { excludeFiles: files, collisions: training.slice(0, 20) } });
    ctx.log.info(summary);
  },
});
