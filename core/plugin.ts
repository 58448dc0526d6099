// The plugin contract. A stage plugin is a module whose default export is
// definePlugin({...}). Built-in and user plugins get exactly the same context.
import { z } from "zod";
import type { ArtifactReader, ArtifactWriter, FileArtifact } from "./artifacts.ts";
import type { Progress } from "./progress.ts";
import type { ProvenanceStamp } from "./provenance.ts";

/** A named artifact kind: what a stage produces and another consumes. */
export interface ArtifactKind<T = unknown> {
  name: string;
  /** jsonl: one JSON record a line; msgpack: concatenated MessagePack records;
   *  file: one opaque file (an adapter, a report) with a JSON metadata record. */
  format: "jsonl" | "msgpack" | "file";
  schema: z.ZodType<T>;
}

export function defineKind<T>(name: string, schema: z.ZodType<T>, format: ArtifactKind["format"] = "jsonl"): ArtifactKind<T> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`artifact kind name '${name}' must be lower-case kebab-case`);
  return { name, format, schema };
}

type KindMap = Record<string, ArtifactKind<any>>;
type RecordOf<K> = K extends ArtifactKind<infer T> ? T : never;

export type Inputs<K extends KindMap> = {
  [S in keyof K]: K[S]["format"] extends "file" ? FileArtifact<RecordOf<K[S]>> : ArtifactReader<RecordOf<K[S]>>;
};
export type Outputs<K extends KindMap> = {
  [S in keyof K]: K[S]["format"] extends "file" ? FileArtifact<RecordOf<K[S]>> : ArtifactWriter<RecordOf<K[S]>>;
};

export interface GateResult {
  name: string;
  passed: boolean;
  /** One line a human reads in the run summary. */
  summary: string;
  details?: Record<string, unknown>;
}

export interface Logger {
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
}

/** Long-lived objects shared between stages of one run (e.g. a loaded model).
 *  Disposed at the end of the run in reverse order of creation. */
export interface Services {
  get<T>(key: string): T | undefined;
  getOrCreate<T>(key: string, create: () => Promise<T> | T, dispose?: (v: T) => Promise<void> | void): Promise<T>;
  release(key: string): Promise<void>;
}

export interface StageContext<C, I extends KindMap, O extends KindMap> {
  config: C;
  stage: { id: string; index: number; dir: string };
  run: { id: string; name: string; dir: string; configPath: string };
  /** Seed for this stage (derived from the run seed and the stage id; shard-aware). */
  seed: number;
  shard: { index: number; count: number } | null;
  inputs: Inputs<I>;
  outputs: Outputs<O>;
  progress: Progress;
  log: Logger;
  /** Aborted on Ctrl-C / SIGTERM: stop between batches. Records up to the last `commit(cursor)`
   *  are kept; those written after it are discarded, and the re-run resumes from that cursor. */
  signal: AbortSignal;
  services: Services;
  provenance: ProvenanceStamp;
  /** Report a gate decision. A failed gate stops the pipeline unless the stage's `gate: report`. */
  gate(result: GateResult): void;
  /** Write an extra file into the stage directory atomically; it is hashed into the manifest. */
  writeFile(name: string, data: string | Uint8Array): Promise<string>;
  /** Read the manifest of another run directory (e.g. a passed pilot), or null. */
  readManifest(runDir: string): Promise<RunManifestLike | null>;
}

/**
 * What a sharded stage's `merge` sees once its shards' outputs are merged: the merged
 * outputs read back, and each shard's folder (its extra files) and gates. A shard sees only
 * its share; whatever must describe the whole (a summary, a gate over all records) is made here.
 */
export interface MergeContext<C, O extends KindMap> {
  config: C;
  stage: { id: string; index: number; dir: string };
  run: { id: string; name: string; dir: string; configPath: string };
  /** Readers of the merged outputs (sharded stages produce record kinds only). */
  outputs: { [S in keyof O]: ArtifactReader<RecordOf<O[S]>> };
  shards: { index: number; count: number; dir: string; gates: GateResult[] }[];
  log: Logger;
  /** The stage's own provenance stamp (each shard has its own in its shard.json). */
  provenance: ProvenanceStamp;
  /** A gate over the whole; recorded with the shards' gates (those named `<gate>#<shard>`). */
  gate(result: GateResult): void;
  /** Write an extra file into the stage directory atomically; it is hashed into the manifest. */
  writeFile(name: string, data: string | Uint8Array): Promise<string>;
}

export interface RunManifestLike {
  runId: string;
  stages: Record<string, { status: string; plugin: string; gates: GateResult[]; configHash: string; config?: unknown; artifacts: { slot: string; kind: string; file: string }[] }>;
}

export interface PluginDefinition<C extends z.ZodType, I extends KindMap, O extends KindMap> {
  name: string;
  version: string;
  description: string;
  config: C;
  consumes: I;
  produces: O;
  /** Shardable stages run N times with ctx.shard set; outputs are merged in shard order. */
  shardable?: boolean;
  /** Sharded runs only: called once after the merge, to summarise and gate the merged whole. */
  merge?(ctx: MergeContext<z.output<C>, O>): Promise<void>;
  run(ctx: StageContext<z.output<C>, I, O>): Promise<void>;
}

export type AnyPlugin = PluginDefinition<z.ZodType, KindMap, KindMap>;

export function definePlugin<C extends z.ZodType, I extends KindMap, O extends KindMap>(
  def: PluginDefinition<C, I, O>,
): PluginDefinition<C, I, O> {
  if (!/^[a-z][a-z0-9-]*$/.test(def.name)) throw new Error(`plugin name '${def.name}' must be lower-case kebab-case`);
  if (!/^\d+\.\d+\.\d+/.test(def.version)) throw new Error(`plugin '${def.name}': version '${def.version}' is not semver`);
  for (const [slot, kind] of Object.entries({ ...def.consumes, ...def.produces })) {
    if (!kind || typeof kind.name !== "string" || !kind.schema) throw new Error(`plugin '${def.name}': slot '${slot}' is not an ArtifactKind (use defineKind)`);
  }
  return def;
}

export function isPlugin(x: unknown): x is AnyPlugin {
  const p = x as AnyPlugin;
  return !!p && typeof p.name === "string" && typeof p.run === "function" && !!p.config && !!p.consumes && !!p.produces;
}
