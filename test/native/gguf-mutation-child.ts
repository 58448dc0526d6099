// Child process of test/native/gguf-mutation.test.ts: puts each file of a batch through
// every reader of GGUF files and prints one JSON line per file. A crash or hang kills only
// this process; the parent sees which file it was on from the last "start" line.
//
//   bun test/native/gguf-mutation-child.ts <jobs.json>
//   jobs.json: { bases: { llama, qwen2 }, jobs: [{ path, kind: "model"|"adapter", arch }] }

import { readFileSync } from "node:fs";
import { checkGguf, loadAdapter, loadModel, setLogLevel, type Model } from "../../native/index.ts";
import { modelFileReport } from "../../native/model-command.ts";
import { loadTrainModel, type TrainModel } from "../../native/train.ts";

interface Job {
  path: string;
  kind: "model" | "adapter";
  arch: "llama" | "qwen2";
}
type Outcome = { ok: true; finite?: boolean } | { ok: false; error: string };

const spec = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as { bases: Record<string, string>; jobs: Job[] };
setLogLevel("none");
const out = (o: object) => process.stdout.write(JSON.stringify(o) + "\n");
const PROMPT = "Hello world, once upon a time";
const failed = (e: unknown): Outcome => ({ ok: false, error: (e as Error).message ?? String(e) });

async function finiteLogits(model: Model, adapter?: Awaited<ReturnType<typeof loadAdapter>>): Promise<boolean> {
  const tokens = model.tokenize(PROMPT);
  if (tokens.length === 0) return true;
  const logits = await model.evalLogits(tokens.slice(0, 16), adapter ? { adapters: [{ adapter }] } : {});
  for (const x of logits) if (!Number.isFinite(x)) return false;
  return true;
}

async function viaLoader(path: string): Promise<Outcome> {
  let model: Model | undefined;
  try {
    model = await loadModel(path, { contextSize: 64, parallel: 1, threads: 1, batchSize: 64, ubatchSize: 64 });
    return { ok: true, finite: await finiteLogits(model) };
  } catch (e) {
    return failed(e);
  } finally {
    model?.dispose();
  }
}

// The tokenizer alone (vocabOnly, as the tokenizer tests load vocabulary files): every
// token's text, and a round trip of a prompt.
async function viaVocabulary(path: string): Promise<Outcome> {
  let model: Model | undefined;
  try {
    model = await loadModel(path, { vocabOnly: true });
    const ids = Array.from({ length: model.info.vocabSize }, (_, i) => i);
    model.detokenize(ids);
    for (const id of ids.slice(0, 600)) model.tokenBytes(id);
    model.detokenize(model.tokenize(PROMPT));
    return { ok: true };
  } catch (e) {
    return failed(e);
  } finally {
    model?.dispose();
  }
}

async function viaTrainer(path: string, base?: TrainModel): Promise<Outcome> {
  let model: TrainModel | undefined;
  try {
    if (base) {
      base.createSession({ adapter: path, threads: 1 }).dispose();
      return { ok: true };
    }
    model = await loadTrainModel(path, { backend: "cpu" });
    return { ok: true };
  } catch (e) {
    return failed(e);
  } finally {
    model?.dispose();
  }
}

// The valid model each adapter is loaded onto, for the inference and the training engine.
const baseModels = new Map<string, Model>();
const baseTrainModels = new Map<string, TrainModel>();
async function bases(arch: string): Promise<[Model, TrainModel]> {
  if (!baseModels.has(arch)) {
    baseModels.set(arch, await loadModel(spec.bases[arch]!, { contextSize: 64, parallel: 1, threads: 1 }));
    baseTrainModels.set(arch, await loadTrainModel(spec.bases[arch]!, { backend: "cpu" }));
  }
  return [baseModels.get(arch)!, baseTrainModels.get(arch)!];
}

for (let i = 0; i < spec.jobs.length; i++) {
  const job = spec.jobs[i]!;
  out({ start: i });
  let check: Outcome;
  try {
    checkGguf(job.path);
    check = { ok: true };
  } catch (e) {
    check = failed(e);
  }
  let info: Outcome;
  try {
    const r = modelFileReport(job.path);
    info = r.check.valid ? { ok: true } : { ok: false, error: r.check.valid === false ? r.check.problem : "unchecked" };
  } catch (e) {
    info = { ok: false, error: `model info threw: ${(e as Error).message}` };
  }
  let load: Outcome;
  let train: Outcome;
  let vocab: Outcome = { ok: true };
  if (job.kind === "model") {
    vocab = await viaVocabulary(job.path);
    load = await viaLoader(job.path);
    train = await viaTrainer(job.path);
  } else {
    const [model, trainModel] = await bases(job.arch);
    try {
      const adapter = await loadAdapter(model, job.path);
      try {
        load = { ok: true, finite: await finiteLogits(model, adapter) };
      } finally {
        adapter.dispose();
      }
    } catch (e) {
      load = failed(e);
    }
    train = await viaTrainer(job.path, trainModel);
  }
  out({ done: i, check, info, load, train, vocab });
}
out({ finished: true });
process.exit(0);
