// The data plugins' view of text generation: token-id prompts in (already checked
// by the contamination guard), one result per request out, in request order.
//
// `nativeGenerator(model|context)` binds it to the addon's batched generator
// (native/generate.ts); tests and user plugins may pass any TextGenerator.
import type { StopReason, StopToken } from "../../native/index.ts";
import type { SamplingParams } from "./kinds.ts";

/** Decoding parameters sent with one request. */
export interface RequestSampling {
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  /** 0 = off. Always sent explicitly, so what is recorded is what ran. */
  minP: number;
  /** 1 = off. */
  repetitionPenalty: number;
  maxTokens: number;
  seed: number;
  stop: string[];
}

export interface GenerationRequest {
  /** Token ids (guarded). */
  prompt: number[];
  sampling: RequestSampling;
}

export interface GenerationResult {
  /** The generated text, cut before the stop string when one matched. */
  text: string;
  /** Generated token ids (the token that ended it, stopToken, excluded). */
  tokens: number[];
  /** eos: end-of-generation token; control: another control token ended it; length: maxTokens reached; stop: a stop string matched. */
  stop: StopReason;
  stopString: string | null;
  /** The end-of-generation or control token that ended it (never in text or tokens); absent or null otherwise. */
  stopToken?: StopToken | null;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  /** Requests finished so far (any order), for progress bars. */
  onProgress?: (done: number, total: number) => void;
}

export interface TextGenerator {
  generate(requests: GenerationRequest[], opts?: GenerateOptions): Promise<GenerationResult[]>;
}

/** The recordable part of a request's sampling (the `SamplingParams` record field). */
export function recordedSampling(s: Pick<RequestSampling, "temperature" | "topP" | "topK" | "repetitionPenalty" | "maxTokens">): SamplingParams {
  return { temperature: s.temperature, topP: s.topP, topK: s.topK, repetitionPenalty: s.repetitionPenalty, maxTokens: s.maxTokens };
}

/** The generated text with the stop string put back (what cleanResponse expects as raw). */
export function rawWithStop(r: GenerationResult): string {
  return r.stop === "stop" && r.stopString ? r.text + r.stopString : r.text;
}
