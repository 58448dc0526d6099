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

/**
 * An input slot a stage can run without (optional()). It is wired when the config names its
 * producer (`inputs: { slot: stage }`), or, when `wantedBy(config)` says this config uses it,
 * to the nearest upstream producer as a required input is (then a missing producer is a plan
 * error). Otherwise it is absent: `ctx.inputs[slot]` is undefined and nothing of it is hashed.
 */
export interface OptionalInput<K extends ArtifactKind<any> = ArtifactKind<any>> {
  optional: true;
  kind: K;
  wantedBy?: (config: never) => boolean;
}

/** Declare an optional input slot; `wantedBy` gets the stage's validated config. */
export function optional<K extends ArtifactKind<any>, C = never>(kind: K, opts: { wantedBy?: (config: C) => boolean } = {}): OptionalInput<K> {
  return { optional: true, kind, wantedBy: opts.wantedBy as OptionalInput["wantedBy"] };
}

/** A consumed slot's kind, whether it is optional, and (optional ones) which configs use it. */
export function inputSlot(slot: ArtifactKind<any> | OptionalInput): { kind: ArtifactKind<unknown>; optional: boolean; wantedBy?: (config: unknown) => boolean } {
  if ("optional" in slot && slot.optional === true) return { kind: slot.kind, optional: true, wantedBy: slot.wantedBy as ((c: unknown) => boolean) | undefined };
  return { kind: slot as ArtifactKind<unknown>, optional: false };
}

type KindMap = Record<string, ArtifactKind<any>>;
type InputMap = Record<string, ArtifactKind<any> | OptionalInput>;
type RecordOf<K> = K extends ArtifactKind<infer T> ? T : never;
type ReaderOf<K> = K extends ArtifactKind<any> ? (K["format"] extends "file" ? FileArtifact<RecordOf<K>> : ArtifactReader<RecordOf<K>>) : never;

export type Inputs<K extends InputMap> = {
  [S in keyof K as K[S] extends OptionalInput ? never : S]: ReaderOf<K[S]>;
} & {
  [S in keyof K as K[S] extends OptionalInput ? S : never]?: K[S] extends OptionalInput<infer T> ? ReaderOf<T> : never;
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

export interface StageContext<C, I extends InputMap, O extends KindMap> {
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

export interface PluginDefinition<C extends z.ZodType, I extends InputMap, O extends KindMap> {
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
  /**
   * The `produces` slots this config writes (default: all). A slot left out gets no writer
   * (`ctx.outputs[slot]` is undefined), no file and no artifact, and no later stage is wired
   * to it: a stage whose config picks the kind it makes (the import stage) is planned as such.
   */
  producesFor?(config: z.output<C>): (keyof O & string)[];
  /**
   * What a stage's output depends on besides its config (a data file's sha256): computed when
   * the run is planned and hashed into the stage's config hash, so the stage runs again when it
   * changes. `configDir`: the run config file's folder. A throw is a config error of the stage.
   */
  fingerprint?(config: z.output<C>, at: { configDir: string }): Promise<unknown> | unknown;
  run(ctx: StageContext<z.output<C>, I, O>): Promise<void>;
}

export type AnyPlugin = PluginDefinition<z.ZodType, InputMap, KindMap>;

export function definePlugin<C extends z.ZodType, I extends InputMap, O extends KindMap>(
  def: PluginDefinition<C, I, O>,
): PluginDefinition<C, I, O> {
  if (!/^[a-z][a-z0-9-]*$/.test(def.name)) throw new Error(`plugin name '${def.name}' must be lower-case kebab-case`);
  if (!/^\d+\.\d+\.\d+/.test(def.version)) throw new Error(`plugin '${def.name}': version '${def.version}' is not semver`);
  const slots = [...Object.entries(def.consumes).map(([s, k]) => [s, inputSlot(k).kind] as const), ...Object.entries(def.produces)];
  for (const [slot, kind] of slots) {
    if (!kind || typeof kind.name !== "string" || !kind.schema) throw new Error(`plugin '${def.name}': slot '${slot}' is not an ArtifactKind (use defineKind, or optional(kind) for an input)`);
  }
  return def;
}

export function isPlugin(x: unknown): x is AnyPlugin {
  const p = x as AnyPlugin;
  return !!p && typeof p.name === "string" && typeof p.run === "function" && !!p.config && !!p.consumes && !!p.produces;
}
