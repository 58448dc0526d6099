// Small configs for the generation tests: a tiny synthesized qwen2 model, few and short
// generations, so a whole load -> instructions -> responses run takes seconds.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeConfig } from "../helpers.ts";

export interface SmallRunOptions {
  name?: string;
  seed?: number;
  /** Extra YAML lines for the instructions stage's config (indented 6). */
  instructions?: string;
  responses?: string;
  /** The responses stage's sampling line (indented 6); "" for none. */
  responsesSampling?: string;
  /** Run keys of the instructions stage (count 6, batch 2, maxCalls 4) and the responses batch (2). */
  count?: number;
  batch?: number;
  maxCalls?: number;
  responsesBatch?: number;
  /** Stages after responses (YAML, indented 2). */
  after?: string;
  /** Replaces the instructions/responses stage headers (e.g. shards). */
  instructionsStage?: string;
  responsesStage?: string;
}

export function smallConfig(dir: string, file: string, o: SmallRunOptions = {}): string {
  return writeConfig(
    dir,
    file,
    `name: ${o.name ?? "small"}
seed: ${o.seed ?? 7}
stages:
  - id: load
    plugin: loader
    config:
      synthesize: { arch: qwen2, preset: tiny, type: f16 }
      contextSize: 2048
      parallel: 8
      threads: 1
      sentinels: { maxTokens: 8 }
  - plugin: instructions
${o.instructionsStage ?? ""}    config:
      count: ${o.count ?? 6}
      batch: ${o.batch ?? 2}
      maxCalls: ${o.maxCalls ?? 4}
      poolFill: true
      sampling: { maxTokens: 24 }
      critic: { threshold: -1000 }
${o.instructions ?? ""}  - plugin: responses
${o.responsesStage ?? ""}    config:
      batch: ${o.responsesBatch ?? 2}
${o.responsesSampling ?? "      sampling: { maxTokens: 12 }\n"}${o.responses ?? ""}${o.after ?? ""}`,
  );
}

export function readLines(path: string): string[] {
  const text = readFileSync(path, "utf8").trim();
  return text === "" ? [] : text.split("\n");
}

export function readJsonl(path: string): Record<string, unknown>[] {
  return readLines(path).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function manifest(runDir: string): { stages: Record<string, { status: string; gates: { name: string; passed: boolean }[]; provenance: { extra: Record<string, unknown> }; artifacts: { file: string; records: number }[] }> } {
  return JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
}

export const PASSING_QC = `  - plugin: qc
    config:
      maxRunawayRate: null
      maxTokenLimitRate: null
      maxLeakage: null
      maxMedianResponseTokens: null
      minCriticAcceptance: null
`;

/** Exit code 0, or a failure that shows the child's stderr. */
export function expectOk(r: { exitCode: number; stderr: string }): void {
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}; stderr:\n${r.stderr.split("\n").filter((l) => !l.startsWith("{")).slice(-40).join("\n")}`);
}
