// Generation and scoring. Variants are evaluated one after another: a variant is
// loaded only when some of its responses are not cached, and it is disposed
// before the next is loaded, so two models are never in memory together.
import { z } from "zod";
import { sha256 } from "../../core/provenance.ts";
import { CheckSpecs, runChecks, TestType, type CheckSpec } from "./checks/index.ts";
import { checksFor, validateChecks } from "./checks/tasks.ts";
import { words } from "./checks/text.ts";
import { ResponseCache, type VariantIdentity } from "./cache.ts";
import type { DecodeOptions, Generation, Generator, Variant } from "./generator.ts";

/** The fields of a `test-instruction` record the evaluator uses (specs/evaluation.md §1);
 *  other fields are kept and passed through. */
export const TestInstruction = z.looseObject({
  id: z.string().min(1),
  type: TestType,
  instruction: z.string().min(1),
  checks: CheckSpecs.default([]),
});
export type TestInstruction = z.output<typeof TestInstruction>;

/** How prompts are made and responses cleaned: the shared prompt builders (SPEC §3). */
export interface PromptFormat {
  prompt(instruction: string): string;
  /** Cut at the delimiters; `stopReason` says which one ended it (or eos / runaway). */
  clean(raw: string, hitMaxTokens: boolean): { text: string; stopReason: string };
  /** What identifies the format in the variant hash (version, few-shot k, seed). */
  identity: Record<string, unknown>;
}

export interface CheckOutcome {
  type: CheckSpec["type"];
  /** The IFEval instruction id of an `ifeval` check (for IFEval's metrics). */
  instruction?: string;
  strict: boolean;
  loose: boolean;
  detail: string;
}

export interface ScoredItem {
  id: string;
  type: TestType;
  instruction: string;
  promptSha256: string;
  raw: string;
  response: string;
  /** Why the cleaned response ends where it does (the cleaner's stop reason). */
  stopReason: string;
  tokens: number;
  stop: Generation["stop"];
  words: number;
  cached: boolean;
  checks: CheckOutcome[];
  success: { strict: boolean; loose: boolean };
}

export function validateInstructions(items: readonly TestInstruction[]): void {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const it of items) {
    if (seen.has(it.id)) problems.push(`duplicate id '${it.id}'`);
    seen.add(it.id);
    const p = validateChecks(it.type, it.checks);
    if (p) problems.push(`${it.id}: ${p}`);
  }
  if (problems.length) throw new Error(`test instructions are not usable:\n  ${problems.slice(0, 20).join("\n  ")}${problems.length > 20 ? `\n  ... ${problems.length - 20} more` : ""}`);
}

export function scoreItem(it: TestInstruction, promptSha256: string, gen: Generation & { cached: boolean }, format: PromptFormat): ScoredItem {
  const { text, stopReason } = format.clean(gen.text, gen.stop === "length");
  const checks = checksFor(it.type, it.checks);
  const strict = runChecks(text, checks, "strict");
  const loose = runChecks(text, checks, "loose");
  return {
    id: it.id,
    type: it.type,
    instruction: it.instruction,
    promptSha256,
    raw: gen.text,
    response: text,
    stopReason,
    tokens: gen.tokens,
    stop: gen.stop,
    words: words(text).length,
    cached: gen.cached,
    checks: strict.results.map((r, i) => {
      const spec = checks[i]!;
      return { type: r.type, ...(spec.type === "ifeval" ? { instruction: spec.instruction } : {}), strict: r.passed, loose: loose.results[i]!.passed, detail: r.detail };
    }),
    success: { strict: strict.passed, loose: loose.passed },
  };
}

export interface EvaluateOptions {
  variants: readonly Variant[];
  identities: readonly VariantIdentity[];
  instructions: readonly TestInstruction[];
  generator: Generator;
  format: PromptFormat;
  /** Per variant (parallel to `variants`), where one is prompted otherwise (the in-context baseline); default `format` for all. */
  formats?: readonly PromptFormat[];
  decode: DecodeOptions;
  batchSize: number;
  cacheDir: string;
  signal: AbortSignal;
  onBatch?: (variant: string, done: number, total: number) => void;
  log?: (msg: string) => void;
}

export interface VariantEvaluation {
  variant: VariantIdentity;
  items: ScoredItem[];
  generated: number;
  cached: number;
  loadInfo: Record<string, unknown> | null;
}

/** Returns null when interrupted (the cache keeps every finished batch). */
export async function evaluateVariants(o: EvaluateOptions): Promise<VariantEvaluation[] | null> {
  if (o.formats && o.formats.length !== o.variants.length) throw new Error(`${o.formats.length} prompt formats for ${o.variants.length} variants`);
  // Prompts are built once per format: variants that share it share them.
  const built = new Map<PromptFormat, { it: TestInstruction; prompt: string; promptSha256: string }[]>();
  const promptsFor = (format: PromptFormat) => {
    let p = built.get(format);
    if (!p) {
      p = o.instructions.map((it) => {
        const prompt = format.prompt(it.instruction);
        return { it, prompt, promptSha256: sha256(prompt) };
      });
      built.set(format, p);
    }
    return p;
  };
  const out: VariantEvaluation[] = [];
  for (const [vi, variant] of o.variants.entries()) {
    const identity = o.identities[vi]!;
    const format = o.formats?.[vi] ?? o.format;
    const prompts = promptsFor(format);
    const cache = new ResponseCache(o.cacheDir, identity.hash);
    const missing = prompts.filter((p) => !cache.get(p.it.id, p.promptSha256));
    const cachedCount = prompts.length - missing.length;
    let loadInfo: Record<string, unknown> | null = null;
    o.onBatch?.(variant.name, cachedCount, prompts.length);
    if (missing.length > 0) {
      o.log?.(`variant '${variant.name}': ${cachedCount} cached, generating ${missing.length}`);
      const loaded = await o.generator.load(variant);
      loadInfo = loaded.info ?? null;
      try {
        for (let i = 0; i < missing.length; i += o.batchSize) {
          if (o.signal.aborted) return null;
          const batch = missing.slice(i, i + o.batchSize);
          const gens = await loaded.generate(batch.map((b) => b.prompt), o.decode);
          if (gens.length !== batch.length) throw new Error(`generator returned ${gens.length} generations for ${batch.length} prompts (variant '${variant.name}')`);
          cache.put(batch.map((b, j) => ({ id: b.it.id, promptSha256: b.promptSha256, generation: gens[j]! })));
          o.onBatch?.(variant.name, cachedCount + i + batch.length, prompts.length);
        }
      } finally {
        // Always unload before anything else loads, even on error or interrupt.
        await loaded.dispose();
      }
    } else o.log?.(`variant '${variant.name}': all ${prompts.length} responses cached, model not loaded`);
    const missingIds = new Set(missing.map((m) => m.it.id));
    const items = prompts.map((p) => scoreItem(p.it, p.promptSha256, { ...cache.get(p.it.id, p.promptSha256)!, cached: !missingIds.has(p.it.id) }, format));
    out.push({ variant: identity, items, generated: missing.length, cached: cachedCount, loadInfo });
  }
  return out;
}
