// Instruction normalisation and duplicate detection (exact + near-duplicate).
//
// Exact: equal after normalizeInstruction. Near: Jaccard similarity of the
// character 5-gram sets of the normalised texts at or above a threshold (0.7 by
// default). Character shingles suit one-line instructions better than word
// shingles: "colors"/"colours" or a dropped article still overlap, while
// "the capital of France" vs "... of Spain" stay apart (0.63).
//
// To avoid comparing every pair, candidates are found with MinHash + LSH
// banding (32 bands × 3 rows); every candidate's similarity is then computed
// exactly, so a reported duplicate is always a true one. Banding can only miss:
// a pair at similarity 0.7 is missed with probability (1 − 0.7³)³² ≈ 1.5e-6.
import { fmix32, Rng } from "./rng.ts";

// Arithmetic symbols are kept as tokens: "5+3" and "5-3" must not collide.
const TOKEN = /[\p{L}\p{N}]+|[+\-*/×÷=%<>^]/gu;

/** The comparison key of an instruction: NFKC, lower case, letters/digits and
 *  arithmetic symbols as space-separated tokens; all other punctuation dropped. */
export function normalizeInstruction(text: string): string {
  return (text.normalize("NFKC").toLowerCase().match(TOKEN) ?? []).join(" ");
}

/** Character n-grams of a normalised text (the whole text when shorter than n). */
export function shingles(normalized: string, n = 5): Set<string> {
  const out = new Set<string>();
  if (normalized.length === 0) return out;
  if (normalized.length <= n) {
    out.add(normalized);
    return out;
  }
  for (let i = 0; i + n <= normalized.length; i++) out.add(normalized.slice(i, i + n));
  return out;
}

/** |A ∩ B| / |A ∪ B|; two empty sets are identical (1). */
export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let inter = 0;
  for (const s of small) if (large.has(s)) inter++;
  return inter / (a.size + b.size - inter);
}

/** Near-duplicate similarity of two instructions, computed directly. */
export function similarity(a: string, b: string, shingleSize = 5): number {
  return jaccard(shingles(normalizeInstruction(a), shingleSize), shingles(normalizeInstruction(b), shingleSize));
}

export interface DuplicateOptions {
  /** Jaccard similarity at or above which two texts are near-duplicates (default 0.7). */
  threshold?: number;
  /** Character n-gram size (default 5). */
  shingleSize?: number;
  /** LSH bands × rows = MinHash functions (default 32 × 3). */
  bands?: number;
  rows?: number;
}

export type DuplicateVerdict = { kind: "unique" } | { kind: "exact" | "near"; of: string; similarity: number };

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface Entry {
  id: string;
  shingles: Set<string>;
}

/** An index of texts seen so far, answering "is this a duplicate, and of what?". */
export class DuplicateIndex {
  readonly threshold: number;
  readonly shingleSize: number;
  private readonly bands: number;
  private readonly rows: number;
  private readonly salts: number[];
  private readonly exact = new Map<string, string>();
  private readonly buckets = new Map<string, Entry[]>();
  private count = 0;

  constructor(opts: DuplicateOptions = {}) {
    this.threshold = opts.threshold ?? 0.7;
    this.shingleSize = opts.shingleSize ?? 5;
    this.bands = opts.bands ?? 32;
    this.rows = opts.rows ?? 3;
    if (!(this.threshold > 0 && this.threshold <= 1)) throw new Error(`near-duplicate threshold must be in (0, 1], got ${this.threshold}`);
    // Fixed salts: the index must behave identically in every run.
    const rng = new Rng(0, "minhash");
    this.salts = Array.from({ length: this.bands * this.rows }, () => rng.nextU32());
  }

  get size(): number {
    return this.count;
  }

  private bandKeys(sh: Set<string>): string[] {
    const mins = new Array<number>(this.salts.length).fill(0xffffffff);
    for (const s of sh) {
      const h = fnv1a(s);
      for (let i = 0; i < this.salts.length; i++) {
        const v = fmix32(h ^ this.salts[i]!);
        if (v < mins[i]!) mins[i] = v;
      }
    }
    const keys: string[] = [];
    for (let b = 0; b < this.bands; b++) keys.push(`${b}:${mins.slice(b * this.rows, (b + 1) * this.rows).join(",")}`);
    return keys;
  }

  private lookup(norm: string, sh: Set<string>, keys: string[]): DuplicateVerdict {
    const same = this.exact.get(norm);
    if (same !== undefined) return { kind: "exact", of: same, similarity: 1 };
    let best: { id: string; sim: number } | null = null;
    const seen = new Set<Entry>();
    for (const key of keys) {
      for (const e of this.buckets.get(key) ?? []) {
        if (seen.has(e)) continue;
        seen.add(e);
        const sim = jaccard(sh, e.shingles);
        if (sim >= this.threshold && (!best || sim > best.sim)) best = { id: e.id, sim };
      }
    }
    return best ? { kind: "near", of: best.id, similarity: best.sim } : { kind: "unique" };
  }

  /** Is `text` a duplicate of something in the index? (Does not add it.) */
  check(text: string): DuplicateVerdict {
    const norm = normalizeInstruction(text);
    const sh = shingles(norm, this.shingleSize);
    return this.lookup(norm, sh, this.bandKeys(sh));
  }

  /** Add `text` under `id` if it is not a duplicate; return the verdict either way. */
  add(id: string, text: string): DuplicateVerdict {
    const norm = normalizeInstruction(text);
    const sh = shingles(norm, this.shingleSize);
    const keys = this.bandKeys(sh);
    const verdict = this.lookup(norm, sh, keys);
    if (verdict.kind === "unique") this.put(id, norm, sh, keys);
    return verdict;
  }

  /** Add `text` unconditionally (a reference set, e.g. training data, that may hold its own duplicates). */
  insert(id: string, text: string): void {
    const norm = normalizeInstruction(text);
    const sh = shingles(norm, this.shingleSize);
    this.put(id, norm, sh, this.bandKeys(sh));
  }

  private put(id: string, norm: string, sh: Set<string>, keys: string[]): void {
    if (!this.exact.has(norm)) this.exact.set(norm, id);
    const entry: Entry = { id, shingles: sh };
    for (const key of keys) {
      const list = this.buckets.get(key);
      if (list) list.push(entry);
      else this.buckets.set(key, [entry]);
    }
    this.count++;
  }
}

/** Keep the first of every group of duplicates, in input order. */
export function dedupe<T>(items: readonly T[], id: (t: T) => string, text: (t: T) => string, opts: DuplicateOptions = {}): { kept: T[]; dropped: { item: T; verdict: Exclude<DuplicateVerdict, { kind: "unique" }> }[] } {
  const index = new DuplicateIndex(opts);
  const kept: T[] = [];
  const dropped: { item: T; verdict: Exclude<DuplicateVerdict, { kind: "unique" }> }[] = [];
  for (const item of items) {
    const v = index.add(id(item), text(item));
    if (v.kind === "unique") kept.push(item);
    else dropped.push({ item, verdict: v });
  }
  return { kept, dropped };
}
