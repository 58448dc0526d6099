// An interrupted generation stage resumes without losing or duplicating records:
// SIGKILL a child `bun core/cli.ts run` in the middle of the instructions stage and of
// the responses stage, run the same command again, and compare every artifact with an
// uninterrupted run of the same config: byte for byte.
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModel } from "../../native/gguf/fixtures.ts";
import { cli, ROOT, tempDir } from "../helpers.ts";
import { expectOk, readJsonl, smallConfig } from "./generate-helpers.ts";

// Child runs and model loads are slow on a shared 2-core machine (the preload's default
// does not reach every file when several run in one `bun test`).
setDefaultTimeout(300_000);

const dir = tempDir();
const cfg = smallConfig(dir, "resume.yaml", {
  name: "resume",
  count: 10,
  batch: 1,
  maxCalls: 8,
  responsesBatch: 1,
});
const reference = join(dir, "reference");
const ARTIFACTS = ["load/model.jsonl", "instructions/instructions.jsonl", "responses/examples.jsonl"];

function start(runDir: string) {
  return Bun.spawn(["bun", join(ROOT, "core/cli.ts"), "run", cfg, "--run-dir", runDir], { stdout: "ignore", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "off" } });
}

async function waitFor(pred: () => boolean, what: string) {
  for (let i = 0; i < 2400; i++) {
    try {
      if (pred()) return;
    } catch {} // a commit file is replaced atomically; tolerate a racing read anyway
    await Bun.sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const commit = (runDir: string, file: string) => JSON.parse(readFileSync(join(runDir, `${file}.commit.json`), "utf8")) as { records: number; cursor: Record<string, number> | null };

beforeAll(async () => {
  await tinyModel({ type: "f16" }); // synthesized once, before the children race for it
});

describe("resume after SIGKILL", () => {
  test("reference run", async () => {
    const r = await cli(["run", cfg, "--run-dir", reference]);
    expectOk(r);
    const ins = readJsonl(join(reference, "instructions/instructions.jsonl"));
    expect(ins.length).toBe(10);
  });

  test("Ctrl-C in the middle of 'responses' stops between batches (exit 130) and the re-run resumes exactly", async () => {
    const runDir = join(dir, "interrupted");
    const file = "responses/examples.jsonl";
    const child = start(runDir);
    await waitFor(() => commit(runDir, file).records >= 2, "responses to commit");
    child.kill("SIGINT");
    expect(await child.exited).toBe(130);
    const m = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
    expect(m.stages.responses.status).toBe("interrupted");
    const r = await cli(["run", cfg, "--run-dir", runDir]);
    expectOk(r);
    for (const f of ARTIFACTS) expect(readFileSync(join(runDir, f)).equals(readFileSync(join(reference, f)))).toBe(true);
  });

  for (const [stage, file, when] of [
    ["instructions", "instructions/instructions.jsonl", (c: ReturnType<typeof commit>) => (c.cursor?.calls ?? 0) >= 2],
    ["responses", "responses/examples.jsonl", (c: ReturnType<typeof commit>) => c.records >= 3],
  ] as const) {
    test(`killed in the middle of '${stage}', the re-run resumes exactly`, async () => {
      const runDir = join(dir, `killed-${stage}`);
      const child = start(runDir);
      await waitFor(() => when(commit(runDir, file)), `${stage} to commit`);
      child.kill("SIGKILL");
      expect(await child.exited).not.toBe(0);
      expect(existsSync(join(runDir, file))).toBe(false); // only the partial exists
      const committed = commit(runDir, file).records;

      const r = await cli(["run", cfg, "--run-dir", runDir]);
      expectOk(r);
      expect(r.stderr).toContain(`stage '${stage}': resuming an interrupted attempt`);
      const recs = readJsonl(join(runDir, file));
      expect(recs.length).toBeGreaterThan(committed);
      expect(new Set(recs.map((x) => x.id)).size).toBe(recs.length); // no duplicates
      for (const f of ARTIFACTS) expect(readFileSync(join(runDir, f)).equals(readFileSync(join(reference, f)))).toBe(true); // no loss, same bytes
    });
  }
});
