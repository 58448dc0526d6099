// Scale mode's precondition (SPEC §5, specs/qc.md "A passed pilot"): the pilot run's
// manifest has a `qc` stage with status "done" whose gates all passed. Scale then
// takes the parameters the pilot's matching stage actually used (recorded in its
// provenance as `parameters`) — never its own — and refuses a config that sets any of
// them differently, or a different model file.
import { resolve } from "node:path";
import type { z } from "zod";
import type { RunManifestLike } from "../../core/plugin.ts";
import { conflicts } from "./config.ts";

export class PilotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PilotError";
  }
}

interface StageLike {
  status: string;
  plugin: string;
  gates: { name: string; passed: boolean; summary: string }[];
  config?: unknown;
  provenance?: { runId?: string; extra?: Record<string, unknown> };
}

export interface PilotParameters<P> {
  params: P;
  pilotDir: string;
  pilotRunId: string;
  qcStage: string;
  sourceStage: string;
}

/** Why a manifest is not a passed pilot, or null when it is one. */
export function pilotFailure(m: RunManifestLike): { reason: string } | { qcStage: string } {
  const stages = Object.entries(m.stages) as [string, StageLike][];
  const qc = stages.filter(([, s]) => s.plugin === "qc");
  if (qc.length === 0) return { reason: "it has no qc stage" };
  const passed = qc.find(([, s]) => s.status === "done" && s.gates.length > 0 && s.gates.every((g) => g.passed));
  if (passed) return { qcStage: passed[0] };
  const why = qc.map(([id, s]) => {
    if (s.status !== "done") return `qc stage '${id}' is ${s.status}`;
    const failed = s.gates.filter((g) => !g.passed);
    return failed.length ? `qc stage '${id}' failed ${failed.map((g) => `${g.name} (${g.summary})`).join(", ")}` : `qc stage '${id}' reported no gates`;
  });
  return { reason: why.join("; ") };
}

/**
 * The validated parameters of the pilot stage that ran `plugin` (the one with id
 * `stageId` when there are several). Throws PilotError, naming what is missing, when
 * the pilot did not pass or the config contradicts it.
 */
export async function pilotParameters<S extends z.ZodType>(opts: {
  pilot: string;
  plugin: string;
  stageId: string;
  schema: S;
  readManifest: (dir: string) => Promise<RunManifestLike | null>;
  /** The params the scale config sets itself (undefined = not set). */
  configured: Record<string, unknown>;
  modelSha256: string;
  allowModelChange: boolean;
  /** Parameters from a pilot-mode stage config, for a stage that recorded none itself (a sharded
   *  stage records its provenance per shard, in shards/<i>-of-<N>/shard.json). */
  fromConfig?: (config: Record<string, unknown>) => unknown;
}): Promise<PilotParameters<z.output<S>>> {
  const dir = resolve(opts.pilot);
  const m = await opts.readManifest(dir);
  const refuse = (why: string) => new PilotError(`scale refuses to start: ${why}`);
  if (!m) throw refuse(`no pilot manifest at ${dir}/manifest.json (run the pilot first)`);
  const verdict = pilotFailure(m);
  if ("reason" in verdict) throw refuse(`the pilot at ${dir} did not pass QC: ${verdict.reason}`);
  const stages = (Object.entries(m.stages) as [string, StageLike][]).filter(([, s]) => s.plugin === opts.plugin && s.status === "done");
  const chosen = stages.find(([id]) => id === opts.stageId) ?? (stages.length === 1 ? stages[0] : undefined);
  if (!chosen) {
    throw refuse(stages.length === 0 ? `the pilot at ${dir} has no finished '${opts.plugin}' stage` : `the pilot has several '${opts.plugin}' stages (${stages.map(([id]) => id).join(", ")}) and none is called '${opts.stageId}'`);
  }
  const [sourceStage, rec] = chosen;
  const extra = rec.provenance?.extra ?? {};
  const cfg = (rec.config ?? {}) as Record<string, unknown>;
  const recorded = extra.parameters ?? (cfg.mode === "pilot" && opts.fromConfig ? opts.fromConfig(cfg) : undefined);
  const parsed = opts.schema.safeParse(recorded);
  if (!parsed.success) throw refuse(`pilot stage '${sourceStage}' recorded no usable parameters (re-run the pilot with this version)`);
  const params = parsed.data as z.output<S>;
  const bad = conflicts(opts.configured, params as Record<string, unknown>);
  if (bad.length) throw refuse(`the config sets parameters that differ from the pilot's validated ones: ${bad.join(", ")}; remove them (scale takes them from the pilot)`);
  if (!opts.allowModelChange && typeof extra.modelSha256 === "string" && extra.modelSha256 !== opts.modelSha256) {
    throw refuse(`the pilot stage '${sourceStage}' used model sha256 ${extra.modelSha256.slice(0, 12)}, this run ${opts.modelSha256.slice(0, 12)} (allowModelChange: true to accept)`);
  }
  return { params, pilotDir: dir, pilotRunId: m.runId, qcStage: verdict.qcStage, sourceStage };
}

/** This shard's share of `total` items: the first `total mod n` shards take one more. */
export function shardShare(total: number, shard: { index: number; count: number } | null): number {
  if (!shard) return total;
  return Math.floor(total / shard.count) + (shard.index < total % shard.count ? 1 : 0);
}
