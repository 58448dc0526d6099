// The response cache: a re-run evaluates only what changed. A cached response is
// reused when the variant hash (model sha256, adapters' sha256 and scales,
// decoding parameters, prompt format) and the item's prompt (sha256 of the exact
// prompt text, so the instruction text is covered) are both unchanged.
//
// It lives outside the stage directory (the pipeline wipes that when the config
// changes, which is exactly when the cache must survive), one append-only JSONL
// file per variant hash, fsynced after each batch, so an interrupted evaluation
// also resumes from it.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { atomicWriteFile, sha256File } from "../../core/artifacts.ts";
import { canonicalJson, sha256 } from "../../core/provenance.ts";
import type { DecodeOptions, Generation, Variant } from "./generator.ts";

/** sha256 of model files is slow for multi-GB GGUFs: remember it by (path, size, mtime). */
export class FileHashes {
  private readonly file: string;
  private entries: Record<string, { size: number; mtimeMs: number; sha256: string }>;

  constructor(cacheDir: string) {
    this.file = join(cacheDir, "file-hashes.json");
    this.entries = existsSync(this.file) ? JSON.parse(readFileSync(this.file, "utf8")) : {};
  }

  async sha256(path: string): Promise<string> {
    const abs = resolve(path);
    if (!existsSync(abs)) throw new Error(`${abs}: file not found`);
    const st = statSync(abs);
    const known = this.entries[abs];
    if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) return known.sha256;
    const digest = await sha256File(abs);
    this.entries[abs] = { size: st.size, mtimeMs: st.mtimeMs, sha256: digest };
    atomicWriteFile(this.file, JSON.stringify(this.entries, null, 1));
    return digest;
  }
}

function lastByte(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const size = statSync(file).size;
  if (size === 0) return undefined;
  const fd = openSync(file, "r");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0];
  } finally {
    closeSync(fd);
  }
}

export interface VariantIdentity {
  name: string;
  hash: string;
  model: { path: string; sha256: string };
  adapters: { path: string; sha256: string; scale: number }[];
}

/** The variant hash: everything that determines a greedy response except the prompt. */
export async function identifyVariant(v: Variant, decode: DecodeOptions, promptFormat: Record<string, unknown>, hashes: FileHashes): Promise<VariantIdentity> {
  const model = { path: resolve(v.model), sha256: await hashes.sha256(v.model) };
  const adapters = [];
  for (const a of v.adapters) adapters.push({ path: resolve(a.path), sha256: await hashes.sha256(a.path), scale: a.scale });
  const hash = sha256(
    canonicalJson({
      model: model.sha256,
      adapters: adapters.map((a) => ({ sha256: a.sha256, scale: a.scale })),
      decode: { greedy: true, maxTokens: decode.maxTokens, stop: decode.stop },
      prompt: promptFormat,
    }),
  );
  return { name: v.name, hash, model, adapters };
}

const CachedResponse = z.object({
  id: z.string(),
  promptSha256: z.string(),
  text: z.string(),
  tokens: z.number().int().min(0),
  stop: z.enum(["eos", "control", "length", "stop"]),
});
type CachedResponse = z.infer<typeof CachedResponse>;

export class ResponseCache {
  private readonly file: string;
  private readonly byKey = new Map<string, CachedResponse>();

  constructor(cacheDir: string, variantHash: string) {
    mkdirSync(cacheDir, { recursive: true });
    this.file = join(cacheDir, `${variantHash}.jsonl`);
    if (!existsSync(this.file)) return;
    for (const line of readFileSync(this.file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      // A torn last line (killed mid-append) is skipped: its item is simply generated again.
      let parsed;
      try {
        parsed = CachedResponse.safeParse(JSON.parse(line));
      } catch {
        continue;
      }
      if (parsed.success) this.byKey.set(ResponseCache.key(parsed.data.id, parsed.data.promptSha256), parsed.data);
    }
  }

  private static key(id: string, promptSha256: string): string {
    return `${id}\u0000${promptSha256}`;
  }

  get(id: string, promptSha256: string): Generation | undefined {
    const c = this.byKey.get(ResponseCache.key(id, promptSha256));
    return c ? { text: c.text, tokens: c.tokens, stop: c.stop } : undefined;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Append a batch and make it durable before returning. */
  put(items: { id: string; promptSha256: string; generation: Generation }[]): void {
    if (items.length === 0) return;
    const lines = items.map((it) => {
      const rec: CachedResponse = { id: it.id, promptSha256: it.promptSha256, ...it.generation };
      this.byKey.set(ResponseCache.key(it.id, it.promptSha256), rec);
      return JSON.stringify(rec) + "\n";
    });
    // A line that a kill cut short would otherwise swallow the next one: start on a fresh line.
    const needsNewline = lastByte(this.file) !== undefined && lastByte(this.file) !== 0x0a;
    const fd = openSync(this.file, "a");
    try {
      writeSync(fd, (needsNewline ? "\n" : "") + lines.join(""));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
