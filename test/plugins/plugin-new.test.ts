// `selftune plugin new`: the scaffolded folder, put outside the checkout, passes its own test
// as generated (which runs it in a config through the CLI), typechecks with its tsconfig, and
// its test fails when the plugin stops doing what it should.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, interruptAt, ROOT, tempDir } from "../helpers.ts";

async function run(cmd: string[], cwd: string) {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, out: stdout + stderr };
}

async function scaffold(name: string, consumes: string, produces: string): Promise<string> {
  const parent = tempDir("selftune-new-");
  const r = await cli(["plugin", "new", name, "--consumes", consumes, "--produces", produces, "--dir", parent]);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  return join(parent, name);
}

describe("selftune plugin new", () => {
  const pairs: [string, string][] = [
    ["sft-example", "sft-example"],
    ["instruction", "test-instruction"],
    ["test-instruction", "preference-pair"],
    ["preference-pair", "instruction"],
  ];
  for (const [consumes, produces] of pairs) {
    test(`--consumes ${consumes} --produces ${produces}: the folder passes its own test as generated`, async () => {
      const dir = await scaffold("my-step", consumes, produces);
      const t = await run(["bun", "test"], dir);
      expect(t.out).toContain("1 pass");
      expect(t.out).toContain("0 fail");
      expect(t.exitCode).toBe(0);
      // The output really is of the kind asked for: the stage's manifest entry names it.
      const manifest = await run(["bun", join(ROOT, "core/cli.ts"), "validate", "example/config.yaml"], dir);
      expect(manifest.exitCode).toBe(0);
      const plugins = await cli(["plugins", join(dir, "index.ts")]);
      expect(JSON.parse(plugins.stdout)).toMatchObject({ name: "my-step", consumes: { input: consumes }, produces: { output: produces } });
    });
  }

  test("the scaffold typechecks with its tsconfig, and its index.ts has a resumable loop with described config fields", async () => {
    const dir = await scaffold("typed-step", "sft-example", "sft-example");
    const index = readFileSync(join(dir, "index.ts"), "utf8");
    expect(index).toContain(`from "selftune"`);
    expect(index).toContain("out.commit(seen)");
    expect(index).toContain("out.cursor");
    const schema = JSON.parse((await cli(["plugins", join(dir, "index.ts")])).stdout).config;
    for (const key of ["minChars", "commitEvery"]) expect(schema.properties[key].description.length).toBeGreaterThan(10);
    const tsc = await run([join(ROOT, "node_modules/.bin/tsc"), "-p", "."], dir);
    expect(tsc.out).toBe("");
    expect(tsc.exitCode).toBe(0);
    // tsc really checks the plugin against selftune's types.
    writeFileSync(join(dir, "index.ts"), index.replace("if (made) out.write(made);", "if (made) out.write({ ...made, seed: \"seven\" });"));
    expect((await run([join(ROOT, "node_modules/.bin/tsc"), "-p", "."], dir)).exitCode).not.toBe(0);
  });

  test("its loop resumes: interrupted at its first commit, the re-run writes every output exactly once", async () => {
    const dir = await scaffold("resumable-step", "sft-example", "instruction");
    const N = 20_000;
    writeFileSync(join(dir, "big.yaml"), `name: big\nstages:\n  - plugin: ./example/source.ts\n    config: { count: ${N} }\n  - plugin: ./index.ts\n    config: { commitEvery: 100 }\n`);
    const child = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", "big.yaml"], { cwd: dir, stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
    // Interrupted at the plugin's first resume point: mid-stage on any machine.
    const commitFile = join(dir, "runs/big/resumable-step/output.jsonl.commit.json");
    expect(await interruptAt(child, commitFile)).toBe(true);
    expect(await child.exited).toBe(130);
    const cursor = JSON.parse(readFileSync(commitFile, "utf8")).cursor as number;
    expect(cursor).toBeGreaterThan(0);
    expect(cursor).toBeLessThan(N);
    const again = await run(["bun", join(ROOT, "core/cli.ts"), "run", "big.yaml"], dir);
    expect(again.exitCode).toBe(0);
    expect(again.out).toContain("resuming an interrupted attempt");
    const ids = readFileSync(join(dir, "runs/big/resumable-step/output.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).id as string);
    expect(ids).toEqual(Array.from({ length: N }, (_, n) => `src-${n}-resumable-step`));
  });

  test("its test can fail: a plugin that writes nothing fails it", async () => {
    const dir = await scaffold("lazy-step", "sft-example", "instruction");
    const index = join(dir, "index.ts");
    writeFileSync(index, readFileSync(index, "utf8").replace("if (made) out.write(made);", "void made;"));
    const t = await run(["bun", "test"], dir);
    expect(t.exitCode).not.toBe(0);
    expect(t.out).toContain("1 fail");
  });

  test("bad arguments are errors that say what is wrong", async () => {
    const parent = tempDir("selftune-new-");
    const kind = await cli(["plugin", "new", "x", "--consumes", "qc-report", "--dir", parent]);
    expect(kind.exitCode).toBe(1);
    expect(kind.stderr).toContain("--consumes qc-report: not a kind a plugin can be scaffolded for (sft-example, instruction, preference-pair, test-instruction)");
    const name = await cli(["plugin", "new", "My_Plugin", "--dir", parent]);
    expect(name.stderr).toContain("must be lower-case kebab-case");
    expect((await cli(["plugin", "new", "twice", "--dir", parent])).exitCode).toBe(0);
    const again = await cli(["plugin", "new", "twice", "--dir", parent]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain("already exists");
  });
});
