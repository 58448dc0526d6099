// Cached synthesized models for tests. Many test files ask for the same tiny model; the
// first call writes it into .cache/models/ (git-ignored), later calls and later runs reuse
// it. The cache key covers every option and SYNTH_VERSION, so a generator change never
// serves stale bytes. Safe under concurrency: calls in one process share one promise, and
// processes racing on the same file each write a private temp file and rename it into place
// (identical bytes, so whichever rename lands last is as good as the first).

import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { SYNTH_VERSION, synthesizeModel, type ModelShape, type SynthArch, type SynthPreset, type SynthType, DEFAULT_VOCAB } from "./synth.ts";
import { REPO_ROOT, vocabPath } from "./vocab.ts";

export function modelCacheDir(): string {
  return process.env.SELFTUNE_MODEL_CACHE ?? join(REPO_ROOT, ".cache", "models");
}

export interface FixtureModelOptions {
  arch?: SynthArch;
  type?: SynthType;
  seed?: number;
  /** Vocab name or path; default qwen2 for qwen2, llama-spm for llama. */
  vocab?: string;
  shape?: Partial<ModelShape>;
}

const pending = new Map<string, Promise<string>>();

function cacheKey(preset: SynthPreset, o: Required<Omit<FixtureModelOptions, "shape">> & { shape: Partial<ModelShape> }, vocabFile: string): string {
  const vocabStat = statSync(vocabFile);
  const shape = Object.fromEntries(Object.entries(o.shape).sort(([a], [b]) => a.localeCompare(b)));
  const identity = JSON.stringify({ v: SYNTH_VERSION, preset, arch: o.arch, type: o.type, seed: o.seed, vocab: [basename(vocabFile), vocabStat.size], shape });
  return new Bun.CryptoHasher("sha256").update(identity).digest("hex").slice(0, 12);
}

/** Path of a cached synthesized model of `preset` shape, synthesizing it on first use. */
export function cachedModel(preset: SynthPreset, options: FixtureModelOptions = {}): Promise<string> {
  const arch = options.arch ?? "qwen2";
  const o = { arch, type: options.type ?? "f32", seed: options.seed ?? 0, vocab: options.vocab ?? DEFAULT_VOCAB[arch], shape: options.shape ?? {} };
  const vocabFile = o.vocab.endsWith(".gguf") || o.vocab.includes("/") ? o.vocab : vocabPath(o.vocab);
  const dir = modelCacheDir();
  const path = join(dir, `${preset}-${o.arch}-${o.type}-s${o.seed}-${cacheKey(preset, o, vocabFile)}.gguf`);
  const inFlight = pending.get(path);
  if (inFlight) return inFlight;
  if (existsSync(path)) return Promise.resolve(path);
  mkdirSync(dir, { recursive: true });
  const job = synthesizeModel({ arch: o.arch, preset, type: o.type, seed: o.seed, vocab: vocabFile, shape: o.shape, out: path }).finally(() => pending.delete(path));
  pending.set(path, job);
  return job;
}

/**
 * A tiny model (hidden 64, 2 layers, real vocabulary) for tests; default qwen2, f32, seed 0.
 * qwen2: 151,936 tokens, tied embeddings, 9.8M parameters: 45 MB as f32, 26 MB as f16.
 * llama: 32,000-token SentencePiece vocabulary, separate output, 4.2M: 17 MB f32, 9 MB f16.
 * The first call per option set takes ~0.1-0.5 s; later ones return the cached path.
 */
export function tinyModel(options: FixtureModelOptions = {}): Promise<string> {
  return cachedModel("tiny", options);
}
