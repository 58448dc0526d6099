// `--set key.path=value` on `run` and `validate`: a change to the merged config made on the
// command line, before `${ENV}` interpolation and validation, so it is checked exactly as the
// file is and, being part of the config, hashed as it is (a changed override re-runs the stage
// it touches, and only that one). A stage is addressed by its id (or plugin name, as `extends:`
// merges them) or its index: `stages.sft.config.lr=1e-4`. The value is YAML: `1e-4` is a
// number, `abc` a string, `[q, k]` a list, `{rank: 8}` a mapping, `''` the empty string, nothing null.

/** An override applied: its text as given and the concrete key path it set (stage ids resolved to indices). */
export interface AppliedOverride {
  text: string;
  path: (string | number)[];
}

export class OverrideError extends Error {
  constructor(readonly text: string, message: string) {
    super(message);
  }
}

const isMap = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

function stageIndex(stages: unknown[], key: string, text: string): number {
  const keyOf = (s: unknown) => (isMap(s) ? (typeof s.id === "string" ? s.id : typeof s.plugin === "string" ? s.plugin : undefined) : undefined);
  const byKey = stages.findIndex((s) => keyOf(s) === key);
  if (byKey >= 0) return byKey;
  if (/^\d+$/.test(key) && Number(key) < stages.length) return Number(key);
  throw new OverrideError(text, `no stage '${key}' (stages: ${stages.map((s, i) => keyOf(s) ?? String(i)).join(", ")}; or an index 0-${stages.length - 1})`);
}

/** Set one override in `config` (mutated). Throws OverrideError naming what is wrong. */
function applyOne(config: Record<string, unknown>, text: string): AppliedOverride {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new OverrideError(text, "expected key.path=value");
  const keys = text.slice(0, eq).split(".");
  if (keys.some((k) => k === "")) throw new OverrideError(text, "empty key in the path");
  if (keys[0] === "extends") throw new OverrideError(text, "extends: is read before overrides apply; change it in the file");
  let value: unknown;
  try {
    value = Bun.YAML.parse(text.slice(eq + 1));
  } catch (e) {
    throw new OverrideError(text, `the value is not YAML (${(e as Error).message}); quote a string: key='text'`);
  }
  const path: (string | number)[] = [];
  let node: unknown = config;
  for (const [i, key] of keys.entries()) {
    const last = i === keys.length - 1;
    const where = keys.slice(0, i).join(".") || "the config";
    if (Array.isArray(node)) {
      const idx = path.length === 1 && path[0] === "stages" ? stageIndex(node, key, text) : /^\d+$/.test(key) && Number(key) < node.length ? Number(key) : -1;
      if (idx < 0) throw new OverrideError(text, `'${where}' is a list of ${node.length}: index it 0-${node.length - 1}`);
      path.push(idx);
      if (last) node[idx] = value;
      else node = node[idx];
    } else if (isMap(node)) {
      path.push(key);
      // A missing mapping on the way is made (a stage without `config:` takes `config.x=1`).
      if (last) node[key] = value;
      else node = node[key] ??= {};
    } else {
      throw new OverrideError(text, `'${where}' is ${JSON.stringify(node)}, not a mapping or a list`);
    }
  }
  return { text, path };
}

/** Apply the overrides in order (a later one wins over an earlier one on the same key). */
export function applyOverrides(config: Record<string, unknown>, texts: readonly string[]): AppliedOverride[] {
  return texts.map((t) => applyOne(config, t));
}

/** The last override whose path is `path` or one of its parents, if any. */
export function overrideAt(applied: readonly AppliedOverride[], path: readonly (string | number)[]): AppliedOverride | undefined {
  return applied.findLast((o) => o.path.length <= path.length && o.path.every((k, i) => k === path[i]));
}
