// `selftune plugin new <name>`: scaffold a plugin folder that runs in a config and passes its
// own test as generated (test/plugins/plugin-new.test.ts runs both). Everything it writes uses
// the public API only ("selftune"), so the folder works wherever it is put.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

/** How the scaffold reads and makes each kind a plugin may consume or produce (the record builders' kinds). */
const KINDS = {
  "sft-example": { kind: "SftExampleKind", type: "SftExample", text: "r.instruction", response: "r.response" },
  instruction: { kind: "InstructionKind", type: "Instruction", text: "r.text", response: null },
  "preference-pair": { kind: "PreferencePairKind", type: "PreferencePair", text: "r.instruction", response: "r.chosen" },
  "test-instruction": { kind: "TestInstructionKind", type: "TestInstruction", text: "r.instruction", response: null },
} as const;
type KindName = keyof typeof KINDS;

/** The record of kind `k` the scaffold makes from an id, an instruction and maybe a response (expressions in generated code). */
function make(k: KindName, id: string, text: string, response: string): string {
  switch (k) {
    case "sft-example":
      return `sftExampleRecord({ id: ${id}, instruction: ${text}, response: ${response}, origin: "hand-made" })`;
    case "instruction":
      return `instructionRecord({ id: ${id}, text: ${text}, origin: "hand-made" })`;
    case "preference-pair":
      // A pair needs two different responses: the answer against a refusal (a synthetic negative).
      return `preferencePairRecord({ id: ${id}, instruction: ${text}, chosen: ${response} || "I do not know.", rejected: "I cannot help with that.", negativeKind: "refusal", origin: "hand-made" })`;
    case "test-instruction":
      return `testInstructionRecord({ id: ${id}, instruction: ${text}, type: "factual" })`;
  }
}

const BUILDER: Record<KindName, string> = { "sft-example": "sftExampleRecord", instruction: "instructionRecord", "preference-pair": "preferencePairRecord", "test-instruction": "testInstructionRecord" };

function kindArg(value: string | undefined, flag: string): KindName {
  const v = value ?? "sft-example";
  if (!(v in KINDS)) throw new Error(`--${flag} ${v}: not a kind a plugin can be scaffolded for (${Object.keys(KINDS).join(", ")})`);
  return v as KindName;
}

function indexTs(name: string, inK: KindName, outK: KindName): string {
  const i = KINDS[inK];
  const o = KINDS[outK];
  const imports = [...new Set(["definePlugin", "z", i.kind, o.kind, BUILDER[outK], `type ${i.type}`, `type ${o.type}`])].join(", ");
  return `// ${name}: a selftune stage plugin (consumes ${inK}, produces ${outK}). Scaffolded by
// \`selftune plugin new\`; the guide is selftune's plugins/README.md.
import { ${imports} } from "selftune";

export const Config = z.strictObject({
  minChars: z.number().int().min(0).default(1).describe("inputs whose instruction is shorter than this are dropped"),
  commitEvery: z.number().int().min(1).default(50).describe("inputs between resume points (commit with a cursor)"),
});
export type Config = z.output<typeof Config>;

/** One input to at most one output: edit this. An await here (a model call, a lookup) is fine. */
async function transform(r: ${i.type}, config: Config): Promise<${o.type} | null> {
  const text = ${i.text};
  if (text.length < config.minChars) return null;
  return ${make(outK, "`${r.id}-" + name + "`", "text", i.response ?? `""`)};
}

export default definePlugin({
  name: ${JSON.stringify(name)},
  version: "0.1.0",
  description: "TODO: what this stage does, in one line",
  config: Config,
  consumes: { input: ${i.kind} },
  produces: { output: ${o.kind} },
  async run(ctx) {
    const out = ctx.outputs.output;
    // Resume: the cursor of the last commit counts the inputs whose outputs are durable; an
    // interrupted run's later records were discarded, so skip exactly that many and go on.
    const done = (out.cursor as number | null) ?? 0;
    let seen = 0;
    for await (const r of ctx.inputs.input) {
      if (seen < done) { seen++; continue; }
      if (ctx.signal.aborted) return; // Ctrl-C: return without committing; the re-run resumes
      const made = await transform(r, ctx.config); // one await per record
      if (made) out.write(made);
      seen++;
      if (seen % ctx.config.commitEvery === 0) out.commit(seen);
    }
  },
});
`;
}

/** The example's upstream stage: a few hand-made records of the consumed kind. */
function sourceTs(inK: KindName): string {
  const i = KINDS[inK];
  return `// A stand-in upstream stage for the example config and the test: hand-made ${inK} records.
import { definePlugin, z, ${i.kind}, ${BUILDER[inK]} } from "selftune";

const INSTRUCTIONS = ["Name a primary colour.", "Say hello.", "Give one use of water."];

export default definePlugin({
  name: "example-source",
  version: "0.1.0",
  description: "hand-made ${inK} records for the example",
  config: z.strictObject({ count: z.number().int().min(1).default(3).describe("records to make") }),
  consumes: {},
  produces: { records: ${i.kind} },
  async run(ctx) {
    for (let n = 0; n < ctx.config.count; n++) {
      const text = INSTRUCTIONS[n % INSTRUCTIONS.length]!;
      ctx.outputs.records.write(${make(inK, "`src-${n}`", "text", "`Answer ${n}.`")});
    }
    ctx.outputs.records.commit(ctx.config.count);
  },
});
`;
}

function configYaml(name: string): string {
  return `# The plugin in a run: hand-made inputs, then ${name}. \`selftune run example/config.yaml\`
name: ${name}-example
stages:
  - plugin: ./source.ts
    config: { count: 5 }
  - plugin: ../index.ts
    config: { minChars: 1 }
`;
}

function testTs(name: string): string {
  return `// Runs the example config through the selftune CLI and checks ${name}'s output.
// SELFTUNE_CLI names the CLI; otherwise the checkout that scaffolded this plugin.
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = process.env.SELFTUNE_CLI ?? ${JSON.stringify(join(ROOT, "core/cli.ts"))};

test("${name} runs in a config and writes one record per input", async () => {
  const runDir = join(mkdtempSync(join(tmpdir(), "${name}-")), "run");
  const proc = Bun.spawn(["bun", CLI, "run", join(import.meta.dir, "example/config.yaml"), "--run-dir", runDir], { stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  expect(stderr).not.toContain("error");
  expect(code).toBe(0);
  const lines = readFileSync(join(runDir, "${name}/output.jsonl"), "utf8").trim().split("\\n").map((l) => JSON.parse(l));
  expect(lines.length).toBe(5);
  for (const r of lines) expect(r._prov).toBe("${name}-example/${name}");
}, 60_000);
`;
}

function readme(name: string, inK: KindName, outK: KindName): string {
  return `# ${name}

A selftune stage plugin: consumes \`${inK}\` (slot \`input\`), produces \`${outK}\` (slot
\`output\`). TODO: say what it does and why.

\`\`\`yaml
stages:
  - plugin: ./${name}/index.ts     # relative to the config file
    config: { minChars: 1, commitEvery: 50 }
\`\`\`

| key | default | meaning |
|---|---|---|
| \`minChars\` | 1 | inputs whose instruction is shorter are dropped |
| \`commitEvery\` | 50 | inputs between resume points |

It resumes after Ctrl-C: every \`commitEvery\` inputs it commits its records with the count of
inputs done as the cursor, and a re-run skips that many (selftune's plugins/README.md).

- \`selftune run example/config.yaml\` runs it after a stand-in source of hand-made records.
- \`bun test\` here runs that config and checks the output.
- \`tsconfig.json\` points \`selftune\` at the checkout that scaffolded it, for editors and \`tsc\`.
`;
}

function tsconfig(): string {
  return `${JSON.stringify(
    {
      compilerOptions: {
        target: "ESNext",
        module: "Preserve",
        moduleResolution: "bundler",
        lib: ["ESNext"],
        strict: true,
        noUncheckedIndexedAccess: true,
        allowImportingTsExtensions: true,
        verbatimModuleSyntax: true,
        noEmit: true,
        skipLibCheck: true,
        // The checkout that scaffolded this plugin (a project with selftune installed can drop these).
        typeRoots: [join(ROOT, "node_modules/@types")],
        types: ["bun"],
        paths: { selftune: [join(ROOT, "plugins/api/selftune.ts")], "selftune/model": [join(ROOT, "plugins/api/model.ts")] },
      },
      include: ["**/*.ts"],
    },
    null,
    2,
  )}\n`;
}

export async function pluginCommand(args: { action: string; name: string; consumes?: string; produces?: string; dir?: string }): Promise<number> {
  if (args.action !== "new") throw new Error(`plugin ${args.action}: unknown action (new)`);
  const name = args.name;
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`plugin name '${name}' must be lower-case kebab-case (it names the stage and its folder)`);
  if (name === "example-source") throw new Error(`plugin name '${name}' is the example's source stage: choose another`);
  const inK = kindArg(args.consumes, "consumes");
  const outK = kindArg(args.produces, "produces");
  const dir = resolve(args.dir ?? ".", name);
  if (existsSync(dir)) throw new Error(`${dir} already exists: choose another name or --dir`);
  mkdirSync(join(dir, "example"), { recursive: true });
  const files: [string, string][] = [
    ["index.ts", indexTs(name, inK, outK)],
    [`${name}.test.ts`, testTs(name)],
    ["example/source.ts", sourceTs(inK)],
    ["example/config.yaml", configYaml(name)],
    ["README.md", readme(name, inK, outK)],
    ["tsconfig.json", tsconfig()],
  ];
  for (const [f, text] of files) writeFileSync(join(dir, f), text);
  console.log(`created ${dir}:\n${files.map(([f]) => `  ${f}`).join("\n")}\nnext: cd ${dir} && bun test`);
  return 0;
}
