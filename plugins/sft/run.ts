// The sft stage's work: QC gate, data, training (resumable), adapter, loss curve, manifest.
import { existsSync, rmSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { ArtifactReader, sha256File } from "../../core/artifacts.ts";
import type { StageContext } from "../../core/plugin.ts";
import { buildInfo, loadModel } from "../../native/index.ts";
import { estimateTrainingSeconds, loadTrainModel, type EvalResult, type TrainData, type TrainResult, type TrainSession } from "../../native/train.ts";
import { ModelInfoKind, QcReportKind, SftExampleKind } from "../shared/kinds.ts";
import { ModelService } from "../shared/model-service.ts";
import type { SftConfig } from "./config.ts";
import { prepareSftData } from "./data.ts";
import { LoraAdapterKind, TrainStepKind, type TrainingManifest, type TrainStep } from "./kinds.ts";

export const SFT_VERSION = "1.0.0";

type Ctx = StageContext<SftConfig, { examples: typeof SftExampleKind; qc: typeof QcReportKind }, { adapter: typeof LoraAdapterKind; lossCurve: typeof TrainStepKind }>;

function isAbort(e: unknown): boolean {
  return e instanceof Error && e.name === "AbortError";
}

async function validation(s: TrainSession, data: TrainData | null, useLora: boolean) {
  if (!data) return null;
  const r: EvalResult = await s.evaluate(data, { useLora });
  return { loss: r.lossSum / r.lossTokens, tokens: r.lossTokens };
}

/** The model file the run's loader stage loaded, from its model-info record. */
async function loaderModelPath(ctx: Ctx): Promise<string> {
  const manifest = await ctx.readManifest(ctx.run.dir);
  const loader = Object.entries(manifest?.stages ?? {}).find(([, s]) => s.plugin === "loader" && s.status === "done");
  const art = loader?.[1].artifacts.find((a) => a.kind === "model-info");
  if (!loader || !art) throw new Error("sft: no `model:` given and no finished loader stage in this run to take the model from");
  for await (const rec of new ArtifactReader(join(ctx.run.dir, loader[0], art.file), ModelInfoKind)) return rec.path;
  throw new Error(`sft: the loader's ${art.file} holds no model-info record`);
}

export async function runSft(ctx: Ctx): Promise<void> {
  const c = ctx.config;
  // Training loads its own copy of the weights: never two models resident (SPEC §8's lesson).
  await ModelService.releaseAll(ctx.services);
  const modelPath = c.model ? resolve(dirname(resolve(ctx.run.configPath)), c.model) : await loaderModelPath(ctx);
  const seed = c.seed ?? ctx.seed;

  // QC gate (SPEC §6): a dataset whose QC did not pass is refused unless forced.
  const reports = await ctx.inputs.qc.all();
  const report = reports.at(-1);
  if (!report) throw new Error("sft: the qc input has no report");
  if (!report.passed && !c.force) {
    const failed = report.gates.filter((g) => !g.passed).map((g) => g.name);
    throw new Error(`sft: refusing a dataset whose QC did not pass (failed: ${failed.join(", ") || "?"}); set force: true to train anyway (recorded in the manifest)`);
  }
  if (!report.passed) ctx.log.warn("sft: training on a dataset whose QC did not pass (force: true)", { failed: report.gates.filter((g) => !g.passed).map((g) => g.name) });

  const records = await ctx.inputs.examples.all();
  const tok = await loadModel(modelPath, { vocabOnly: true });
  let prepared;
  try {
    prepared = prepareSftData(records, tok, { heldOut: c.heldOut, seed });
  } finally {
    tok.dispose();
  }
  const modelSha = await sha256File(modelPath);

  const model = await loadTrainModel(modelPath, { backend: c.backend, storage: c.baseStorage });
  const session = model.createSession({ ...c.lora, seed, threads: c.threads, checkpointActivations: c.checkpointActivations });
  ctx.log.info(`sft: training on ${session.info.backend} (${session.info.device})`);
  if (session.info.backend === "cpu") {
    const est = estimateTrainingSeconds(model, session, prepared.train, { epochs: c.epochs, microBatch: c.microBatch, gradAccum: c.gradAccum, bucketWindow: c.bucketWindow, maxLength: c.maxLength, dataSeed: seed, maxSteps: c.maxSteps });
    if (est > 3600) {
      ctx.log.warn(`sft: on the CPU this training would take about ${(est / 3600).toFixed(1)} h by the engine's estimate; a GPU build trains it far faster (bun run build:native:cuda, backend: cuda)`, { estimatedSeconds: Math.round(est) });
    }
  }
  const checkpoint = join(ctx.stage.dir, "checkpoint.bin");
  try {
    const before = await validation(session, prepared.heldOut, false);
    // Created at the first step, when the plan's length is known.
    const bar: { task: ReturnType<typeof ctx.progress.task> | null } = { task: null };
    const trainOpts = {
      epochs: c.epochs,
      microBatch: c.microBatch,
      gradAccum: c.gradAccum,
      bucketWindow: c.bucketWindow,
      maxLength: c.maxLength,
      dataSeed: seed,
      seed,
      lr: c.lr,
      minLrRatio: c.minLrRatio,
      warmupSteps: c.warmupSteps,
      warmupRatio: c.warmupRatio,
      schedule: c.schedule,
      beta1: c.beta1,
      beta2: c.beta2,
      eps: c.eps,
      weightDecay: c.weightDecay,
      maxGradNorm: c.maxGradNorm,
      maxSteps: c.maxSteps,
      checkpointPath: checkpoint,
      checkpointEvery: c.checkpointEvery,
      signal: ctx.signal,
      onProgress: (p: { step: number; totalSteps: number; loss: number; tokensPerSecond: number; eta: number }) => {
        bar.task ??= ctx.progress.task("train", p.totalSteps);
        bar.task.update(p.step + 1, { loss: Number.isFinite(p.loss) ? p.loss.toFixed(4) : "-", "tok/s": p.tokensPerSecond.toFixed(1), eta: `${Math.round(p.eta)}s` });
      },
    };
    let res: TrainResult;
    let resumedAtStep: number | null = null;
    try {
      if (existsSync(checkpoint)) {
        try {
          res = await session.train(prepared.train, { ...trainOpts, resumeFrom: checkpoint });
          resumedAtStep = res.startStep;
          ctx.log.info(`sft: resumed from the checkpoint at step ${res.startStep}`);
        } catch (e) {
          // Only a checkpoint that provably belongs to other data or settings is dropped; one
          // that fails to load for any other reason is kept (and the error says which file).
          if (isAbort(e) || !/checkpoint belongs to a different run/.test((e as Error).message)) throw e;
          ctx.log.warn(`sft: ignoring a stale checkpoint: ${(e as Error).message}`);
          rmSync(checkpoint, { force: true });
          res = await session.train(prepared.train, trainOpts);
        }
      } else {
        res = await session.train(prepared.train, trainOpts);
      }
    } catch (e) {
      // Ctrl-C: the engine wrote a checkpoint at the last finished step; the pipeline
      // records the stage as interrupted and a re-run resumes from there.
      if (isAbort(e)) return;
      throw e;
    }
    bar.task?.finish();
    const after = await validation(session, prepared.heldOut, true);

    // Step timings are wall-clock: they go to the run manifest, not into the artifact.
    const history: TrainStep[] = res.history.map(({ seconds: _, ...r }) => ({ ...r, loss: Number.isFinite(r.loss) ? r.loss : null }));
    for (const r of history) ctx.outputs.lossCurve.write(r);
    ctx.outputs.lossCurve.commit({ steps: history.length });

    const losses = history.map((r) => r.loss).filter((x): x is number => x !== null);
    const build = buildInfo();
    const manifest: TrainingManifest = {
      format: "gguf-lora",
      baseModel: { path: modelPath, sha256: modelSha, architecture: model.info.architecture, weightType: model.info.weightType, parameters: model.info.parameterCount },
      lora: { rank: session.info.rank, alpha: session.info.alpha, dropout: c.lora.dropout, targets: session.info.targets, parameters: session.info.parameterCount },
      hyperparameters: {
        epochs: c.epochs, lr: c.lr, microBatch: c.microBatch, gradAccum: c.gradAccum, effectiveBatch: c.microBatch * c.gradAccum,
        schedule: c.schedule, warmupSteps: res.warmupSteps, minLrRatio: c.minLrRatio, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
        beta1: c.beta1, beta2: c.beta2, eps: c.eps, maxLength: c.maxLength, bucketWindow: c.bucketWindow, maxSteps: c.maxSteps ?? null, seed,
      },
      data: {
        records: prepared.records, examples: prepared.trainIds.length, heldOut: prepared.heldOutIds.length, skipped: prepared.skipped,
        textSha256: prepared.textSha256, tokensSha256: prepared.tokensSha256, tokens: prepared.tokens, lossTokens: prepared.lossTokens, truncated: res.truncatedExamples,
      },
      qc: { passed: report.passed, forced: !report.passed },
      training: {
        steps: history.length, totalSteps: res.totalSteps, tokensSeen: res.tokensSeen, lossTokensSeen: res.lossTokensSeen,
        firstLoss: losses[0] ?? null, finalLoss: losses.at(-1) ?? null, fingerprint: res.fingerprint,
      },
      validation: before && after ? { before, after } : null,
      device: { backend: session.info.backend, device: session.info.device, baseStorage: model.info.storage, cpu: cpus()[0]?.model ?? "unknown" },
      engine: { llamaCpp: `${build.llamaVersion} (${build.llamaSource})`, trainer: `selftune-train ${SFT_VERSION}` },
    };
    await ctx.outputs.adapter.write("adapter.gguf", manifest, (tmp) =>
      session.saveAdapter(tmp, {
        "selftune.stage": ctx.stage.id,
        "selftune.base_model_sha256": modelSha,
        "selftune.data_sha256": prepared.textSha256,
        "selftune.qc_forced": String(!report.passed),
      }),
    );
    await ctx.writeFile("training-manifest.json", JSON.stringify(manifest, null, 2) + "\n");
    ctx.provenance.extra.sft = { modelSha256: modelSha, qcPassed: report.passed, qcForced: !report.passed, dataSha256: prepared.textSha256, seed, device: manifest.device, seconds: res.seconds, resumedAtStep };
    rmSync(checkpoint, { force: true });
    ctx.log.info(
      `sft: ${history.length} steps, ${res.tokensSeen} tokens in ${res.seconds.toFixed(1)} s; loss ${manifest.training.firstLoss?.toFixed(3)} -> ${manifest.training.finalLoss?.toFixed(3)}` +
        (manifest.validation ? `; held-out loss ${manifest.validation.before.loss.toFixed(3)} -> ${manifest.validation.after.loss.toFixed(3)}` : ""),
    );
  } finally {
    session.dispose();
    model.dispose();
  }
}
