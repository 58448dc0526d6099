// Issue 12 item 6: a generating stage keeps one work context across its batches where that
// cannot change a byte — split KV caches (loader `kvUnified: false`, specs/inference.md): the
// context is created once for the model and reused by every batch of instructions and
// responses (and their critic), and a run resumed after SIGKILL, or a stage re-run alone with
// `--only` (its first batch then on a new context, not on the one the earlier stage used),
// writes the same bytes as one uninterrupted run.
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { cpSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { cli, ROOT, tempDir, writeConfig } from "../helpers.ts";
import { expectOk, readJsonl } from "./generate-helpers.ts";

setDefaultTimeout(300_000);

const dir = tempDir();
const cfg = writeConfig(
  dir,
  "split.yaml",
  `name: split
seed: 11
stages:
  - id: load
    plugin: loader
    config:
      synthesize: { arch: qwen2, preset: tiny, type: f32 }
      contextSize: 8192
      parallel: 3
      kvUnified: false
      kvType: f32
      flashAttention: "off"
      threads: 1
      sentinels: { maxTokens: 8 }
  - plugin: instructions
    config:
      count: 8
      batch: 2
      maxCalls: 8
      poolFill: true
      sampling: { maxTokens: 24 }
      critic: { threshold: -1000 }
  - plugin: responses
    config:
      batch: 2
      sampling: { maxTokens: 16 }
`,
);
const reference = join(dir, "reference");
const ARTIFACTS = ["instructions/instructions.jsonl", "responses/examples.jsonl"];
const KEPT = /model service: work context for .* created, kept across batches/g;
const same = (runDir: string) => ARTIFACTS.map((f) => `${f} ${readFileSync(join(runDir, f)).equals(readFileSync(join(reference, f)))}`);

async function waitFor(pred: () => boolean, what: string) {
  for (let i = 0; i < 4800; i++) {
    try {
      if (pred()) return;
    } catch {} // a commit file is replaced atomically; tolerate a racing read anyway
    await Bun.sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  await tinyModel({ type: "f32" }); // synthesized once, before the children race for it
});

describe("one work context across batches (split KV caches)", () => {
  test("reference run: both stages' batches run on one context, created once", async () => {
    const r = await cli(["run", cfg, "--run-dir", reference]);
    expectOk(r);
    expect(readJsonl(join(reference, "instructions/instructions.jsonl")).length).toBe(8);
    expect(readJsonl(join(reference, "responses/examples.jsonl")).length).toBe(8); // 4 batches of 2
    expect(r.stderr.match(KEPT)?.length).toBe(1);
  });

  test("--only responses (a new process, a new context for its first batch) writes the same bytes", async () => {
    const runDir = join(dir, "only");
    cpSync(reference, runDir, { recursive: true });
    const r = await cli(["run", cfg, "--run-dir", runDir, "--only", "responses"]);
    expectOk(r);
    expect(r.stderr).toContain("stage 'responses' (responses");
    expect(r.stderr.match(KEPT)?.length).toBe(1);
    expect(same(runDir)).toEqual(ARTIFACTS.map((f) => `${f} true`));
  });

  type Commit = { records: number; cursor: Record<string, number> | null };
  for (const [stage, file, when] of [
    ["instructions", "instructions/instructions.jsonl", (c: Commit) => (c.cursor?.calls ?? 0) >= 2],
    ["responses", "responses/examples.jsonl", (c: Commit) => c.records >= 2],
  ] as const) {
    test(`SIGKILL in the middle of '${stage}', then the same command: the same bytes`, async () => {
      const runDir = join(dir, `killed-${stage}`);
      const child = Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", cfg, "--run-dir", runDir], { stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
      const commit = join(runDir, `${file}.commit.json`);
      await waitFor(() => when(JSON.parse(readFileSync(commit, "utf8"))), `${stage} to commit`);
      child.kill("SIGKILL");
      await child.exited;
      console.log(`${stage}: killed at ${readFileSync(commit, "utf8")}`);
      expect(existsSync(join(runDir, file))).toBe(false); // killed mid-stage: only the partial exists
      const r = await cli(["run", cfg, "--run-dir", runDir]);
      expectOk(r);
      expect(r.stderr).toContain(`stage '${stage}': resuming an interrupted attempt`);
      expect(same(runDir)).toEqual(ARTIFACTS.map((f) => `${f} true`));
    });
  }
});
