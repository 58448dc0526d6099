// The dpo stage's work: QC gate, the starting policy (SFT adapter or a fresh LoRA), data,
// the reference (cached), training (resumable), adapter, metrics curve, manifest.
import { join } from "node:path";
import { sha256File } from "../../core/artifacts.ts";
import type { OptionalInput, StageContext } from "../../core/plugin.ts";
import { loadModel } from "../../native/index.ts";
import { type TrainData, type TrainSession } from "../../native/train.ts";
import { ModelInfoKind, PreferencePairKind } from "../shared/kinds.ts";
import { ModelService } from "../shared/model-service.ts";
import { stageModel } from "../shared/stage-model.ts";
import { LoraAdapterKind } from "../sft/kinds.ts";
import { baseModelRecord, curveStep, deviceRecord, engineOptions, engineRecord, hyperRecord, trainResumable, warnIfSlow } from "../sft/training.ts";
import type { DpoConfig } from "./config.ts";
import { preparePairs } from "./data.ts";
import { DpoAdapterKind, DpoStepKind, type DpoManifest, type DpoStep } from "./kinds.ts";
import { pairsQc } from "./qc.ts";
import { referenceSums, sumsSha256 } from "./reference.ts";

export const DPO_VERSION = "1.0.0";
const REFERENCE_CACHE = "reference.msgpack";
const METRICS = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"] as const;

type Ctx = StageContext<DpoConfig, { pairs: typeof PreferencePairKind; adapter: OptionalInput<typeof LoraAdapterKind>; model: OptionalInput<typeof ModelInfoKind> }, { adapter: typeof DpoAdapterKind; metrics: typeof DpoStepKind }>;

/** Summed response log-prob margins (chosen - rejected) of held-out pairs under the session. */
async function heldOutMargins(s: TrainSession, data: TrainData | null, c: DpoConfig, useLora: boolean) {
  if (!data) return null;
  const sums = await s.referenceLogprobs(data, { useLora, maxLength: c.maxLength, microBatch: c.referenceMicroBatch });
  const margins = Array.from({ length: sums.length / 2 }, (_, k) => sums[2 * k]! - sums[2 * k + 1]!);
  return { meanMargin: margins.reduce((a, b) => a + b, 0) / margins.length, favoured: margins.filter((m) => m > 0).length, pairs: margins.length };
}

/** The SFT adapter to start from, checked against the base model it must have been trained on. */
async function startAdapter(ctx: Ctx, modelSha: string) {
  const input = ctx.inputs.adapter;
  if (ctx.config.from === "base") {
    if (input) throw new Error(`dpo: from: base trains a fresh LoRA on the bare base and reads no adapter; remove \`adapter\` from this stage's inputs (it is wired to ${input.path})`);
    return null;
  }
  if (!input) throw new Error("dpo: from: sft needs the SFT adapter as its `adapter` input"); // the planner wires it for from: sft
  const meta = input.meta();
  if (meta.baseModel.sha256 !== modelSha) {
    throw new Error(`dpo: the SFT adapter was trained on ${meta.baseModel.path} (sha256 ${meta.baseModel.sha256.slice(0, 12)}), not on this stage's model (sha256 ${modelSha.slice(0, 12)})`);
  }
  return { path: input.path, record: { sha256: await sha256File(input.path), dataSha256: meta.data.textSha256, qcForced: meta.qc.forced } };
}

export async function runDpo(ctx: Ctx): Promise<void> {
  const c = ctx.config;
  // The training copy of the weights comes from the model service, which unloads every other
  // model first: never two models resident (SPEC §8's lesson).
  const service = await ModelService.of(ctx.services);
  const { path: modelPath, sha256: modelSha } = await stageModel(ctx, c.model, ctx.inputs.model, "dpo");
  const seed = c.seed ?? ctx.seed;

  const qc = await pairsQc(ctx);
  if (!qc.passed && !c.force) {
    throw new Error(`dpo: refusing pairs whose QC did not pass (stage '${qc.stage}', failed: ${qc.failedGates.join(", ")}); set force: true to train anyway (recorded in the manifest)`);
  }
  if (!qc.passed) ctx.log.warn("dpo: training on pairs whose QC did not pass (force: true)", { stage: qc.stage, failed: qc.failedGates });

  const start = await startAdapter(ctx, modelSha);
  const records = await ctx.inputs.pairs.all();
  const tok = await loadModel(modelPath, { vocabOnly: true });
  let prepared;
  try {
    prepared = preparePairs(records, tok, { heldOut: c.heldOut, seed });
  } finally {
    tok.dispose();
  }

  const training = await service.trainModel(modelPath, { backend: c.backend, storage: c.baseStorage }, ctx.log);
  const model = training.model;
  const common = { seed, threads: c.threads, checkpointActivations: c.checkpointActivations };
  const session = model.createSession(start ? { ...common, adapter: start.path } : { ...c.lora, ...common });
  ctx.log.info(`dpo: from ${c.from}, training on ${session.info.backend} (${session.info.device})`);
  try {
    // The reference is the starting policy: the SFT adapter, or the bare base for the baseline.
    const useLora = start !== null;
    const ref = await referenceSums(session, prepared.train, {
      tokensSha256: prepared.tokensSha256, baseModelSha256: modelSha, startAdapterSha256: start?.record.sha256 ?? null,
      useLora, maxLength: c.maxLength, backend: session.info.backend, baseStorage: model.info.storage,
    }, join(ctx.stage.dir, REFERENCE_CACHE), { microBatch: c.referenceMicroBatch, signal: ctx.signal });
    if (ref.reused) ctx.log.info("dpo: reference log-probs reused from the cache");
    const before = await heldOutMargins(session, prepared.heldOut, c, useLora);

    const opts = { ...engineOptions(c, seed, join(ctx.stage.dir, "checkpoint.bin"), ctx), objective: "dpo" as const, beta: c.beta, loss: c.loss, reference: ref.sums };
    warnIfSlow(ctx, "dpo", model, session, prepared.train, opts);
    const run = await trainResumable(ctx, "dpo", session, prepared.train, opts);
    if (!run) return;
    const { res, resumedAtStep } = run;
    const after = await heldOutMargins(session, prepared.heldOut, c, true);

    const history: DpoStep[] = res.history.map((r) => ({ ...curveStep(r), ...Object.fromEntries(METRICS.map((k) => [k, r.metrics?.[k] ?? 0])) }) as DpoStep);
    // No resume point (written at once; see sft): an interrupted stage writes it again in full.
    for (const r of history) ctx.outputs.metrics.write(r);

    const losses = history.map((r) => r.loss).filter((x): x is number => x !== null);
    const last = history.at(-1);
    const manifest: DpoManifest = {
      format: "gguf-lora",
      objective: "dpo",
      from: c.from,
      baseModel: baseModelRecord(modelPath, modelSha, model),
      startAdapter: start?.record ?? null,
      lora: { rank: session.info.rank, alpha: session.info.alpha, dropout: 0, targets: session.info.targets, parameters: session.info.parameterCount },
      hyperparameters: { ...hyperRecord(c, res, seed), beta: c.beta, loss: c.loss },
      data: {
        records: prepared.records, pairs: prepared.trainIds.length, heldOut: prepared.heldOutIds.length, textSha256: prepared.textSha256,
        tokensSha256: prepared.tokensSha256, tokens: prepared.tokens, lossTokens: prepared.lossTokens,
        meanLengthDifference: prepared.meanLengthDifference, truncated: res.truncatedExamples, bySource: prepared.bySource,
      },
      reference: { useLora, fingerprint: ref.fingerprint, cache: REFERENCE_CACHE, sumsSha256: sumsSha256(ref.sums) },
      qc: { ...qc, forced: !qc.passed },
      training: {
        steps: history.length, totalSteps: res.totalSteps, tokensSeen: res.tokensSeen, lossTokensSeen: res.lossTokensSeen,
        firstLoss: losses[0] ?? null, finalLoss: losses.at(-1) ?? null,
        final: last ? Object.fromEntries(METRICS.map((k) => [k, last[k]])) as NonNullable<DpoManifest["training"]["final"]> : null,
        fingerprint: res.fingerprint,
      },
      validation: before && after ? { before, after } : null,
      device: deviceRecord(session, model),
      engine: engineRecord(DPO_VERSION),
    };
    await ctx.outputs.adapter.write("adapter.gguf", manifest, (tmp) =>
      session.saveAdapter(tmp, {
        "selftune.stage": ctx.stage.id,
        "selftune.objective": "dpo",
        "selftune.dpo_from": c.from,
        "selftune.base_model_sha256": modelSha,
        "selftune.start_adapter_sha256": start?.record.sha256 ?? "",
        "selftune.data_sha256": prepared.textSha256,
        "selftune.qc_forced": String(!qc.passed),
      }),
    );
    await ctx.writeFile("training-manifest.json", JSON.stringify(manifest, null, 2) + "\n");
    ctx.provenance.extra.dpo = { from: c.from, modelSha256: modelSha, startAdapterSha256: start?.record.sha256 ?? null, qcPassed: qc.passed, qcForced: !qc.passed, dataSha256: prepared.textSha256, referenceReused: ref.reused, seed, device: manifest.device, seconds: res.seconds, resumedAtStep };
    // The checkpoint stays: see sft (a run interrupted before the stage is recorded done resumes from it).
    ctx.log.info(
      `dpo: ${history.length} steps in ${res.seconds.toFixed(1)} s; loss ${manifest.training.firstLoss?.toFixed(4)} -> ${manifest.training.finalLoss?.toFixed(4)}, margin ${last?.["rewards/margins"].toFixed(3)}, accuracy ${last?.["rewards/accuracies"].toFixed(2)}` +
        (manifest.validation ? `; held-out margin ${manifest.validation.before.meanMargin.toFixed(3)} -> ${manifest.validation.after.meanMargin.toFixed(3)}` : ""),
    );
  } finally {
    session.dispose();
    await training.release();
  }
}
