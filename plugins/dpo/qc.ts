// The pairs' QC, minimally: the gates reported by the stage that produced this stage's pairs
// (the pairs stage's QC summary reports them; with `gate: report` a failed one lets the run
// continue, and dpo then refuses unless forced). Found through the run manifest, which
// records which stage each input came from.
import type { StageContext } from "../../core/plugin.ts";

export interface PairsQc {
  /** The stage the pairs came from (null when the run manifest does not say). */
  stage: string | null;
  passed: boolean;
  failedGates: string[];
}

export async function pairsQc(ctx: Pick<StageContext<unknown, never, never>, "readManifest" | "run" | "stage">): Promise<PairsQc> {
  const manifest = await ctx.readManifest(ctx.run.dir);
  const own = manifest?.stages[ctx.stage.id] as { inputs?: Record<string, { stage: string }> } | undefined;
  const stage = own?.inputs?.pairs?.stage ?? null;
  const gates = (stage && manifest?.stages[stage]?.gates) || [];
  const failedGates = gates.filter((g) => !g.passed).map((g) => g.name);
  return { stage, passed: failedGates.length === 0, failedGates };
}
