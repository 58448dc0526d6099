// The plugin guide runs as written: the code blocks of plugins/README.md and of README.md's
// "Your own plugin" that are marked `<!-- file: PATH -->` are written to a folder outside the
// checkout and run through the CLI — as they are, then interrupted by SIGINT while the
// importer reads and while the filter runs, and resumed — so the guide cannot drift from the code.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { cli, interruptAt, ROOT, tempDir } from "../helpers.ts";

/** `<!-- file: PATH -->` followed by a fenced block: PATH -> the block's text. */
export function namedBlocks(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of markdown.matchAll(/<!-- file: (\S+) -->\n```[\w-]*\n([\s\S]*?)```/g)) out.set(m[1]!, m[2]!);
  return out;
}

function writeGuide(dir: string): Map<string, string> {
  const files = new Map([...namedBlocks(readFileSync(join(ROOT, "plugins/README.md"), "utf8")), ...namedBlocks(readFileSync(join(ROOT, "README.md"), "utf8"))]);
  for (const [path, text] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return files;
}

const jsonl = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

async function waitFor(cond: () => boolean, what: string) {
  for (let i = 0; i < 3000; i++) {
    if (cond()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("the plugin guide, run as written", () => {
  test("its blocks are there: the config, the data and both plugins of plugins/README.md, README.md's plugin and config", () => {
    const files = writeGuide(tempDir("selftune-guide-"));
    expect([...files.keys()].sort()).toEqual(["data.jsonl", "my-filter/index.ts", "my-import/index.ts", "my-run.yaml", "my-step/index.ts", "selftune.yaml"]);
    for (const [path, text] of files) if (path.endsWith(".ts")) expect(text).toContain(`from "selftune"`);
  });

  test("plugins/README.md's config runs both plugins from a folder outside the checkout; README.md's runs its plugin after the importer", async () => {
    const dir = tempDir("selftune-guide-");
    writeGuide(dir);
    const r = await cli(["run", "selftune.yaml"], {}, dir);
    expect(r.stderr).not.toContain("error");
    expect(r.exitCode).toBe(0);
    const imported = jsonl(join(dir, "runs/my-data/my-import/examples.jsonl"));
    const data = jsonl(join(dir, "data.jsonl"));
    expect(imported.map((e) => [e.instruction, e.response, e.origin])).toEqual(data.map((d) => [d.instruction, d.response, "imported"]));
    const kept = jsonl(join(dir, "runs/my-data/my-filter/kept.jsonl"));
    expect(kept.map((e) => e.response)).toEqual(data.filter((d) => words(d.response) >= 3).map((d) => d.response));
    expect(kept.length).toBe(2); // the guide says so

    const r2 = await cli(["run", "my-run.yaml"], {}, dir);
    expect(r2.exitCode).toBe(0);
    const instructions = jsonl(join(dir, "runs/my-run/my-step/instructions.jsonl"));
    expect(instructions.map((i) => [i.text, i.origin])).toEqual(data.map((d) => [d.instruction, "hand-made"]));
  });

  test("interrupted by SIGINT while the importer reads, the re-run resumes at its last commit: every record once, the committed ones not redone", async () => {
    const dir = tempDir("selftune-guide-");
    writeGuide(dir);
    const data = join(dir, "data.jsonl");
    const line = (n: number, tag: string) => `${JSON.stringify({ instruction: `Question ${n}?`, response: n % 4 === 0 ? "Short." : `The ${tag} answer to question ${n}.` })}\n`;
    const N = 100;
    // The importer reads a pipe the test feeds, so it is mid-file for as long as the test wants.
    rmSync(data);
    expect(Bun.spawnSync(["mkfifo", data]).exitCode).toBe(0);
    const feeder = Bun.spawn(["sh", "-c", `exec cat > '${data}'`], { stdin: "pipe" });
    const child = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", "selftune.yaml"], { cwd: dir, stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
    for (let n = 1; n <= 45; n++) feeder.stdin.write(line(n, "first"));
    feeder.stdin.flush();
    const commitFile = join(dir, "runs/my-data/my-import/examples.jsonl.commit.json");
    const cursor = () => (existsSync(commitFile) ? (JSON.parse(readFileSync(commitFile, "utf8")).cursor as number) : 0);
    await waitFor(() => cursor() >= 40, "the importer to commit 40 lines");
    child.kill("SIGINT");
    await Bun.sleep(100);
    feeder.stdin.write(line(46, "first")); // the importer sees the abort at its next line
    feeder.stdin.end();
    expect(await child.exited).toBe(130);
    await feeder.exited;
    expect(existsSync(join(dir, "runs/my-data/my-import/examples.jsonl"))).toBe(false);
    const committed = cursor();
    expect(committed).toBe(40);

    // The re-run reads a file whose first lines differ: a resumed importer keeps the committed records.
    rmSync(data);
    writeFileSync(data, Array.from({ length: N }, (_, i) => line(i + 1, i + 1 <= committed ? "second" : "first")).join(""));
    const r = await cli(["run", "selftune.yaml"], {}, dir);
    expect(r.exitCode).toBe(0);
    const imported = jsonl(join(dir, "runs/my-data/my-import/examples.jsonl"));
    expect(imported.map((e) => e.id)).toEqual(Array.from({ length: N }, (_, i) => `import-${i + 1}`));
    expect(imported.filter((e) => e.response.includes("second")).length).toBe(0);
    const expected = Array.from({ length: N }, (_, i) => JSON.parse(line(i + 1, "first")).response as string);
    expect(imported.map((e) => e.response)).toEqual(expected);
    const kept = jsonl(join(dir, "runs/my-data/my-filter/kept.jsonl"));
    expect(kept.map((e) => e.response)).toEqual(expected.filter((t) => words(t) >= 3));
    expect(kept.length).toBe(75);
  });

  test("interrupted by SIGINT while the filter runs, the re-run keeps every kept record exactly once", async () => {
    const dir = tempDir("selftune-guide-");
    writeGuide(dir);
    const N = 20_000;
    const response = (n: number) => (n % 3 === 0 ? `Yes ${n}.` : `The answer to question ${n} is this.`);
    writeFileSync(join(dir, "data.jsonl"), Array.from({ length: N }, (_, i) => `${JSON.stringify({ instruction: `Question ${i + 1}?`, response: response(i + 1) })}\n`).join(""));
    const child = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", "selftune.yaml"], { cwd: dir, stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
    // Interrupted at the filter's first resume point: mid-stage on any machine.
    const commitFile = join(dir, "runs/my-data/my-filter/kept.jsonl.commit.json");
    expect(await interruptAt(child, commitFile)).toBe(true);
    expect(await child.exited).toBe(130);
    const cursor = JSON.parse(readFileSync(commitFile, "utf8")).cursor as number;
    expect(cursor).toBeGreaterThan(0);
    expect(cursor).toBeLessThan(N);
    const r = await cli(["run", "selftune.yaml"], {}, dir);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("resuming an interrupted attempt");
    const kept = readFileSync(join(dir, "runs/my-data/my-filter/kept.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).id as string);
    const want = Array.from({ length: N }, (_, i) => i + 1).filter((n) => words(response(n)) >= 3).map((n) => `import-${n}`);
    expect(kept.length).toBe(want.length);
    expect(kept).toEqual(want);
  });
});
