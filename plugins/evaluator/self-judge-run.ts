// The self-judge's scoring pass: the run's base model (no adapter: adapters are applied per
// call, and the critic applies none) judges every evaluated response that has verifiable
// checks with the pair critic, batched; the rubric header is the prefix every prompt shares.
// The forward is chosen as the critic stage chooses it (ModelService.scorer, auto).
import type { Logger, Services } from "../../core/plugin.ts";
import { Critic, criticProvenance } from "../critic/critic.ts";
import { openModel } from "../loader/open.ts";
import { assertInstruction } from "../prompts/prompts.ts";
import type { ModelInfo } from "../shared/kinds.ts";
import { ModelService } from "../shared/model-service.ts";
import type { Judgement, SelfJudgeConfig } from "./self-judge.ts";

export interface ToJudge {
  variant: string;
  items: readonly { id: string; instruction: string; response: string; checks: readonly unknown[] }[];
}

export interface JudgePass {
  judgements: Judgement[];
  /** Recorded in provenance.extra.selfJudge (selftune report reads it back). */
  meta: { threshold: number; skipped: number; critic: Record<string, unknown> };
}

function oneLine(instruction: string): boolean {
  try {
    assertInstruction(instruction);
    return true;
  } catch {
    return false;
  }
}

/** Null when interrupted. */
export async function judgeResponses(
  env: { services: Services; signal: AbortSignal; log: Logger; progress: (done: number, total: number) => void },
  model: AsyncIterable<ModelInfo> & { path?: string },
  cfg: SelfJudgeConfig,
  variants: readonly ToJudge[],
): Promise<JudgePass | null> {
  const todo = variants.flatMap((v) => v.items.filter((it) => it.checks.length > 0 && oneLine(it.instruction)).map((it) => ({ variant: v.variant, it })));
  const skipped = variants.reduce((s, v) => s + v.items.length, 0) - todo.length;
  const m = await openModel(env.services, model, { signal: env.signal, log: env.log });
  const scorer = await (await ModelService.of(env.services)).scorer(m.provenance.path, { log: env.log });
  const pairs = todo.map(({ variant, it }) => ({ id: `${variant}:${it.id}`, instruction: it.instruction, response: it.response }));
  const judgements: Judgement[] = [];
  let choice: Record<string, unknown> | null = null;
  for (let i = 0; i < pairs.length; i += cfg.batch) {
    if (env.signal.aborted) return null;
    const chunk = pairs.slice(i, i + cfg.batch);
    const opts = { threshold: cfg.threshold, batchSize: cfg.batch, signal: env.signal };
    const scores = scorer.engine
      ? await judge(new Critic(scorer.engine, m.guard, m.model), chunk, opts)
      : await m.inWorkContext((w) => judge(new Critic(w, m.guard, m.model), chunk, opts));
    choice ??= scores.choice;
    scores.out.forEach((s, j) => {
      const { variant, it } = todo[i + j]!;
      judgements.push({ variant, id: it.id, margin: s.verdict.margin, threshold: s.verdict.threshold, accepted: s.verdict.accepted });
    });
    env.progress(Math.min(i + cfg.batch, pairs.length), pairs.length);
  }
  return { judgements, meta: { threshold: cfg.threshold, skipped, critic: { ...(choice ?? {}), scorer: scorer.provenance } } };
}

async function judge(c: Critic, chunk: Parameters<Critic["scorePairs"]>[0], opts: Parameters<Critic["scorePairs"]>[1]) {
  return { out: await c.scorePairs(chunk, opts), choice: criticProvenance(c.choice) };
}
