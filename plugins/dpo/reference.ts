// DPO's frozen reference: the starting policy's summed response log-probs, computed once by
// the engine's own forward and kept beside the run (MessagePack) under a key of everything
// they depend on. A resumed stage must reuse them: its session is the starting policy again
// only until the checkpoint is loaded, and the checkpoint is bound to these exact bits.
import { createHash } from "node:crypto";
import { readReferenceCache, writeReferenceCache, type TrainData, type TrainSession } from "../../native/train.ts";

export interface ReferenceKey {
  /** sha256 of the pairs' tokens and masks (chosen 2i, rejected 2i+1). */
  tokensSha256: string;
  baseModelSha256: string;
  /** The starting adapter's sha256; null for a fresh LoRA (the DPO-only baseline). */
  startAdapterSha256: string | null;
  useLora: boolean;
  maxLength: number;
  /** A device backend's GEMMs may change the last bits. */
  backend: string;
  baseStorage: string;
}

export function referenceFingerprint(key: ReferenceKey): string {
  const ordered = Object.fromEntries(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash("sha256").update(JSON.stringify({ reference: 1, ...ordered })).digest("hex");
}

export function sumsSha256(sums: Float64Array): string {
  return createHash("sha256").update(new Uint8Array(sums.buffer, sums.byteOffset, sums.byteLength)).digest("hex");
}

/** The cached sums for this key, else computed now (before any training step) and cached. */
export async function referenceSums(session: TrainSession, data: TrainData, key: ReferenceKey, cachePath: string, opts: { microBatch: number; signal: AbortSignal }) {
  const fingerprint = referenceFingerprint(key);
  const cached = readReferenceCache(cachePath, fingerprint);
  if (cached) return { sums: cached, fingerprint, reused: true };
  const sums = await session.referenceLogprobs(data, { useLora: key.useLora, maxLength: key.maxLength, microBatch: opts.microBatch, signal: opts.signal });
  writeReferenceCache(cachePath, { fingerprint, sums });
  return { sums, fingerprint, reused: false };
}
