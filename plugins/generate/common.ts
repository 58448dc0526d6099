// What both generating stages share: the model from the run's model service, the
// guard, the generator and the critic; provenance facts; pilot/scale parameters.
import type { RunManifestLike, Services, Logger } from "../../core/plugin.ts";
import type { z } from "zod";
import { Critic, criticChoiceRecord } from "../critic/critic.ts";
import { modelProvenanceExtra, openModel, type OpenedModel } from "../loader/open.ts";
import { PROMPT_FORMAT_VERSION } from "../prompts/prompts.ts";
import { promptFormatsSha256 } from "../prompts/spec.ts";
import type { GenerationResult, TextGenerator } from "../shared/generation.ts";
import type { ModelInfo } from "../shared/kinds.ts";
import { nativeGenerator } from "../shared/native-generator.ts";
import { ModelService } from "../shared/model-service.ts";
import type { EngineScorer, ScorerChoice, ScorerProvenance } from "../shared/scorer.ts";
import { conflicts, overlay, pickParams } from "./config.ts";
import { pilotParameters } from "./pilot.ts";

export interface StageModel extends OpenedModel {
  /**
   * Run one batch of work with a generator and a critic on the model's work context
   * (OpenedModel.inWorkContext): one context kept across batches where a batch's output
   * cannot depend on what ran before (split KV caches), else a fresh one per batch — either
   * way the same bytes in a full run, a resumed one or `--only`.
   */
  batch<T>(fn: (w: { generator: TextGenerator; critic: Critic }) => Promise<T>): Promise<T>;
  /**
   * Picks the critic's scorer (model service scorer(); undefined = auto; llama.cpp until this is called).
   * `needed` false (the critic is off) loads nothing and gives null.
   */
  selectScorer(choice: ScorerChoice | undefined, needed: boolean): Promise<ScorerProvenance | null>;
}

export async function stageModel(services: Services, input: AsyncIterable<ModelInfo> & { path?: string }, opts: { signal?: AbortSignal; log?: Logger }): Promise<StageModel> {
  const opened = await openModel(services, input, opts);
  let engine: EngineScorer | null = null;
  return {
    ...opened,
    batch: (fn) => opened.inWorkContext((ctx) => fn({ generator: nativeGenerator(ctx), critic: new Critic(engine ?? ctx, opened.guard, opened.model) })),
    async selectScorer(choice, needed) {
      if (!needed) return null;
      const sel = await (await ModelService.of(services)).scorer(opened.provenance.path, { scorer: choice, log: opts.log });
      engine = sel.engine;
      return sel.provenance;
    },
  };
}

export function provenanceExtra(m: OpenedModel): Record<string, unknown> {
  // critic: the labels the critic reads for this tokenizer and how (SPEC §4), so the prompts it judged with are known.
  return { ...modelProvenanceExtra(m.provenance), promptFormatVersion: PROMPT_FORMAT_VERSION, promptFormatsSha256: promptFormatsSha256(), critic: criticChoiceRecord(m.model, m.guard) };
}

/**
 * The parameters a stage runs with: pilot mode = SPEC §5 defaults overlaid with the
 * config; scale mode = the passed pilot's recorded parameters (config may not differ).
 */
export async function resolveParams<P extends Record<string, unknown>>(opts: {
  config: Record<string, unknown> & { mode: "pilot" | "scale"; pilot?: string; allowModelChange: boolean };
  keys: readonly string[];
  defaults: P;
  schema: z.ZodType<P>;
  plugin: string;
  stageId: string;
  modelSha256: string;
  readManifest: (dir: string) => Promise<RunManifestLike | null>;
}): Promise<{ params: P; pilot: { dir: string; runId: string; qcStage: string; stage: string } | null }> {
  const configured = pickParams(opts.config, opts.keys);
  if (opts.config.mode === "pilot") {
    const params = opts.schema.parse(overlay(opts.defaults, configured));
    return { params, pilot: null };
  }
  const p = await pilotParameters({
    pilot: opts.config.pilot!,
    plugin: opts.plugin,
    stageId: opts.stageId,
    schema: opts.schema,
    readManifest: opts.readManifest,
    configured,
    modelSha256: opts.modelSha256,
    allowModelChange: opts.config.allowModelChange,
    fromConfig: (c) => overlay(opts.defaults, pickParams(c, opts.keys)),
  });
  if (conflicts(configured, p.params).length) throw new Error("unreachable: conflicts are checked by pilotParameters");
  return { params: p.params, pilot: { dir: p.pilotDir, runId: p.pilotRunId, qcStage: p.qcStage, stage: p.sourceStage } };
}

/**
 * A special token the model generates (other than end-of-generation) is structure, not
 * text: the generation ends there, as at end-of-generation. The generator itself ends it at
 * a control or unknown token (stop "control", the token outside text and tokens); a
 * user-defined one (Qwen2's "<tool_call>") is cut here (text re-made from the tokens before
 * it; stop "eos"). Either way special-token text never enters instructions or responses,
 * where a later tokenization (SFT) could turn it back into the special id; `cut` counts both.
 */
export function cutAtSpecialToken(r: GenerationResult, m: Pick<OpenedModel, "guard" | "model">): { result: GenerationResult; cut: boolean } {
  if (r.stop === "control") return { result: r, cut: true };
  const eog = new Set(m.model.info.eogTokenIds);
  const k = r.tokens.findIndex((id) => m.guard.blocked.has(id) && !eog.has(id));
  if (k < 0) return { result: r, cut: false };
  const tokens = r.tokens.slice(0, k);
  return { result: { text: m.model.detokenize(tokens), tokens, stop: "eos", stopString: null }, cut: true };
}
