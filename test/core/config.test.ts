import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../core/config.ts";
import { planRun } from "../../core/pipeline.ts";
import { FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";

const numbers = `${FIXTURE_PLUGINS}/numbers.ts`;
const sumGate = `${FIXTURE_PLUGINS}/sum-gate.ts`;

function issuesOf(f: () => unknown): ConfigError["issues"] {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

async function planIssues(path: string): Promise<ConfigError["issues"]> {
  try {
    await planRun(loadConfig(path));
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  test("a typo'd run-level key is reported with file, line and the nearest valid key", () => {
    const dir = tempDir();
    const p = writeConfig(dir, "a.yaml", `name: x\nstages:\n  - plugin: ${numbers}\n    shardz: 2\n`);
    const [issue, ...rest] = issuesOf(() => loadConfig(p));
    expect(rest).toHaveLength(0);
    expect(issue!.file).toBe(p);
    expect(issue!.line).toBe(4);
    expect(issue!.message).toContain("unknown key 'shardz'");
    expect(issue!.message).toContain("did you mean 'shards'");
  });

  test("a typo inside a plugin's own config is caught before anything runs, with its line", async () => {
    const dir = tempDir();
    const p = writeConfig(dir, "a.yaml", `name: x\nstages:\n  - plugin: ${numbers}\n    config:\n      batch: 3\n      cuont: 20\n`);
    const issues = await planIssues(p);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.line).toBe(6);
    expect(issues[0]!.path).toEqual(["stages", 0, "config", "cuont"]);
    expect(issues[0]!.message).toContain("did you mean 'count'");
  });

  test("wrong value types name the key path", async () => {
    const dir = tempDir();
    const p = writeConfig(dir, "a.yaml", `name: x\nstages:\n  - plugin: ${numbers}\n    config:\n      count: lots\n`);
    const issues = await planIssues(p);
    expect(issues[0]!.line).toBe(5);
    expect(issues[0]!.path).toEqual(["stages", 0, "config", "count"]);
  });

  test("YAML syntax errors carry the line", () => {
    const dir = tempDir();
    const p = writeConfig(dir, "a.yaml", `name: x\nstages: [\n  - plugin: a\n`);
    const [issue] = issuesOf(() => loadConfig(p));
    expect(issue!.message).toContain("YAML syntax error");
    expect(issue!.line).toBeGreaterThanOrEqual(2);
  });

  test("${ENV} interpolation: set, default, typed, and missing", () => {
    const dir = tempDir();
    const p = writeConfig(dir, "a.yaml", `name: \${ST_NAME}\nseed: \${ST_SEED:-7}\nstages:\n  - plugin: ${numbers}\n    config:\n      label: pre-\${ST_NAME}-post\n`);
    process.env.ST_NAME = "envname";
    const c = loadConfig(p).config;
    expect(c.name).toBe("envname");
    expect(c.seed).toBe(7);
    expect(c.stages[0]!.config.label).toBe("pre-envname-post");
    delete process.env.ST_NAME;
    const [issue] = issuesOf(() => loadConfig(p));
    expect(issue!.message).toContain("ST_NAME is not set");
    expect(issue!.line).toBe(1);
  });

  test("extends merges another file; stages merge by id", () => {
    const dir = tempDir();
    writeConfig(dir, "base.yaml", `name: base\nseed: 1\nstages:\n  - plugin: ${numbers}\n    config: { count: 5, batch: 2 }\n  - plugin: ${sumGate}\n`);
    const p = writeConfig(dir, "child.yaml", `extends: base.yaml\nname: child\nstages:\n  - plugin: ${numbers}\n    config: { count: 9 }\n`);
    const c = loadConfig(p).config;
    expect(c.name).toBe("child");
    expect(c.seed).toBe(1);
    expect(c.stages).toHaveLength(2);
    expect(c.stages[0]!.config).toEqual({ count: 9, batch: 2 });
  });

  test("an error in an extended file names that file", () => {
    const dir = tempDir();
    const base = writeConfig(dir, "base.yaml", `name: base\nstages:\n  - plugin: ${numbers}\n    gate: sometimes\n`);
    const p = writeConfig(dir, "child.yaml", `extends: base.yaml\nname: child\n`);
    const [issue] = issuesOf(() => loadConfig(p));
    expect(issue!.file).toBe(base);
    expect(issue!.line).toBe(4);
  });

  test("an unknown plugin is reported at its line", async () => {
    const dir = tempDir();
    const p = writeConfig(dir, "a.yaml", `name: x\nstages:\n  - plugin: no-such-plugin\n`);
    const issues = await planIssues(p);
    expect(issues[0]!.line).toBe(3);
    expect(issues[0]!.message).toContain("unknown plugin 'no-such-plugin'");
  });
});
