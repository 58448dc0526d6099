// The load stage (SPEC §1 stage 1, §2): a contamination-guarded model load.
// Loads (or synthesizes) the model through the run's model service, asserts the
// tokenizer guard, runs the sentinel probes and writes one `model-info` record.
import { resolve } from "node:path";
import { definePlugin } from "../../core/plugin.ts";
import { cachedModel } from "../../native/gguf/fixtures.ts";
import { nativeGenerator } from "../shared/native-generator.ts";
import { ModelInfoKind, type ModelInfo } from "../shared/kinds.ts";
import { ModelService, type ModelLoadOptions } from "../shared/model-service.ts";
import { LoaderConfig } from "./config.ts";
import { ContaminationGuard } from "./guard.ts";
import { modelProvenanceExtra, LOAD_OPTIONS_FILE } from "./open.ts";
import { fatalSentinels, runSentinels } from "./sentinels.ts";

export class SentinelFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SentinelFailure";
  }
}

export default definePlugin({
  name: "loader",
  version: "1.0.0",
  description: "contamination-guarded model load (no chat template, no special tokens), sentinel probes, model-info provenance",
  config: LoaderConfig,
  consumes: {},
  produces: { model: ModelInfoKind },
  async run(ctx) {
    const c = ctx.config;
    let path: string;
    if (c.synthesize) {
      const s = c.synthesize;
      path = await cachedModel(s.preset, { arch: s.arch, type: s.type, seed: s.seed });
      ctx.log.info(`loader: synthesized ${s.preset} ${s.arch} ${s.type} (seed ${s.seed}): ${path}`);
    } else path = resolve(c.model!);

    const load: ModelLoadOptions = {
      gpuLayers: c.gpuLayers,
      contextSize: c.contextSize,
      parallel: c.parallel,
      mmap: c.mmap,
      ...(c.threads !== undefined && { threads: c.threads }),
      ...(c.batchSize !== undefined && { batchSize: c.batchSize }),
      ...(c.ubatchSize !== undefined && { ubatchSize: c.ubatchSize }),
      ...(c.kvType !== undefined && { kvType: c.kvType }),
      ...(c.flashAttention !== undefined && { flashAttention: c.flashAttention }),
      ...(c.kvUnified !== undefined && { kvUnified: c.kvUnified }),
    };
    const service = await ModelService.of(ctx.services);
    const { model, provenance } = await service.acquire(path, { load, signal: ctx.signal, log: ctx.log });
    const guard = ContaminationGuard.forModel(model, c.allowSpecialTokens);

    const sentinels = await runSentinels(model, guard, nativeGenerator(model), c.sentinels, ctx.signal);
    for (const s of sentinels) {
      if (s.passed === false) ctx.log.warn(`sentinel '${s.name}' (${s.status}) failed: ${s.detail}`);
      else if (s.passed) ctx.log.info(`sentinel '${s.name}': ok (${s.detail})`);
    }

    const info: ModelInfo = {
      path,
      sha256: provenance.sha256,
      architecture: provenance.architecture,
      parameters: provenance.parameters,
      fileType: provenance.fileType,
      vocabSize: provenance.vocabSize,
      tokenizerSha256: provenance.tokenizerSha256,
      chatTemplate: provenance.chatTemplate,
      specialTokens: guard.special.map((t) => ({ id: t.id, text: t.text, type: t.type })),
      allowedSpecialTokens: [...guard.allowed],
      sentinels,
      backend: provenance.backend,
      device: provenance.device,
      nativeBuild: provenance.nativeBuild,
    };
    Object.assign(ctx.provenance.extra, modelProvenanceExtra(provenance), { chatTemplate: info.chatTemplate, sentinels: sentinels.map((s) => `${s.name}:${s.passed === null ? "off" : s.passed ? "ok" : "FAILED"}`) });
    ctx.outputs.model.write(info);
    ctx.outputs.model.commit();
    await ctx.writeFile(LOAD_OPTIONS_FILE, JSON.stringify(load, null, 2) + "\n");

    const fatal = fatalSentinels(sentinels);
    if (fatal) throw new SentinelFailure(fatal);
    ctx.log.info(`loader: ${info.architecture} ${info.fileType}, ${info.parameters.toLocaleString("en-US")} parameters, vocabulary ${info.vocabSize}, chat template ${info.chatTemplate}, ${info.specialTokens.length} special tokens guarded, ${info.device}`);
  },
});
