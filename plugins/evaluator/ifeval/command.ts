// `selftune ifeval score`: any model's responses scored offline against an IFEval
// input file, as the reference's evaluation_main does — the four metrics and the
// per-id table printed, per-prompt verdicts written in the reference's output
// format (eval_results_strict.jsonl, eval_results_loose.jsonl) plus the metrics as JSON.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { IfevalInputError, readIfevalInput, readIfevalResponses } from "./input.ts";
import { ifevalMetrics, metricsText, type IfevalMetrics, type PromptVerdict } from "./metrics.ts";
import { itemChecks, scorePrompt, SEMANTICS, type Semantics } from "./score.ts";

export const OUTPUT_FILES = { strict: "eval_results_strict.jsonl", loose: "eval_results_loose.jsonl", metrics: "ifeval_metrics.json" } as const;

export interface ScoreArgs {
  input: string;
  responses: string;
  semantics?: Semantics;
  out?: string;
}

export interface Scored {
  metrics: IfevalMetrics;
  outDir: string;
  verdicts: (PromptVerdict & { key: number | string; prompt: string; response: string })[];
}

export function scoreFiles(args: ScoreArgs): Scored {
  const semantics = args.semantics ?? "ifeval";
  if (!SEMANTICS.includes(semantics)) throw new IfevalInputError(`--semantics must be one of ${SEMANTICS.join(", ")}, got '${semantics}'`);
  const items = readIfevalInput(args.input);
  const responses = readIfevalResponses(args.responses);
  const missing = items.filter((it) => !responses.has(it.prompt));
  if (missing.length) {
    const list = missing.slice(0, 5).map((it) => `key ${it.key} (${args.input}:${it.line}): ${JSON.stringify(it.prompt.slice(0, 80))}`);
    throw new IfevalInputError(`${args.responses}: no response for ${missing.length} of ${items.length} prompts: ${list.join("; ")}${missing.length > 5 ? "; ..." : ""}`);
  }
  const verdicts = items.map((it) => {
    const response = responses.get(it.prompt)!;
    return { key: it.key, prompt: it.prompt, response, ...scorePrompt(itemChecks(args.input, it, semantics), response) };
  });
  return { metrics: ifevalMetrics(verdicts), verdicts, outDir: resolve(args.out ?? dirname(args.responses)) };
}

function outputLines(s: Scored, mode: "strict" | "loose"): string {
  return s.verdicts
    .map((v) => JSON.stringify({ key: v.key, instruction_id_list: v.instruction_id_list, prompt: v.prompt, response: v.response, follow_all_instructions: v[mode].every(Boolean), follow_instruction_list: v[mode] }))
    .join("\n") + "\n";
}

export async function ifevalCommand(args: { action: string } & ScoreArgs): Promise<number> {
  if (args.action !== "score") throw new IfevalInputError(`unknown ifeval action '${args.action}' (score)`);
  const s = scoreFiles(args);
  mkdirSync(s.outDir, { recursive: true });
  writeFileSync(join(s.outDir, OUTPUT_FILES.strict), outputLines(s, "strict"));
  writeFileSync(join(s.outDir, OUTPUT_FILES.loose), outputLines(s, "loose"));
  writeFileSync(join(s.outDir, OUTPUT_FILES.metrics), JSON.stringify({ semantics: args.semantics ?? "ifeval", input: resolve(args.input), responses: resolve(args.responses), ...s.metrics }, null, 2) + "\n");
  console.log(metricsText(s.metrics, `IFEval (${args.semantics ?? "ifeval"} semantics)`));
  console.log(`verdicts: ${join(s.outDir, OUTPUT_FILES.strict)}, ${join(s.outDir, OUTPUT_FILES.loose)}; metrics: ${join(s.outDir, OUTPUT_FILES.metrics)}`);
  return 0;
}
