// What every LoRA training stage (sft, dpo) does the same way: the engine's options from the
// stage config, the run that resumes from its checkpoint in the stage folder, the progress
// bar, and the manifest's base-model, device and engine records.
import { existsSync, rmSync } from "node:fs";
import { cpus } from "node:os";
import type { StageContext } from "../../core/plugin.ts";
import { buildInfo } from "../../native/index.ts";
import { estimateTrainingSeconds, type StepRecord, type TrainData, type TrainModel, type TrainOptions, type TrainResult, type TrainSession } from "../../native/train.ts";
import type { SftConfig } from "./config.ts";

type Ctx = Pick<StageContext<unknown, never, never>, "log" | "signal" | "progress">;
export type Hyper = Pick<SftConfig, "epochs" | "microBatch" | "gradAccum" | "bucketWindow" | "maxLength" | "lr" | "minLrRatio" | "warmupSteps" | "warmupRatio" | "schedule" | "beta1" | "beta2" | "eps" | "weightDecay" | "maxGradNorm" | "maxSteps" | "checkpointEvery">;

export function isAbort(e: unknown): boolean {
  return e instanceof Error && e.name === "AbortError";
}

/** The engine's options for the plan and the optimizer (the objective's are the caller's). */
export function engineOptions(c: Hyper, seed: number, checkpointPath: string, ctx: Ctx): TrainOptions {
  // Created at the first step, when the plan's length is known.
  let bar: ReturnType<Ctx["progress"]["task"]> | null = null;
  return {
    epochs: c.epochs, microBatch: c.microBatch, gradAccum: c.gradAccum, bucketWindow: c.bucketWindow, maxLength: c.maxLength,
    dataSeed: seed, seed, lr: c.lr, minLrRatio: c.minLrRatio, warmupSteps: c.warmupSteps, warmupRatio: c.warmupRatio, schedule: c.schedule,
    beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm, maxSteps: c.maxSteps,
    checkpointPath, checkpointEvery: c.checkpointEvery, signal: ctx.signal,
    onProgress: (p) => {
      bar ??= ctx.progress.task("train", p.totalSteps);
      bar.update(p.step + 1, { loss: Number.isFinite(p.loss) ? p.loss.toFixed(4) : "-", "tok/s": p.tokensPerSecond.toFixed(1), eta: `${Math.round(p.eta)}s` });
      if (p.step + 1 === p.totalSteps) bar.finish();
    },
  };
}

/**
 * Trains, continuing from the checkpoint when one is there. Null when cancelled (Ctrl-C): the
 * engine wrote a checkpoint at the last finished step and the pipeline records the stage as
 * interrupted. Only a checkpoint that provably belongs to other data or settings is dropped;
 * one that fails to load for any other reason is kept (the error names the file).
 */
export async function trainResumable(ctx: Ctx, stage: string, session: TrainSession, data: TrainData, opts: TrainOptions): Promise<{ res: TrainResult; resumedAtStep: number | null } | null> {
  const checkpoint = opts.checkpointPath!;
  try {
    if (existsSync(checkpoint)) {
      try {
        const res = await session.train(data, { ...opts, resumeFrom: checkpoint });
        ctx.log.info(`${stage}: resumed from the checkpoint at step ${res.startStep}`);
        return { res, resumedAtStep: res.startStep };
      } catch (e) {
        if (isAbort(e) || !/checkpoint belongs to a different run/.test((e as Error).message)) throw e;
        ctx.log.warn(`${stage}: ignoring a stale checkpoint: ${(e as Error).message}`);
        rmSync(checkpoint, { force: true });
      }
    }
    return { res: await session.train(data, opts), resumedAtStep: null };
  } catch (e) {
    if (isAbort(e)) return null;
    throw e;
  }
}

/** A step of the curve without its wall-clock time (artifacts hold nothing of one attempt). */
export function curveStep({ seconds: _, metrics: _m, ...r }: StepRecord) {
  return { ...r, loss: Number.isFinite(r.loss) ? r.loss : null };
}

export function baseModelRecord(path: string, sha256: string, model: TrainModel) {
  return { path, sha256, architecture: model.info.architecture, weightType: model.info.weightType, parameters: model.info.parameterCount };
}

export function deviceRecord(session: TrainSession, model: TrainModel) {
  return { backend: session.info.backend, device: session.info.device, baseStorage: model.info.storage, cpu: cpus()[0]?.model ?? "unknown" };
}

export function engineRecord(trainerVersion: string) {
  const build = buildInfo();
  return { llamaCpp: `${build.llamaVersion} (${build.llamaSource})`, trainer: `selftune-train ${trainerVersion}` };
}

/** On the CPU, a plan the engine estimates at over an hour is announced before it starts. */
export function warnIfSlow(ctx: Ctx, stage: string, model: TrainModel, session: TrainSession, data: TrainData, opts: TrainOptions): void {
  if (session.info.backend !== "cpu") return;
  const est = estimateTrainingSeconds(model, session, data, opts);
  if (est > 3600) {
    ctx.log.warn(`${stage}: on the CPU this training would take about ${(est / 3600).toFixed(1)} h by the engine's estimate; a GPU build trains it far faster (bun run build:native:cuda, backend: cuda)`, { estimatedSeconds: Math.round(est) });
  }
}

/** The manifest's hyper-parameters: the config as the engine applied it. */
export function hyperRecord(c: Hyper, res: TrainResult, seed: number) {
  return {
    epochs: c.epochs, lr: c.lr, microBatch: c.microBatch, gradAccum: c.gradAccum, effectiveBatch: c.microBatch * c.gradAccum,
    schedule: c.schedule, warmupSteps: res.warmupSteps, minLrRatio: c.minLrRatio, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
    beta1: c.beta1, beta2: c.beta2, eps: c.eps, maxLength: c.maxLength, bucketWindow: c.bucketWindow, maxSteps: c.maxSteps ?? null, seed,
  };
}
