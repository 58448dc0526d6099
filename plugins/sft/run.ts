// The sft stage's work: QC gate, data, training (resumable), adapter, loss curve, manifest.
import { join } from "node:path";
import type { OptionalInput, StageContext } from "../../core/plugin.ts";
import { loadModel } from "../../native/index.ts";
import { type EvalResult, type TrainData, type TrainSession } from "../../native/train.ts";
import { ModelInfoKind, QcReportKind, SftExampleKind } from "../shared/kinds.ts";
import { ModelService } from "../shared/model-service.ts";
import { stageModel } from "../shared/stage-model.ts";
import type { SftConfig } from "./config.ts";
import { prepareSftData } from "./data.ts";
import { LoraAdapterKind, TrainStepKind, type TrainingManifest, type TrainStep } from "./kinds.ts";
import { baseModelRecord, curveStep, deviceRecord, engineOptions, engineRecord, hyperRecord, trainResumable, warnIfSlow } from "./training.ts";

export const SFT_VERSION = "1.0.0";

type Ctx = StageContext<SftConfig, { examples: typeof SftExampleKind; qc: typeof QcReportKind; model: OptionalInput<typeof ModelInfoKind> }, { adapter: typeof LoraAdapterKind; lossCurve: typeof TrainStepKind }>;

async function validation(s: TrainSession, data: TrainData | null, useLora: boolean) {
  if (!data) return null;
  const r: EvalResult = await s.evaluate(data, { useLora });
  return { loss: r.lossSum / r.lossTokens, tokens: r.lossTokens };
}

export async function runSft(ctx: Ctx): Promise<void> {
  const c = ctx.config;
  // The training copy of the weights comes from the model service, which unloads every other
  // model first: never two models resident (SPEC §8's lesson).
  const service = await ModelService.of(ctx.services);
  const { path: modelPath, sha256: modelSha } = await stageModel(ctx, c.model, ctx.inputs.model, "sft");
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

  const training = await service.trainModel(modelPath, { backend: c.backend, storage: c.baseStorage }, ctx.log);
  const model = training.model;
  const session = model.createSession({ ...c.lora, seed, threads: c.threads, checkpointActivations: c.checkpointActivations });
  ctx.log.info(`sft: training on ${session.info.backend} (${session.info.device})`);
  const checkpoint = join(ctx.stage.dir, "checkpoint.bin");
  try {
    const before = await validation(session, prepared.heldOut, false);
    const opts = engineOptions(c, seed, checkpoint, ctx);
    warnIfSlow(ctx, "sft", model, session, prepared.train, opts);
    const run = await trainResumable(ctx, "sft", session, prepared.train, opts);
    if (!run) return;
    const { res, resumedAtStep } = run;
    const after = await validation(session, prepared.heldOut, true);

    // Step timings are wall-clock: they go to the run manifest, not into the artifact.
    // No resume point: the whole curve is written at once, so a stage interrupted after
    // this (Ctrl-C while the adapter is saved) writes it again in full — a cursor here
    // would keep this copy and the next run's would follow it.
    const history: TrainStep[] = res.history.map(curveStep);
    for (const r of history) ctx.outputs.lossCurve.write(r);

    const losses = history.map((r) => r.loss).filter((x): x is number => x !== null);
    const manifest: TrainingManifest = {
      format: "gguf-lora",
      baseModel: baseModelRecord(modelPath, modelSha, model),
      lora: { rank: session.info.rank, alpha: session.info.alpha, dropout: c.lora.dropout, targets: session.info.targets, parameters: session.info.parameterCount },
      hyperparameters: hyperRecord(c, res, seed),
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
      device: deviceRecord(session, model),
      engine: engineRecord(SFT_VERSION),
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
    // The checkpoint stays (it holds the last step): a run interrupted from here until the
    // pipeline records the stage done resumes from it instead of training again; it goes
    // when the stage starts from scratch (other config or inputs, --from).
    ctx.log.info(
      `sft: ${history.length} steps, ${res.tokensSeen} tokens in ${res.seconds.toFixed(1)} s; loss ${manifest.training.firstLoss?.toFixed(3)} -> ${manifest.training.finalLoss?.toFixed(3)}` +
        (manifest.validation ? `; held-out loss ${manifest.validation.before.loss.toFixed(3)} -> ${manifest.validation.after.loss.toFixed(3)}` : ""),
    );
  } finally {
    session.dispose();
    await training.release();
  }
}
