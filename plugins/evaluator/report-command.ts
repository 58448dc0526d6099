// `selftune report <run-dir>`: rebuild evaluation_results.json, summary.txt and
// report.html of every evaluator stage in a run from its responses files and the
// stage's recorded config and provenance. No model is loaded; the per-item
// outcomes are taken as recorded (not re-scored), so the rebuilt numbers are the
// run's numbers, computed by the current statistics and rendering code.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ArtifactReader, atomicWriteFile } from "../../core/artifacts.ts";
import { manifestPath, readJsonIfExists, type ProvenanceStamp, type RunManifest } from "../../core/provenance.ts";
import type { VariantIdentity } from "./cache.ts";
import plugin, { analysisOptions, EvaluatorConfig } from "./index.ts";
import { buildOutputs, ResponseRecordKind, responsesFile, type ResponseRecord } from "./outputs.ts";
import { RESULTS_FILE, type EvaluationResults, type VariantRecord } from "./results.ts";
import { Judgement, SELF_JUDGE_FILE } from "./self-judge.ts";
import type { JudgePass } from "./self-judge-run.ts";

export interface RebuiltStage {
  stage: string;
  dir: string;
  results: EvaluationResults;
  summary: string;
}

interface Extra {
  /** The run's own variants (base and those of wired adapters), which set the default pairs. */
  ownVariants?: string[];
  variants?: (VariantIdentity & { loadInfo?: Record<string, unknown> | null })[];
  decode?: EvaluationResults["decode"];
  prompt?: Record<string, unknown>;
  testSet?: { sha256: string | null };
  /** How the self-judge's verdicts (self_judge.jsonl) were made, when the stage judged. */
  selfJudge?: JudgePass["meta"];
}

/** The self-judge's recorded verdicts, when the stage judged (its file and its provenance). */
function readSelfJudge(dir: string, extra: Extra) {
  const file = join(dir, SELF_JUDGE_FILE);
  if (!extra.selfJudge || !existsSync(file)) return undefined;
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
  return { judgements: lines.map((l) => Judgement.parse(JSON.parse(l))), ...extra.selfJudge };
}

/** Rebuild the outputs of every evaluator stage of a run; returns what was rebuilt. */
export async function rebuildRun(runDir: string): Promise<RebuiltStage[]> {
  const m = readJsonIfExists<RunManifest>(manifestPath(runDir));
  if (!m) throw new Error(`${runDir}: no manifest.json (not a run directory)`);
  const stages = Object.entries(m.stages).filter(([, s]) => s.plugin === plugin.name);
  if (stages.length === 0) throw new Error(`${runDir}: the run has no ${plugin.name} stage (stages: ${Object.keys(m.stages).join(", ") || "none"})`);
  const out: RebuiltStage[] = [];
  for (const [id, rec] of stages) {
    const dir = join(runDir, id);
    if (rec.status !== "done") throw new Error(`stage '${id}' is ${rec.status}, not done: run it first`);
    const parsed = EvaluatorConfig.safeParse(rec.config);
    if (!parsed.success) throw new Error(`stage '${id}': recorded config does not parse: ${parsed.error.message}`);
    const config = parsed.data;
    const prov = rec.provenance as ProvenanceStamp;
    const extra = prov.extra as Extra;
    const identities = extra.variants;
    if (!identities) throw new Error(`stage '${id}': its provenance records no variants (written by an older evaluator?)`);
    // Facts only the original run knew (what the generator reported at load) are kept.
    const previous = readJsonIfExists<EvaluationResults>(join(dir, RESULTS_FILE));
    const variants: { record: VariantRecord; responses: ResponseRecord[] }[] = [];
    for (const v of identities) {
      const file = join(dir, responsesFile(v.name));
      if (!existsSync(file)) throw new Error(`${file}: responses file missing`);
      const responses = await new ArtifactReader(file, ResponseRecordKind).all();
      const { loadInfo: _ignored, ...identity } = v;
      variants.push({ record: { ...identity, responsesFile: responsesFile(v.name), generated: responses.filter((r) => !r.cached).length, cached: responses.filter((r) => r.cached).length, loadInfo: v.loadInfo ?? previous?.variants.find((p) => p.name === v.name)?.loadInfo ?? null }, responses });
    }
    const { results, files } = buildOutputs({
      variants,
      options: analysisOptions(config, identities.map((v) => v.name), extra.ownVariants ?? []),
      decode: extra.decode ?? { greedy: true, maxTokens: config.maxTokens, stop: [] },
      prompt: extra.prompt ?? {},
      testSetSha256: extra.testSet?.sha256 ?? null,
      provenance: prov,
      selfJudge: readSelfJudge(dir, extra),
    });
    for (const [name, data] of Object.entries(files)) atomicWriteFile(join(dir, name), data);
    out.push({ stage: id, dir, results, summary: files["summary.txt"]! });
  }
  return out;
}

/** The CLI entry (core/cli.ts delegates here). A failed gate is reported, not an error:
 *  the command's job is the report, and the run already recorded the gate. */
export async function reportCommand(args: { runDir: string }): Promise<number> {
  for (const r of await rebuildRun(args.runDir)) {
    console.log(`== ${r.stage}: ${join(r.dir, "report.html")}`);
    console.log(r.summary);
  }
  return 0;
}
