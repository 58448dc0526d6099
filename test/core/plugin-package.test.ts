// "selftune" as a package: a user plugin imports it (and zod) wherever the plugin lives — a
// folder in /tmp with no node_modules near, a project that depends on selftune — the modules
// export exactly the public API that specs/pipeline.md lists, and nothing else resolves.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rewriteHostImports } from "../../core/plugin-imports.ts";
import { cli, ROOT, tempDir } from "../helpers.ts";

/** A plugin that needs "selftune", "selftune/model", "zod" and a relative module that imports zod itself. */
function writePlugin(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "index.ts"),
    `import { z as zz } from "zod";
import { definePlugin, defineKind, z } from "selftune";
import { ModelService } from "selftune/model";
import { double } from "./helper.ts";
const Kind = defineKind("pkg-number", z.strictObject({ n: z.number().int(), same: z.boolean(), service: z.string() }));
export default definePlugin({
  name: "pkg-plugin", version: "0.1.0", description: "imports selftune as a package",
  config: z.strictObject({ n: z.number().int().default(21) }),
  consumes: {}, produces: { out: Kind },
  async run(ctx) {
    ctx.outputs.out.write({ n: double(ctx.config.n), same: zz === z, service: typeof ModelService.of });
    ctx.outputs.out.commit(1);
  },
});
`,
  );
  writeFileSync(join(dir, "helper.ts"), `import { z } from "zod";\nexport const double = (n: number) => z.number().int().parse(n * 2);\n`);
}

async function runPlugin(dir: string, ref: string, cwd: string) {
  const cfg = join(dir, "c.yaml");
  writeFileSync(cfg, `name: pkg\nstages:\n  - plugin: ${ref}\n    config: { n: 21 }\n`);
  const r = await cli(["run", cfg, "--run-dir", join(dir, "run")], {}, cwd);
  return { r, out: join(dir, "run/pkg-plugin/out.jsonl") };
}

const outRecord = (file: string) => JSON.parse(readFileSync(file, "utf8").trim()) as { n: number; same: boolean; service: string; _prov: string };

describe("selftune as a package", () => {
  test("a plugin in a folder outside the checkout with no node_modules near imports selftune, selftune/model and zod", async () => {
    const dir = tempDir("selftune-pkg-bare-");
    writePlugin(join(dir, "my-plugin"));
    const { r, out } = await runPlugin(dir, "./my-plugin/index.ts", dir);
    expect(r.stderr).not.toContain("Cannot find package");
    expect(r.exitCode).toBe(0);
    // The plugin's zod is the one selftune re-exports: one zod for core and plugin.
    expect(outRecord(out)).toEqual({ n: 42, same: true, service: "function", _prov: "pkg/pkg-plugin" });
  });

  test("in a project that depends on selftune, the plugin gets the running selftune's zod, not the project's", async () => {
    const dir = tempDir("selftune-pkg-dep-");
    const modules = join(dir, "node_modules");
    mkdirSync(modules);
    symlinkSync(ROOT, join(modules, "selftune"));
    // A zod of the project's own that must never be what the plugin gets.
    mkdirSync(join(modules, "zod"));
    writeFileSync(join(modules, "zod/package.json"), JSON.stringify({ name: "zod", version: "0.0.0", type: "module", main: "index.js" }));
    writeFileSync(join(modules, "zod/index.js"), `throw new Error("the project's own zod was loaded");\n`);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "user-project", type: "module", dependencies: { selftune: "link:selftune" } }));
    writePlugin(join(dir, "plugins/mine"));
    const { r, out } = await runPlugin(dir, "./plugins/mine/index.ts", dir);
    expect(r.stderr).not.toContain("own zod");
    expect(r.exitCode).toBe(0);
    expect(outRecord(out)).toEqual({ n: 42, same: true, service: "function", _prov: "pkg/pkg-plugin" });
  });

  test("in a project that depends on selftune, tsc types a plugin by the package's exports", async () => {
    const dir = tempDir("selftune-pkg-tsc-");
    mkdirSync(join(dir, "node_modules/@types"), { recursive: true });
    symlinkSync(ROOT, join(dir, "node_modules/selftune"));
    symlinkSync(join(ROOT, "node_modules/@types/bun"), join(dir, "node_modules/@types/bun"));
    symlinkSync(join(ROOT, "node_modules/bun-types"), join(dir, "node_modules/bun-types"));
    const compilerOptions = { target: "ESNext", module: "Preserve", moduleResolution: "bundler", lib: ["ESNext"], types: ["bun"], strict: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true, verbatimModuleSyntax: true };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["*.ts"] }));
    const plugin = (body: string) =>
      `import { definePlugin, SftExampleKind, z } from "selftune";\nimport type { LoadedModel } from "selftune/model";\n` +
      `export type M = LoadedModel;\nexport default definePlugin({ name: "p", version: "0.1.0", description: "typed", config: z.strictObject({}), consumes: { e: SftExampleKind }, produces: {},\n` +
      `  async run(ctx) { for await (const e of ctx.inputs.e) { ${body} } } });\n`;
    const tsc = () => {
      const r = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), "-p", "."], { cwd: dir });
      return { exitCode: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
    };
    writeFileSync(join(dir, "p.ts"), plugin("const s: string = e.response; void s;"));
    expect(tsc()).toEqual({ exitCode: 0, out: "" });
    writeFileSync(join(dir, "p.ts"), plugin("const n: number = e.response; void n;"));
    const bad = tsc();
    expect(bad.exitCode).not.toBe(0);
    expect(bad.out).toContain("p.ts(5,");
    expect(bad.out).toContain("not assignable to type 'number'");
  });

  test("only the public entry points resolve; internals stay internal", () => {
    expect(Bun.resolveSync("selftune", ROOT)).toBe(join(ROOT, "plugins/api/selftune.ts"));
    expect(Bun.resolveSync("selftune/model", ROOT)).toBe(join(ROOT, "plugins/api/model.ts"));
    expect(() => Bun.resolveSync("selftune/core/plugin.ts", ROOT)).toThrow();
    expect(() => Bun.resolveSync("selftune/plugins/shared/kinds.ts", ROOT)).toThrow();
  });

  test("the runtime exports of selftune and selftune/model are exactly the values specs/pipeline.md lists", async () => {
    const spec = readFileSync(join(ROOT, "specs/pipeline.md"), "utf8");
    const section = spec.slice(spec.indexOf("## Public API"), spec.indexOf("\n## ", spec.indexOf("## Public API") + 1));
    const listed = (entry: string) => {
      const block = section.split(`\n\`${entry}\` (`)[1]!.split("\n\n")[0]!;
      const values = block.split("\n").filter((l) => l.startsWith("- ") && !l.startsWith("- types only:"));
      // Every bare identifier in backticks (paths and calls in the commentary are not bare).
      return values.flatMap((l) => [...l.matchAll(/`([A-Za-z_]\w*)`/g)].map((m) => m[1]!)).sort();
    };
    const main = Object.keys(await import("selftune")).sort();
    const model = Object.keys(await import("selftune/model")).sort();
    expect(main.length).toBeGreaterThan(20);
    expect(listed("selftune")).toEqual(main);
    expect(listed("selftune/model")).toEqual(model);
  });

  test("the rewrite touches import specifiers of selftune and zod only", () => {
    const src = [
      `import { a } from "selftune";`,
      `import type { M } from 'selftune/model';`,
      `export { z } from "zod";`,
      `const m = await import("zod");`,
      `import "selftune";`,
      `const name = "selftune"; import x from "selftune-extra"; import y from "./zod.ts";`,
    ].join("\n");
    const out = rewriteHostImports(src).split("\n");
    expect(out[0]).toBe(`import { a } from "${join(ROOT, "plugins/api/selftune.ts")}";`);
    expect(out[1]).toBe(`import type { M } from '${join(ROOT, "plugins/api/model.ts")}';`);
    expect(out[2]).toBe(`export { z } from "${Bun.resolveSync("zod", ROOT)}";`);
    expect(out[3]).toBe(`const m = await import("${Bun.resolveSync("zod", ROOT)}");`);
    expect(out[4]).toBe(`import "${join(ROOT, "plugins/api/selftune.ts")}";`);
    expect(out[5]).toBe(`const name = "selftune"; import x from "selftune-extra"; import y from "./zod.ts";`);
  });
});
