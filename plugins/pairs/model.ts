// One model for the whole stage, from the run's model service: the base. The SFT model
// is that base with the sft stage's adapter applied to a generation call; the critic
// scores with no adapter, so the judge is the base model. Nothing else is loaded.
import type { Logger, Services } from "../../core/plugin.ts";
import type { FileArtifact } from "../../core/artifacts.ts";
import type { Adapter } from "../../native/index.ts";
import { Critic } from "../critic/critic.ts";
import { openModel, type OpenedModel } from "../loader/open.ts";
import type { TextGenerator } from "../shared/generation.ts";
import type { ModelInfo } from "../shared/kinds.ts";
import { ModelService } from "../shared/model-service.ts";
import { nativeGenerator } from "../shared/native-generator.ts";
import type { EngineScorer, ScorerChoice, ScorerProvenance } from "../shared/scorer.ts";
import type { TrainingManifest } from "../sft/kinds.ts";

export interface PairsModel extends OpenedModel {
  adapterPath: string;
  scorer: ScorerProvenance;
  /** One batch on the model's work context (kept across batches only where that cannot change a result: OpenedModel.inWorkContext). */
  batch<T>(fn: (w: { sft: TextGenerator; base: TextGenerator; critic: Critic }) => Promise<T>): Promise<T>;
  /** Nothing to free: the model and the adapter belong to the model service. */
  dispose(): void;
}

export async function pairsModel(services: Services, input: AsyncIterable<ModelInfo> & { path?: string }, adapterArt: FileArtifact<TrainingManifest>, opts: { scorer?: ScorerChoice; needAdapter: boolean; signal?: AbortSignal; log?: Logger }): Promise<PairsModel> {
  const m = await openModel(services, input, opts);
  const meta = adapterArt.meta();
  // An adapter trained on another file would load (same architecture) and quietly mean nothing.
  if (opts.needAdapter && meta.baseModel.sha256 !== m.info.sha256) {
    throw new Error(`the sft adapter ${adapterArt.path} was trained on ${meta.baseModel.path} (sha256 ${meta.baseModel.sha256.slice(0, 12)}), not on the loaded model ${m.info.path} (${m.info.sha256.slice(0, 12)})`);
  }
  const service = await ModelService.of(services);
  // The service owns the adapter (loaded once, kept with the model); applied per generation call.
  const adapter: Adapter | null = opts.needAdapter ? await service.adapter(m.provenance.path, adapterArt.path) : null;
  const sel = await service.scorer(m.provenance.path, { scorer: opts.scorer, log: opts.log });
  const engine: EngineScorer | null = sel.engine;
  return {
    ...m,
    adapterPath: adapterArt.path,
    scorer: sel.provenance,
    batch: (fn) =>
      m.inWorkContext((ctx) => {
        const sft = nativeGenerator(ctx, adapter ? { adapters: [{ adapter, scale: 1 }] } : {});
        return fn({ sft, base: nativeGenerator(ctx), critic: new Critic(engine ?? ctx, m.guard, m.model) });
      }),
    dispose() {}, // the model and its adapter stay with the service
  };
}
