// The held-out test set: determinism, shape, checks the evaluator accepts, and
// disjointness from the prompt pools and from training data.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_TYPES } from "../../plugins/evaluator/checks/spec.ts";
import { validateChecks } from "../../plugins/evaluator/checks/tasks.ts";
import { findLeakage } from "../../plugins/prompts/clean.ts";
import { RESPONSE_POOL, SEED_TASKS } from "../../plugins/prompts/pool.ts";
import { responsePrompt } from "../../plugins/prompts/prompts.ts";
import { TestInstruction } from "../../plugins/shared/kinds.ts";
import { checkDisjoint, poolInstructions } from "../../plugins/testset/disjoint.ts";
import { makeTestSet } from "../../plugins/testset/make.ts";
import { cli, tempDir, writeConfig } from "../helpers.ts";

const full = (seed = 1) => makeTestSet({ seed, perType: 40, types: TEST_TYPES });

describe("makeTestSet", () => {
  const set = full();

  test("5 types × 40, ids in order, every record valid, one line, no delimiter", () => {
    expect(set.items).toHaveLength(200);
    for (const t of TEST_TYPES) {
      const ofType = set.items.filter((i) => i.type === t);
      expect(ofType.map((i) => i.id)).toEqual(Array.from({ length: 40 }, (_, k) => `${t}-${String(k + 1).padStart(3, "0")}`));
    }
    for (const it of set.items) {
      expect(TestInstruction.parse(it)).toEqual(it);
      expect(() => responsePrompt(it.instruction, [])).not.toThrow();
      expect(findLeakage(it.instruction)).toEqual([]);
      expect(it.seed).toBe(1);
    }
  });

  test("every item carries the checks its type needs (the evaluator's own validation)", () => {
    for (const it of set.items) expect(validateChecks(it.type, it.checks)).toBeNull();
    const withChecks = (t: string) => set.items.filter((i) => i.type === t && i.checks.length > 0).length;
    expect(withChecks("factual")).toBe(40);
    expect(withChecks("list")).toBe(40);
    expect(withChecks("instruction_following")).toBe(40);
    expect(withChecks("explanation")).toBe(40);
  });

  test("varied: several templates per type, no instruction twice", () => {
    for (const t of TEST_TYPES) {
      const templates = new Set(set.items.filter((i) => i.type === t).map((i) => i.template));
      expect(templates.size).toBeGreaterThanOrEqual(5);
    }
    expect(new Set(set.items.map((i) => i.instruction)).size).toBe(200);
  });

  test("same seed gives byte-identical records; another seed another set", () => {
    expect(JSON.stringify(full(1).items)).toBe(JSON.stringify(set.items));
    const other = full(2).items;
    // Records carry their seed, so compare them without it: the draw itself must differ.
    const drawn = (items: typeof other) => items.map(({ seed: _seed, ...r }) => r);
    expect(drawn(other)).not.toEqual(drawn(set.items));
    const shared = other.filter((o) => set.items.some((s) => s.instruction === o.instruction)).length;
    expect(shared).toBeLessThan(150);
  });

  test("a subset of types draws the same items for those types", () => {
    const lists = makeTestSet({ seed: 1, perType: 40, types: ["list"] }).items;
    expect(lists).toEqual(set.items.filter((i) => i.type === "list"));
  });

  test("arithmetic checks carry the true result", () => {
    let sums = 0;
    let evens = 0;
    for (const it of set.items) {
      const sum = /^What is (\d+) \+ (\d+)\?/.exec(it.instruction);
      if (sum) {
        sums++;
        expect(it.checks[0]).toEqual({ type: "math_result", value: Number(sum[1]) + Number(sum[2]), tolerance: 1e-9 });
      }
      const even = /is (\d+) an even number\?$/.exec(it.instruction);
      if (even) {
        evens++;
        expect(it.checks[0]).toEqual({ type: "yes_no", expected: Number(even[1]) % 2 === 0 ? "yes" : "no" });
      }
    }
    // Both templates were drawn: a reworded template would otherwise leave nothing checked.
    expect(sums).toBeGreaterThan(0);
    expect(evens).toBeGreaterThan(0);
  });

  test("disjoint from the prompt pools: pool collisions are replaced", () => {
    expect(checkDisjoint(set.items, [])).toEqual([]);
    expect(set.collisions.every((c) => c.source === "pool" && c.testId === null)).toBe(true);
  });

  test("training collisions (exact and near) are replaced by the next candidate and reported", () => {
    const victims = set.items.filter((_, i) => i % 20 === 0);
    const training = [
      ...victims.map((v, i) => ({ id: `train-${i}`, text: i % 2 ? v.instruction.toUpperCase() : `${v.instruction.replace(/[.?]$/, "")} please` })),
      { id: "train-unrelated", text: "Write a haiku about autumn leaves in the wind." },
    ];
    const again = makeTestSet({ seed: 1, perType: 40, types: TEST_TYPES, exclude: training });
    expect(again.items).toHaveLength(200);
    expect(checkDisjoint(again.items, training)).toEqual([]);
    const hits = again.collisions.filter((c) => c.source === "training");
    expect(hits.map((h) => h.test).sort()).toEqual(victims.map((v) => v.instruction).sort());
    expect(new Set(hits.map((h) => h.kind))).toEqual(new Set(["exact", "near"]));
    // untouched items keep their instruction
    const kept = set.items.filter((i) => !victims.includes(i)).map((i) => i.instruction);
    const now = new Set(again.items.map((i) => i.instruction));
    expect(kept.filter((k) => !now.has(k)).length).toBeLessThanOrEqual(victims.length);
  });

  test("asking for more than the templates can give is a clear error", () => {
    expect(() => makeTestSet({ seed: 1, perType: 1000, types: ["factual"] })).toThrow("test type 'factual': only");
  });
});

describe("checkDisjoint", () => {
  test("reports exact and near collisions with the training item", () => {
    const tests = [
      { id: "t1", instruction: "What is the capital of France?" },
      { id: "t2", instruction: "Name three primary colors." },
      { id: "t3", instruction: "What is the capital of Spain?" },
    ];
    const training = [
      { id: "a", text: "what is the capital of france" },
      { id: "b", text: "Name the three primary colors." },
    ];
    const c = checkDisjoint(tests, training, { includePools: false });
    expect(c.map((x) => [x.testId, x.trainId, x.kind, x.source])).toEqual([
      ["t1", "a", "exact", "training"],
      ["t2", "b", "near", "training"],
    ]);
    expect(checkDisjoint(tests, training, { includePools: false, threshold: 0.9 }).map((x) => x.testId)).toEqual(["t1"]);
  });

  test("the pools count as training data", () => {
    expect(poolInstructions().length).toBe(RESPONSE_POOL.length + SEED_TASKS.length + 8);
    const c = checkDisjoint([{ id: "t", instruction: RESPONSE_POOL[0]!.instruction }], []);
    expect(c[0]).toMatchObject({ source: "pool", trainId: `pool:${RESPONSE_POOL[0]!.id}`, kind: "exact" });
  });
});

describe("testset plugin", () => {
  const strip = (file: string) =>
    readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => {
        const { _prov, ...rest } = JSON.parse(l);
        return rest;
      });

  test("runs alone; two runs with the same seed write the same records", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "t.yaml", `name: t\nstages:\n  - plugin: testset\n    config: { perType: 10 }\n`);
    const a = await cli(["run", cfg, "--run-dir", join(dir, "a")]);
    const b = await cli(["run", cfg, "--run-dir", join(dir, "b")]);
    expect(a.exitCode).toBe(0);
    expect(b.exitCode).toBe(0);
    expect(a.stdout).toContain("gate testset-disjoint: PASS");
    const ra = strip(join(dir, "a/testset/tests.jsonl"));
    expect(ra).toHaveLength(50);
    expect(ra).toEqual(strip(join(dir, "b/testset/tests.jsonl")));
    expect(ra).toEqual(makeTestSet({ seed: 1, perType: 10, types: TEST_TYPES }).items);
  });

  test("exclude: training instructions are kept out; onCollision: error fails the gate", async () => {
    const dir = tempDir();
    const first = makeTestSet({ seed: 1, perType: 5, types: ["factual"] }).items[0]!;
    const rec = { id: "i1", text: first.instruction, normalized: "", origin: "generated", seed: 3, sampling: { temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1.1, maxTokens: 64 }, fewShotIds: [], critic: null };
    writeFileSync(join(dir, "instructions.jsonl"), JSON.stringify(rec) + "\n");
    const body = (mode: string) => `name: t\nstages:\n  - plugin: testset\n    config: { perType: 5, types: [factual], exclude: [instructions.jsonl], onCollision: ${mode} }\n`;
    const ok = await cli(["run", writeConfig(dir, "ok.yaml", body("replace")), "--run-dir", join(dir, "ok")]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain("1 training collision(s) replaced");
    const items = strip(join(dir, "ok/testset/tests.jsonl"));
    expect(items.map((i) => i.instruction)).not.toContain(first.instruction);
    const report = JSON.parse(readFileSync(join(dir, "ok/testset/disjointness.json"), "utf8"));
    expect(report.excludeFiles[0]).toMatchObject({ kind: "instruction", texts: 1 });
    expect(report.excludeFiles[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const err = await cli(["run", writeConfig(dir, "err.yaml", body("error")), "--run-dir", join(dir, "err")]);
    expect(err.exitCode).toBe(3);
    expect(err.stderr).toContain("testset-disjoint failed");
  });

  test("a bad exclude file is reported with file:line", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.jsonl"), JSON.stringify({ id: "i1", text: "Name a fish.", normalized: "" }) + "\n");
    const cfg = writeConfig(dir, "t.yaml", `name: t\nstages:\n  - plugin: testset\n    config: { exclude: [bad.jsonl] }\n`);
    const r = await cli(["run", cfg, "--run-dir", join(dir, "r")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`${join(dir, "bad.jsonl")}:1: invalid 'instruction' record`);
  });
});
