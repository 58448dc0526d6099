// Run configuration: YAML (Bun.YAML) -> `extends:` merge -> ${ENV} interpolation
// -> zod. Every error names the file, the key path and the line, and suggests
// the nearest valid key for a typo.
import { readFileSync, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { closest } from "fastest-levenshtein";
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node as YamlNode } from "yaml";
import { z } from "zod";
import { applyOverrides, overrideAt, OverrideError, type AppliedOverride } from "./overrides.ts";

export const StageSpec = z.strictObject({
  /** Unique stage id; defaults to the plugin name. Names the stage's folder in the run. */
  id: z.string().regex(/^[a-z][a-z0-9-]*$/, "lower-case kebab-case").optional(),
  /** A built-in plugin name, a path to a module (./x.ts), or a package name. */
  plugin: z.string().min(1),
  config: z.record(z.string(), z.unknown()).default({}),
  /** Input slot -> stage id, where the nearest upstream producer is not the one wanted. */
  inputs: z.record(z.string(), z.string()).default({}),
  /** stop: a failed gate ends the run (non-zero exit). report: record it and go on. */
  gate: z.enum(["stop", "report"]).default("stop"),
  shards: z.number().int().min(1).default(1),
  shardMode: z.enum(["in-process", "process"]).default("in-process"),
});
export type StageSpec = z.output<typeof StageSpec>;

export const RunConfig = z.strictObject({
  extends: z.string().optional(),
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only"),
  description: z.string().optional(),
  seed: z.number().int().default(0),
  /** Where run directories go, relative to the current directory. */
  runsDir: z.string().default("runs"),
  /** A finished stage's file that no longer matches the manifest: stop naming it, or use it as it is and re-run its readers. */
  onChanged: z.enum(["stop", "rerun"]).default("stop"),
  stages: z.array(StageSpec).min(1),
});
export type RunConfig = z.output<typeof RunConfig>;

export interface ConfigIssue {
  file: string;
  line: number | null;
  path: (string | number)[];
  message: string;
  /** Set when a `--set` override wrote the key (then `file` names the override): the path it set. */
  overridePath?: (string | number)[];
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
  }
}

export function formatPath(path: (string | number)[]): string {
  return path.reduce<string>((s, p) => (typeof p === "number" ? `${s}[${p}]` : s ? `${s}.${p}` : p), "");
}

function formatIssue(i: ConfigIssue): string {
  // An override names its own key: repeat the path only where the issue lies deeper.
  const own = i.overridePath && formatPath(i.overridePath) === formatPath(i.path);
  return `${i.file}${i.line ? `:${i.line}` : ""}: ${i.path.length && !own ? `${formatPath(i.path)}: ` : ""}${i.message}`;
}

/** One parsed YAML file, kept so that key paths can be mapped back to lines. */
interface Source {
  file: string;
  doc: ReturnType<typeof parseDocument>;
  lines: LineCounter;
}

export interface LoadedConfig {
  path: string;
  config: RunConfig;
  /** The directory each stage was written in (plugin paths are relative to it). */
  stageDirs: string[];
  /** The `--set key.path=value` overrides applied, as given (recorded in the run manifest). */
  overrides: string[];
  /** Where a key path of the merged config was written (a file and line, or an override), for error messages. */
  locate(path: (string | number)[]): { file: string; line: number | null; overridePath?: (string | number)[] };
}

function stageKey(s: unknown): string | undefined {
  const o = s as { id?: unknown; plugin?: unknown };
  return typeof o?.id === "string" ? o.id : typeof o?.plugin === "string" ? o.plugin : undefined;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
  return out;
}

interface RawLoad {
  value: Record<string, unknown>;
  sources: Source[];
  stageDirs: string[];
}

function parseFile(file: string, chain: string[]): RawLoad {
  if (!existsSync(file)) throw new ConfigError([{ file: chain.at(-1) ?? file, line: null, path: chain.length ? ["extends"] : [], message: `config file not found: ${file}` }]);
  if (chain.includes(file)) throw new ConfigError([{ file, line: null, path: ["extends"], message: `extends cycle: ${[...chain, file].join(" -> ")}` }]);
  const text = readFileSync(file, "utf8");
  let value: unknown;
  try {
    value = Bun.YAML.parse(text);
  } catch (e) {
    // Bun's parser reports no reliable position; the yaml package does.
    const precise = parseDocument(text, { prettyErrors: true }).errors[0];
    const line = precise?.linePos?.[0]?.line ?? null;
    throw new ConfigError([{ file, line, path: [], message: `YAML syntax error: ${precise?.message.split("\n")[0] ?? (e as Error).message}` }]);
  }
  if (!isPlainObject(value)) throw new ConfigError([{ file, line: 1, path: [], message: "a config must be a YAML mapping" }]);
  const lines = new LineCounter();
  const source: Source = { file, doc: parseDocument(text, { lineCounter: lines }), lines };
  const dir = dirname(file);
  const stages = Array.isArray(value.stages) ? value.stages : [];
  if (typeof value.extends !== "string") return { value, sources: [source], stageDirs: stages.map(() => dir) };

  const parent = parseFile(resolve(dir, value.extends), [...chain, file]);
  // Stages merge by id (or plugin name): a child overrides a parent's stage
  // of the same key and appends new ones.
  const merged = [...((parent.value.stages as unknown[]) ?? [])];
  const dirs = [...parent.stageDirs];
  for (const s of stages) {
    const at = merged.findIndex((p) => stageKey(p) === stageKey(s));
    if (at >= 0) {
      merged[at] = deepMerge(merged[at], s);
      dirs[at] = dir;
    } else {
      merged.push(s);
      dirs.push(dir);
    }
  }
  const { extends: _drop, ...own } = value;
  const combined = deepMerge(parent.value, own) as Record<string, unknown>;
  combined.stages = merged;
  return { value: combined, sources: [source, ...parent.sources], stageDirs: dirs };
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function interpolate(value: unknown, path: (string | number)[], issues: { path: (string | number)[]; message: string }[]): unknown {
  if (typeof value === "string") {
    // A value that is exactly one reference takes the referenced text's YAML type (a number stays a number).
    const whole = value.match(/^\$\{[^}]*\}$/) !== null;
    const text = value.replace(ENV_REF, (_m, name: string, fallback?: string) => {
      const v = process.env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      issues.push({ path, message: `environment variable ${name} is not set (write \${${name}:-default} for a default)` });
      return "";
    });
    if (!whole) return text;
    try {
      const typed = Bun.YAML.parse(text);
      return typeof typed === "number" || typeof typed === "boolean" ? typed : text;
    } catch {
      return text;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], issues));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], issues)]));
  return value;
}

/** The line of the deepest key of `path` present in this file, and whether all of it was. */
function nodeLine(src: Source, path: (string | number)[]): { line: number | null; complete: boolean } {
  let node: unknown = src.doc.contents;
  let line: number | null = null;
  for (const key of path) {
    let next: YamlNode | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (pair) {
        const k = pair.key as YamlNode;
        if (k.range) line = src.lines.linePos(k.range[0]).line;
        next = (pair.value ?? undefined) as YamlNode | undefined;
        if (!next) return { line, complete: key === path.at(-1) };
      }
    } else if (isSeq(node) && typeof key === "number") {
      next = node.items[key] as YamlNode | undefined;
      if (next?.range) line = src.lines.linePos(next.range[0]).line;
    }
    if (!next) return { line, complete: false };
    node = next;
  }
  return { line, complete: true };
}

function makeLocator(raw: RawLoad): LoadedConfig["locate"] {
  const stages = raw.value.stages as unknown[] | undefined;
  return (path) => {
    let fallback: { file: string; line: number | null } | null = null;
    for (const src of raw.sources) {
      let p = path;
      // A merged stage index differs per file: translate it through the stage key.
      if (path[0] === "stages" && typeof path[1] === "number" && stages) {
        const own = (src.doc.toJS() as { stages?: unknown[] } | null)?.stages ?? [];
        const idx = own.findIndex((s) => stageKey(s) === stageKey(stages[path[1] as number]));
        if (idx < 0) continue;
        p = ["stages", idx, ...path.slice(2)];
      }
      const { line, complete } = nodeLine(src, p);
      if (complete) return { file: src.file, line };
      if (line !== null && !fallback) fallback = { file: src.file, line };
    }
    return fallback ?? { file: raw.sources[0]!.file, line: null };
  };
}

/** The object schema at a path, through defaults, optionals, arrays and records. */
function schemaAt(schema: z.ZodType, path: (string | number)[]): z.ZodType | null {
  let s: z.ZodType | undefined = schema;
  const unwrap = (t: z.ZodType): z.ZodType => {
    const def = (t as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (["default", "optional", "nullable", "prefault", "readonly", "catch"].includes(def.type as string)) return unwrap(def.innerType as z.ZodType);
    if (def.type === "pipe") return unwrap(def.in as z.ZodType);
    return t;
  };
  for (const key of path) {
    if (!s) return null;
    const t = unwrap(s);
    const def = (t as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === "object") s = (def.shape as Record<string, z.ZodType>)[key as string];
    else if (def.type === "array") s = def.element as z.ZodType;
    else if (def.type === "record") s = def.valueType as z.ZodType;
    else return null;
  }
  return s ? unwrap(s) : null;
}

/** Turn a zod error into config issues with lines and typo suggestions. */
export function zodIssues(
  error: z.ZodError,
  schema: z.ZodType,
  prefix: (string | number)[],
  locate: LoadedConfig["locate"],
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const rel = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const at = schemaAt(schema, rel);
      const def = at ? (at as unknown as { _zod: { def: { shape?: Record<string, unknown> } } })._zod.def : undefined;
      const valid = def?.shape ? Object.keys(def.shape) : [];
      for (const key of issue.keys) {
        const path = [...prefix, ...rel, key];
        const hint = valid.length ? ` (did you mean '${closest(key, valid)}'? valid keys: ${valid.join(", ")})` : "";
        out.push({ ...locate(path), path, message: `unknown key '${key}'${hint}` });
      }
      continue;
    }
    const path = [...prefix, ...rel];
    out.push({ ...locate(path), path, message: issue.message });
  }
  return out;
}

/** Where a key was written: the override that set it, else its file and line. */
function withOverrides(locateInFiles: LoadedConfig["locate"], applied: AppliedOverride[]): LoadedConfig["locate"] {
  return (path) => {
    const o = overrideAt(applied, path);
    return o ? { file: `--set ${o.text}`, line: null, overridePath: o.path } : locateInFiles(path);
  };
}

/**
 * Load, merge, apply `--set` overrides (core/overrides.ts), interpolate and validate the
 * run-level config (not yet the plugins' configs).
 */
export function loadConfig(file: string, overrides: readonly string[] = []): LoadedConfig {
  const path = resolve(file);
  const raw = parseFile(path, []);
  let applied: AppliedOverride[];
  try {
    applied = applyOverrides(raw.value, overrides);
  } catch (e) {
    if (e instanceof OverrideError) throw new ConfigError([{ file: `--set ${e.text}`, line: null, path: [], message: e.message }]);
    throw e;
  }
  const locate = withOverrides(makeLocator(raw), applied);
  const envIssues: { path: (string | number)[]; message: string }[] = [];
  const value = interpolate(raw.value, [], envIssues);
  if (envIssues.length) throw new ConfigError(envIssues.map((i) => ({ ...locate(i.path), ...i })));
  const parsed = RunConfig.safeParse(value);
  if (!parsed.success) throw new ConfigError(zodIssues(parsed.error, RunConfig, [], locate));
  return { path, config: parsed.data, stageDirs: raw.stageDirs, overrides: [...overrides], locate };
}
