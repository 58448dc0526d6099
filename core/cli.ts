#!/usr/bin/env bun
// selftune's command line. Each command is a thin shell over core/ (and, for
// `model`, `report` and `ifeval`, over modules loaded on demand so core stays LLM-free).
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, loadConfig } from "./config.ts";
import { EXIT, Pipeline, planRun, SHARD_PARENT_ENV } from "./pipeline.ts";
import type { OnChanged } from "./integrity.ts";
import { pidAlive } from "./run-lock.ts";
import { builtinNames, loadPlugin } from "./registry.ts";
import { inputSlot } from "./plugin.ts";
import { humanLine, summaryStream } from "./progress.ts";
import { manifestPath, PROJECT_ROOT, readJsonIfExists, type RunManifest } from "./provenance.ts";

function parseShard(s: string | undefined): { index: number; count: number } | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[1]) >= Number(m[2])) throw new Error(`--shard must be i/N with 0 <= i < N, got '${s}'`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/**
 * Ctrl-C and SIGTERM stop the run gracefully: the running stage stops at its next
 * batch boundary and saves what it must (records up to its last commit, sft's
 * checkpoint). Later signals never cut that short — `bun run` forwards Ctrl-C, so
 * one press arrives twice — they only say what is happening. SIGQUIT (Ctrl-\) or
 * SIGKILL still end the process at once; the next run resumes from the last commit.
 */
function stopOnSignals(controller: AbortController): () => void {
  let interrupts = 0;
  let ended = false;
  const onSignal = (sig: string) => {
    if (ended) return;
    if (++interrupts === 1) {
      humanLine(`${sig}: stopping after the current batch; the next run resumes (Ctrl-\\ to quit at once, losing uncommitted work)`);
      controller.abort();
    } else humanLine(`${sig}: still stopping — the running stage is saving its state`);
  };
  const onInt = () => onSignal("interrupt");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  // A process-mode shard stops by itself when the run that started it is gone (SIGKILLed).
  const parent = Number(process.env[SHARD_PARENT_ENV.pid]) || null;
  const watchdog = parent ? setInterval(() => { if (!pidAlive(parent)) onSignal("parent run gone"); }, 200) : null;
  // The handlers stay: a forwarded duplicate arriving after the run must not cut the summary short.
  return () => {
    ended = true;
    if (watchdog) clearInterval(watchdog);
  };
}

async function cmdRun(args: { config: string; set?: string[]; runDir?: string; from?: string; only?: string; shard?: string; onChanged?: OnChanged; quiet?: boolean }): Promise<number> {
  // In the environment, so that process-mode shards are quiet too (core/progress.ts).
  if (args.quiet) process.env.SELFTUNE_QUIET = "1";
  const shard = parseShard(args.shard);
  if (shard && !args.only) throw new Error("--shard needs --only <stage>");
  const loaded = loadConfig(args.config, args.set);
  const stages = await planRun(loaded);
  const controller = new AbortController();
  const stopListening = stopOnSignals(controller);
  const pipeline = new Pipeline(loaded, stages, { runDir: args.runDir, from: args.from, only: args.only, shard, onChanged: args.onChanged, signal: controller.signal });
  let outcome;
  try {
    outcome = await pipeline.run();
  } finally {
    stopListening();
  }
  if (!shard) printSummary(readJsonIfExists<RunManifest>(manifestPath(outcome.runDir)), summaryStream());
  if (outcome.status === "gate-failed") {
    console.error(`\nrun stopped: ${outcome.failedGates.map((f) => `${f.stage}: ${f.gate.name} failed (${f.gate.summary})`).join("; ")}`);
  }
  if (outcome.status === "interrupted") console.error("\nrun interrupted; run the same command again to resume");
  return outcome.exitCode;
}

function printSummary(m: RunManifest | null, out: NodeJS.WriteStream = process.stdout) {
  if (!m) return;
  const lines = [`run ${m.runId}  (${m.name})`, `  git ${m.git.commit?.slice(0, 12) ?? "none"}${m.git.dirty ? " (dirty)" : ""}  bun ${m.environment.bun}  ${m.environment.cpu.model} x${m.environment.cpu.logicalCores}${m.environment.gpus.length ? `  ${m.environment.gpus.map((g) => g.name).join(", ")}` : ""}`];
  for (const [id, s] of Object.entries(m.stages)) {
    const secs = s.durationMs === null ? "" : ` ${(s.durationMs / 1000).toFixed(1)} s`;
    lines.push(`  ${id.padEnd(14)} ${s.status.padEnd(11)} ${s.plugin}@${s.pluginVersion}${secs}${s.shards ? ` (${s.shards} shards)` : ""}`);
    for (const a of s.artifacts) lines.push(`      ${a.file.padEnd(28)} ${String(a.records).padStart(7)} records  sha256 ${a.sha256.slice(0, 12)}`);
    for (const f of s.files) lines.push(`      ${f.file.padEnd(28)} ${String(f.bytes).padStart(7)} bytes    sha256 ${f.sha256.slice(0, 12)}`);
    for (const g of s.gates) lines.push(`      gate ${g.name}: ${g.passed ? "PASS" : "FAIL"}  ${g.summary}${!g.passed && s.gateMode === "report" ? " (reported, not stopping)" : ""}`);
    if (s.error) lines.push(`      error: ${s.error}`);
  }
  out.write(lines.join("\n") + "\n");
}

async function cmdValidate(args: { config: string; set?: string[] }): Promise<number> {
  const loaded = loadConfig(args.config, args.set);
  const stages = await planRun(loaded);
  console.log(`${args.config}: valid, ${stages.length} stages${loaded.overrides.length ? ` (with ${loaded.overrides.map((o) => `--set ${o}`).join(" ")})` : ""}`);
  for (const s of stages) {
    const ins = s.inputs.map((w) => `${w.slot}<-${w.fromStage}.${w.fromSlot}`).join(", ");
    console.log(`  ${s.id.padEnd(14)} ${s.plugin.name}@${s.plugin.version}${ins ? `  inputs: ${ins}` : ""}${s.spec.shards > 1 ? `  shards: ${s.spec.shards}` : ""}`);
  }
  return EXIT.ok;
}

async function cmdPlugins(args: { json?: boolean; name?: string }): Promise<number> {
  const names = args.name ? [args.name] : builtinNames();
  const out = [];
  for (const n of names) {
    const { plugin, source } = await loadPlugin(n, process.cwd());
    out.push({
      name: plugin.name,
      version: plugin.version,
      description: plugin.description,
      source,
      consumes: Object.fromEntries(Object.entries(plugin.consumes).map(([s, k]) => [s, inputSlot(k).optional ? `${inputSlot(k).kind.name}?` : inputSlot(k).kind.name])),
      produces: Object.fromEntries(Object.entries(plugin.produces).map(([s, k]) => [s, k.name])),
      shardable: !!plugin.shardable,
      config: z.toJSONSchema(plugin.config, { io: "input", unrepresentable: "any" }),
    });
  }
  if (args.json || args.name) console.log(JSON.stringify(args.name ? out[0] : out, null, 2));
  else
    for (const p of out) {
      console.log(`${p.name}@${p.version}  ${p.description}`);
      console.log(`    consumes: ${Object.values(p.consumes).join(", ") || "-"}   produces: ${Object.values(p.produces).join(", ") || "-"}${p.shardable ? "   shardable" : ""}`);
    }
  return EXIT.ok;
}

async function cmdInspect(args: { runDir: string; json?: boolean }): Promise<number> {
  const m = readJsonIfExists<RunManifest>(manifestPath(args.runDir));
  if (!m) throw new Error(`${args.runDir}: no manifest.json (not a run directory)`);
  if (args.json) console.log(JSON.stringify(m, null, 2));
  else {
    printSummary(m);
    const env = m.environment;
    console.log(`  created ${m.createdAt}, updated ${m.updatedAt}`);
    console.log(`  config ${m.configPath} (sha256 ${m.configHash.slice(0, 12)})${m.overrides?.length ? `  ${m.overrides.map((o) => `--set ${o}`).join(" ")}` : ""}`);
    console.log(`  host ${env.host}  ${env.os} ${env.arch}  ${(env.memoryBytes / 2 ** 30).toFixed(1)} GiB`);
  }
  return EXIT.ok;
}

/** Commands implemented outside core, loaded only when used. */
async function delegate(modulePath: string, fn: string, args: unknown): Promise<number> {
  const full = join(PROJECT_ROOT, modulePath);
  if (!existsSync(full)) throw new Error(`this command needs ${modulePath}, which is not in this checkout`);
  const mod = (await import(full)) as Record<string, (a: unknown) => Promise<number>>;
  if (typeof mod[fn] !== "function") throw new Error(`${modulePath} does not export ${fn}()`);
  return mod[fn](args);
}

/** `--set key.path=value`, repeatable (core/overrides.ts). */
const SET_OPTION = { type: "string", array: true, requiresArg: true, describe: "override a config value, validated like the file (repeatable): --set stages.sft.config.lr=1e-4 (a stage by its id or index; the value is YAML)" } as const;

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const wrap = <A>(f: (a: A) => Promise<number>) => async (a: A) => {
    code = await f(a);
  };
  await yargs(argv)
    .scriptName("selftune")
    .strict()
    .demandCommand(1)
    .command("run <config>", "run a pipeline", (y) =>
      y.positional("config", { type: "string", demandOption: true })
        .option("run-dir", { type: "string", describe: "run directory (default <runsDir>/<name>)" })
        .option("from", { type: "string", describe: "re-run this stage and every later one" })
        .option("only", { type: "string", describe: "run only this stage" })
        .option("shard", { type: "string", describe: "with --only: run shard i/N of a sharded stage" })
        .option("on-changed", { choices: ["stop", "rerun"] as const, describe: "a finished stage's file changed on disk: stop naming it (default), or use it as it is and re-run what reads it" })
        .option("set", SET_OPTION)
        .option("quiet", { type: "boolean", describe: "no progress and no info lines: warnings, errors and the summary only (SELFTUNE_PROGRESS=bar|json|off picks how progress shows otherwise)" }),
      wrap(cmdRun))
    .command("validate <config>", "check a config (and every plugin's config) without running", (y) => y.positional("config", { type: "string", demandOption: true }).option("set", SET_OPTION), wrap(cmdValidate))
    .command("plugins [name]", "list plugins with their config as JSON Schema", (y) => y.positional("name", { type: "string" }).option("json", { type: "boolean" }), wrap(cmdPlugins))
    .command("inspect <run-dir>", "print a run's manifest readably", (y) => y.positional("run-dir", { type: "string", demandOption: true }).option("json", { type: "boolean" }), wrap(cmdInspect))
    .command("report <run-dir>", "rebuild the evaluation report of a run", (y) => y.positional("run-dir", { type: "string", demandOption: true }), wrap((a) => delegate("plugins/evaluator/report-command.ts", "reportCommand", a)))
    .command("ifeval <action>", "score: score responses offline against an IFEval input file", (y) =>
      y.positional("action", { choices: ["score"] as const, demandOption: true })
        .option("input", { type: "string", demandOption: true, describe: "IFEval input data (JSONL: key, prompt, instruction_id_list, kwargs)" })
        .option("responses", { type: "string", demandOption: true, describe: "responses (JSONL: prompt, response)" })
        .option("semantics", { choices: ["ifeval", "selftune"] as const, default: "ifeval", describe: "the reference implementation's rules, or the project's stricter checks" })
        .option("out", { type: "string", describe: "directory for the verdicts and metrics (default: the responses file's)" }),
      wrap((a) => delegate("plugins/evaluator/ifeval/command.ts", "ifevalCommand", a)))
    .command("plugin <action> <name>", "new: scaffold a plugin folder (index.ts, config schema, resumable run loop, test, README)", (y) =>
      y.positional("action", { choices: ["new"] as const, demandOption: true })
        .positional("name", { type: "string", demandOption: true, describe: "the plugin's name (kebab-case); also its folder's" })
        .option("consumes", { type: "string", default: "sft-example", describe: "input kind: sft-example | instruction | preference-pair | test-instruction" })
        .option("produces", { type: "string", default: "sft-example", describe: "output kind (as --consumes)" })
        .option("dir", { type: "string", describe: "where the folder goes (default: the current directory)" }),
      wrap((a) => delegate("plugins/api/new-plugin.ts", "pluginCommand", a)))
    .command("model <action> [args..]", "synth | info | quantize: GGUF model tools", (y) =>
      y.positional("action", { choices: ["synth", "info", "quantize"] as const, demandOption: true })
        .option("arch", { choices: ["qwen2", "llama"] as const, default: "qwen2" })
        .option("preset", { choices: ["tiny", "0.5b", "1.5b", "7b"] as const, default: "tiny" })
        .option("vocab", { type: "string", describe: "vocabulary GGUF (default: llama.cpp's for the arch)" })
        .option("type", { choices: ["f32", "f16", "q8_0", "q4_k", "q6_k"] as const, default: "f16" })
        .option("seed", { type: "number", default: 0 })
        .option("out", { type: "string" })
        .option("json", { type: "boolean" }),
      wrap((a) => delegate("native/model-command.ts", "modelCommand", a)))
    .command("export <run-dir>", "turn a trained stage into a model to run: merged GGUF, Ollama folder or PEFT adapter (specs/export.md)", (y) =>
      y.positional("run-dir", { type: "string", demandOption: true })
        .option("stage", { type: "string", describe: "stage id or plugin (sft, dpo) whose adapter to export (default: dpo if the run has it, else sft)" })
        .option("to", { choices: ["gguf", "ollama", "peft"] as const, default: "gguf" })
        .option("out", { type: "string", describe: "output folder (default <run-dir>/export/<stage>-<to>)" })
        .option("base", { type: "string", describe: "the base model, if it moved since training (its sha256 must match)" })
        .option("type", { choices: ["f32", "f16", "bf16"] as const, describe: "merged weights' type (default: the base's float type; f16 for a quantized base)" })
        .option("hf-base", { type: "string", describe: "peft: base_model_name_or_path (the HF model the GGUF was converted from)" }),
      wrap((a) => delegate("native/export/command.ts", "exportCommand", a)))
    .command("import-adapter <dir>", "convert a PEFT LoRA folder into a llama.cpp GGUF adapter for a GGUF base", (y) =>
      y.positional("dir", { type: "string", demandOption: true, describe: "folder with adapter_model.safetensors and adapter_config.json" })
        .option("base", { type: "string", demandOption: true, describe: "the GGUF base model the adapter is for" })
        .option("out", { type: "string", demandOption: true, describe: "the GGUF adapter to write" }),
      wrap((a) => delegate("native/export/command.ts", "importAdapterCommand", a)))
    .command("bench <name>", "run a native benchmark (infer, train, kernels)", (y) => y.positional("name", { type: "string", demandOption: true }), wrap(async (a) => {
      const proc = Bun.spawn(["bun", "run", `bench:${a.name}`], { cwd: PROJECT_ROOT, stdio: ["inherit", "inherit", "inherit"] });
      return proc.exited;
    }))
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .help()
    .parseAsync();
  return code;
}

class UsageError extends Error {}

if (import.meta.main) {
  try {
    process.exitCode = await main(hideBin(process.argv));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`config error:\n${e.message}`);
      process.exitCode = EXIT.config;
    } else if (e instanceof UsageError) {
      console.error(`${e.message}\nrun 'selftune --help' for usage`);
      process.exitCode = EXIT.config;
    } else {
      console.error(`error: ${(e as Error).message}`);
      if (process.env.SELFTUNE_DEBUG) console.error((e as Error).stack);
      process.exitCode = EXIT.error;
    }
  }
}
