// Every YAML example in specs/ and the READMEs (README.md, plugins/**/README.md,
// native/README.md) validates with `selftune validate`, so no document shows a key, a plugin
// or a value the code refuses.
//
// - A block with a top-level `name:` is a whole config: validated as it is, in a folder that
//   also holds every file the documents mark `<!-- file: PATH -->` (the guide's plugins).
// - Any other block is a piece of a pipeline (a `stages:` list, or list items `- plugin: ...`):
//   validated inside configs/smoke.yaml, each of its stages in place of smoke's of the same id
//   (or plugin; others appended), so its config meets its plugin's schema and its inputs a
//   producer.
// - A block whose fence is preceded by `<!-- not a config -->` is skipped: an annotated
//   schema with placeholders (`config: { ... }`), not something to run.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { cli, ROOT, tempDir } from "../helpers.ts";

interface Block {
  doc: string;
  line: number;
  yaml: string;
  skipped: boolean;
}

function docs(): string[] {
  const plugins = readdirSync(join(ROOT, "plugins"), { recursive: true, encoding: "utf8" })
    .filter((p) => p.endsWith("README.md") && !p.includes("node_modules"))
    .map((p) => join("plugins", p));
  const specs = readdirSync(join(ROOT, "specs")).filter((p) => p.endsWith(".md")).map((p) => join("specs", p));
  return ["README.md", "native/README.md", ...specs, ...plugins].sort();
}

function yamlBlocks(doc: string): Block[] {
  const md = readFileSync(join(ROOT, doc), "utf8");
  return [...md.matchAll(/(?:^|\n)((?:<!--[^\n]*-->\n)?)```ya?ml\n([\s\S]*?)```/g)].map((m) => ({
    doc,
    line: md.slice(0, m.index! + m[0].indexOf("```")).split("\n").length,
    yaml: m[2]!,
    skipped: m[1]!.includes("not a config"),
  }));
}

function namedFiles(dir: string): void {
  for (const doc of docs()) {
    const md = readFileSync(join(ROOT, doc), "utf8");
    for (const m of md.matchAll(/<!-- file: (\S+) -->\n```[\w-]*\n([\s\S]*?)```/g)) {
      mkdirSync(dirname(join(dir, m[1]!)), { recursive: true });
      writeFileSync(join(dir, m[1]!), m[2]!);
    }
  }
}

/** A piece of a pipeline in the smoke config: its stages replace smoke's of the same id (or plugin), the others are appended. */
function inSmoke(b: Block): string {
  const piece = Bun.YAML.parse(/^stages:/m.test(b.yaml) ? b.yaml : `stages:\n${b.yaml}`) as { stages: Record<string, unknown>[] };
  const smoke = Bun.YAML.parse(readFileSync(join(ROOT, "configs/smoke.yaml"), "utf8")) as { stages: Record<string, unknown>[] };
  const key = (s: Record<string, unknown>) => (s.id ?? s.plugin) as string;
  const stages = [...smoke.stages];
  for (const s of piece.stages) {
    const at = stages.findIndex((t) => key(t) === key(s));
    if (at >= 0) stages[at] = s;
    else stages.push(s);
  }
  // JSON is YAML: the merged config, written whole.
  return JSON.stringify({ ...smoke, name: "doc-example", stages }, null, 2);
}

const blocks = docs().flatMap(yamlBlocks);

describe("YAML examples in the documents", () => {
  test("there are examples to check, and only annotated schemas are skipped", () => {
    expect(blocks.length).toBeGreaterThan(10);
    const skipped = blocks.filter((b) => b.skipped).map((b) => `${b.doc}:${b.line}`);
    expect(skipped).toEqual(["specs/pipeline.md:9"]);
  });

  for (const b of blocks.filter((x) => !x.skipped)) {
    test(`${b.doc}:${b.line} validates`, async () => {
      const dir = tempDir("selftune-doc-yaml-");
      namedFiles(dir);
      const whole = /^name:/m.test(b.yaml);
      const text = whole ? b.yaml : inSmoke(b);
      const file = join(dir, "example.yaml");
      writeFileSync(file, text);
      const r = await cli(["validate", file], { SELFTUNE_MODEL: await tinyModel() }, dir);
      if (r.exitCode !== 0) throw new Error(`${b.doc}:${b.line}: selftune validate failed:\n${r.stderr}\n--- validated:\n${text}`);
      expect(r.stdout).toContain("valid");
    });
  }
});
