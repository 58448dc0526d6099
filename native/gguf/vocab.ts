// Finding llama.cpp's vocabulary-only GGUFs (models/ggml-vocab-<name>.gguf): real tokenizers
// for synthesized models, with nothing downloaded.

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/** Repository root (this file lives in native/gguf/). */
export const REPO_ROOT = resolve(import.meta.dir, "..", "..");

/** llama.cpp trees to look in, in order: $LLAMA_CPP_DIR, then the one postinstall unpacks. */
export function llamaCppDirs(): string[] {
  const dirs: string[] = [];
  const fromEnv = process.env.LLAMA_CPP_DIR;
  if (fromEnv) dirs.push(resolve(fromEnv));
  dirs.push(join(REPO_ROOT, "native", "deps", "llama.cpp"));
  return dirs;
}

/**
 * Path of `models/ggml-vocab-<name>.gguf` (name e.g. "qwen2", "llama-spm", "llama-bpe") in
 * the first llama.cpp tree that has it; throws listing every place it looked.
 */
export function vocabPath(name: string): string {
  const file = `ggml-vocab-${name}.gguf`;
  const tried: string[] = [];
  for (const dir of llamaCppDirs()) {
    const candidate = join(dir, "models", file);
    if (existsSync(candidate)) return candidate;
    tried.push(candidate);
  }
  throw new Error(
    `vocabulary "${name}" not found; looked for ${tried.join(", ")}. ` +
      "Run `bun install` (unpacks llama.cpp into native/deps/) or set LLAMA_CPP_DIR to a llama.cpp tree.",
  );
}
