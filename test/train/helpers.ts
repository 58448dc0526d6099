// Shared fixtures for the training-engine tests: tiny synthesized models, SFT texts made
// with the one training-text builder (plugins/prompts), and their response-only masks.
import { loadModel, type Model } from "../../native/index.ts";
import { cachedModel, tinyModel, type SynthArch, type SynthType } from "../../native/gguf/index.ts";
import { lossMask, packExamples, type TrainData, type TrainExample } from "../../native/train.ts";
import { trainingText } from "../../plugins/prompts/prompts.ts";

export const PAIRS: [string, string][] = [
  ["Say hi.", "Hi!"],
  ["Add 2 and 3.", "5"],
  ["Name a color.", "Blue."],
  ["What is the capital of France?", "Paris."],
  ["Say goodbye politely.", "Goodbye, and thank you!"],
  ["Count to three.", "1, 2, 3."],
  ["What is 1+1?", "2"],
  ["Name an animal that can fly.", "A sparrow."],
  ["Give the opposite of hot.", "Cold."],
  ["Spell cat backwards.", "tac"],
  ["Name a fruit.", "An apple."],
  ["What color is the sky on a clear day?", "Blue."],
];

export function tiny(arch: SynthArch = "qwen2", type: SynthType = "f32"): Promise<string> {
  return tinyModel({ arch, type });
}

/** The tiny shape widened to 256 so that K-quants (256-element blocks) apply to every matrix. */
export function tiny256(arch: SynthArch = "qwen2"): Promise<string> {
  return cachedModel("tiny", { arch, type: "f32", shape: { hidden: 256, ffn: 512, heads: 4, kvHeads: 2 } });
}

const tokenizers = new Map<string, Promise<Model>>();
/** A vocabulary-only load of the model's tokenizer (cached per path for the test process). */
export function tokenizer(path: string): Promise<Model> {
  let t = tokenizers.get(path);
  if (!t) {
    t = loadModel(path, { vocabOnly: true });
    tokenizers.set(path, t);
  }
  return t;
}

export function examples(tok: Model, pairs: [string, string][] = PAIRS): TrainExample[] {
  return pairs.map(([i, r]) => {
    const t = trainingText(i, r);
    const m = lossMask(tok, t.text, t.lossBytes);
    return { tokens: m.tokens, loss: m.loss };
  });
}

export async function sftData(path: string, pairs: [string, string][] = PAIRS): Promise<TrainData> {
  return packExamples(examples(await tokenizer(path), pairs));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

export function bitEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

const PAIR_WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle", "forest", "rocket", "garden", "mirror"];
const HELD_PAIR_WORDS = ["bridge", "silver", "window", "ocean", "pencil", "castle", "meadow", "thunder", "violet", "saddle", "harbor", "copper"];

/**
 * Preference pairs that differ systematically (issue 11 item 6): the chosen response opens
 * with "Sure." before the answer, the rejected one is the bare answer. `heldOut`: instructions
 * and answers disjoint from the training ones (other words, larger numbers).
 */
export function patternPairs(n: number, heldOut = false): { instruction: string; chosen: string; rejected: string }[] {
  const words = heldOut ? HELD_PAIR_WORDS : PAIR_WORDS;
  return Array.from({ length: n }, (_, k) => {
    const i = (heldOut ? 200 : 0) + k, w = words[k % words.length]!, a = (i * 7) % 10 + 10 * Math.floor(i / 10), b = (i * 3 + 1) % 10;
    const [instruction, answer] = [
      [`What is ${a} plus ${b}?`, `${a + b}`],
      [`Repeat the word ${w}.`, w],
      [`Write the word ${w} in capitals.`, w.toUpperCase()],
      [`Say hello to ${w}.`, `Hello, ${w}!`],
    ][i % 4]!;
    return { instruction: instruction!, chosen: `Sure. ${answer}`, rejected: answer! };
  });
}

/**
 * What the CPU training engine's tests compare against: llama.cpp computing on the CPU
 * (no layers on a GPU, no large-batch op offload), so a CUDA build gives the same
 * reference as the CPU build. The CUDA training backend has its own checks against the
 * CPU engine (native/bench/train_cuda_parity.sh, specs/training.md).
 */
export const LLAMA_ON_CPU = { gpuLayers: 0, opOffload: false } as const;
/** The CPU engine, whatever the build: these tests prove its exact properties. */
export const CPU_ENGINE = { backend: "cpu" } as const;
