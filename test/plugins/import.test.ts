// The import stage: a user's JSONL as sft-example or preference-pair records. Through the CLI:
// the records (origin imported, ids, the file's sha256 in the provenance), bytes equal across
// runs, skipped when unchanged and imported again (with what reads it) when the file changes;
// bad lines named by file:line and field; the pairs QC gate over imported pairs; wiring by the
// kind the config picks. In-process: an import interrupted after a commit resumes to the same bytes.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { ArtifactWriter, sha256File } from "../../core/artifacts.ts";
import plugin from "../../plugins/import/index.ts";
import { SftExampleKind } from "../../plugins/shared/kinds.ts";
import { cli, tempDir, writeConfig } from "../helpers.ts";

const SFT_LINES = [
  { instruction: "Name a fruit.", response: "An apple." },
  { instruction: "Say hi.", response: "  Hi!\n" },
  { id: "mine-1", instruction: "Add 2 and 3.", response: "5" },
];
const jsonl = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).join("\n") + "\n";
const manifest = (runDir: string) => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
const records = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));

function setup(data: string, stages: string) {
  const dir = tempDir("selftune-import-");
  writeFileSync(join(dir, "data.jsonl"), data);
  const cfg = writeConfig(dir, "run.yaml", `name: import-test\nstages:\n${stages}`);
  return { dir, cfg, runDir: join(dir, "run") };
}
const SFT_STAGES = "  - plugin: import\n    config: { file: data.jsonl, kind: sft }\n  - plugin: qc\n    config: { minCriticAcceptance: null }\n";

describe("import stage", () => {
  test("sft: records built from the lines, stamped imported with the file's sha256; skipped unchanged, re-imported when the file changes", async () => {
    const s = setup(jsonl(SFT_LINES) + "\n", SFT_STAGES);
    const r = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(r.stderr).not.toContain("error");
    expect(r.exitCode).toBe(0);
    const sha = await sha256File(join(s.dir, "data.jsonl"));
    const recs = records(join(s.runDir, "import", "examples.jsonl"));
    expect(recs.map((x) => x.id)).toEqual([`imp-${sha.slice(0, 8)}-000001`, `imp-${sha.slice(0, 8)}-000002`, "mine-1"]);
    expect(recs[1]).toMatchObject({ instruction: "Say hi.", response: "Hi!", origin: "imported", critic: null, stopReason: "eos", _prov: "import-test/import" });
    const m = manifest(s.runDir);
    expect(m.stages.import.provenance.extra.import).toEqual({ file: join(s.dir, "data.jsonl"), sha256: sha, kind: "sft", lines: 4, blankLines: 1, records: 3 });
    expect(m.stages.import.artifacts.map((a: { slot: string }) => a.slot)).toEqual(["examples"]);
    expect(m.stages.qc.gates.every((g: { passed: boolean }) => g.passed)).toBe(true);

    // The same file in another run directory: the same bytes.
    const again = join(s.dir, "run2");
    expect((await cli(["run", s.cfg, "--run-dir", again])).exitCode).toBe(0);
    expect(await sha256File(join(again, "import", "examples.jsonl"))).toBe(await sha256File(join(s.runDir, "import", "examples.jsonl")));

    const skip = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(skip.stderr).toContain("stage 'import': unchanged, skipped");
    expect(skip.stderr).toContain("stage 'qc': unchanged, skipped");
    // An edited file is part of the stage's identity: imported again, and qc re-runs on it.
    appendFileSync(join(s.dir, "data.jsonl"), JSON.stringify({ instruction: "Name a colour.", response: "Blue." }) + "\n");
    const edited = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(edited.exitCode).toBe(0);
    expect(edited.stderr).toContain("stage 'import' (import 1.0.0) started");
    expect(edited.stderr).toContain("stage 'qc' (qc 1.0.0) started");
    expect(manifest(s.runDir).stages.import.artifacts[0].records).toBe(4);
  });

  test("a bad line is an error naming file:line and the field; nothing past it is written", async () => {
    const lines = [
      JSON.stringify(SFT_LINES[0]),
      JSON.stringify({ instruction: "Two\nlines", response: "x" }),
      JSON.stringify({ instruction: "Fine.", reponse: "x" }),
      "{not json",
      JSON.stringify({ instruction: "Again.", response: "   " }),
      JSON.stringify({ id: "a", instruction: "One.", response: "1" }),
      JSON.stringify({ id: "a", instruction: "Two.", response: "2" }),
    ];
    const s = setup(lines.join("\n") + "\n", SFT_STAGES);
    const r = await cli(["run", s.cfg, "--run-dir", s.runDir]);
    expect(r.exitCode).toBe(1);
    const file = join(s.dir, "data.jsonl");
    expect(r.stderr).toContain(`import: 5 bad lines in ${file}`);
    expect(r.stderr).toContain(`${file}:2: field 'instruction': must be one line`);
    expect(r.stderr).toContain(`${file}:3: field 'response': required; unknown field 'reponse'`);
    expect(r.stderr).toContain(`${file}:4: not JSON`);
    expect(r.stderr).toContain(`${file}:5: field 'response': empty`);
    expect(r.stderr).toContain(`${file}:7: field 'id': 'a' is used twice (first on line 6)`);
    expect(existsSync(join(s.runDir, "import", "examples.jsonl"))).toBe(false);
    expect(manifest(s.runDir).stages.import.status).toBe("failed");

    // extraFields: ignore drops unknown fields; a pairs line needs its own fields.
    const p = setup(jsonl([{ prompt: "Name a fruit.", chosen: "An apple.", rejected: "An apple." }, { prompt: "Hi.", chosen: "Hi!", rejected: "No.", note: "kept out" }]), "  - plugin: import\n    config: { file: data.jsonl, kind: pairs, extraFields: ignore }\n");
    const pr = await cli(["run", p.cfg, "--run-dir", p.runDir]);
    expect(pr.exitCode).toBe(1);
    expect(pr.stderr).toContain(`${join(p.dir, "data.jsonl")}:1: field 'rejected': the same text as chosen`);
    expect(pr.stderr).not.toContain(":2:");
  });

  test("a missing file, qc on kind sft, and a kind no stage makes are config errors (exit 2)", async () => {
    const missing = setup("", "  - plugin: import\n    config: { file: nope.jsonl, kind: sft }\n");
    const v = await cli(["validate", missing.cfg]);
    expect(v.exitCode).toBe(2);
    expect(v.stderr).toContain(`run.yaml:4: stages[0].config: file: ${join(missing.dir, "nope.jsonl")} not found`);
    const qc = setup("", "  - plugin: import\n    config: { file: data.jsonl, kind: sft, qc: { minPairs: 3 } }\n");
    const q = await cli(["validate", qc.cfg]);
    expect(q.exitCode).toBe(2);
    expect(q.stderr).toContain("stages[0].config.qc: only for kind: pairs");
    // kind: sft makes sft-example records only: a dpo after it has no pairs to read.
    const wired = setup("", "  - plugin: import\n    config: { file: data.jsonl, kind: sft }\n  - plugin: dpo\n    config: { model: m.gguf, from: base }\n");
    const w = await cli(["validate", wired.cfg]);
    expect(w.exitCode).toBe(2);
    expect(w.stderr).toContain("stage 'dpo' consumes kind 'preference-pair' (slot 'pairs') but no stage before it produces it (produced upstream: sft-example)");
  });

  test("pairs: the pairs stage's QC gate judges the imported pairs (gate: stop ends the run, exit 3)", async () => {
    const pairs = Array.from({ length: 4 }, (_, i) => ({ prompt: `Name fruit number ${i}.`, chosen: `Fruit ${i} is an apple.`, rejected: `No idea ${i}.` }));
    const ok = setup(jsonl(pairs), "  - plugin: import\n    config: { file: data.jsonl, kind: pairs }\n");
    expect((await cli(["run", ok.cfg, "--run-dir", ok.runDir])).exitCode).toBe(0);
    const m = manifest(ok.runDir).stages.import;
    expect(m.gates.map((g: { name: string; passed: boolean }) => `${g.name} ${g.passed}`)).toEqual(["pairs true", "best-of-n-kept true", "duplicate-rate true", "identical-sides true", "chosen-leakage true", "kind-mix true", "length-difference true"]);
    expect(m.artifacts.map((a: { slot: string }) => a.slot)).toEqual(["pairs"]);
    expect(records(join(ok.runDir, "import", "pairs.jsonl"))[0]).toMatchObject({ instruction: "Name fruit number 0.", source: "best-of-n", origin: "imported", chosenTokens: 5, rejectedTokens: 3 });
    expect(JSON.parse(readFileSync(join(ok.runDir, "import", "pairs-summary.json"), "utf8")).qc.passed).toBe(true);

    const dup = setup(jsonl([...pairs, pairs[0]]), "  - plugin: import\n    config: { file: data.jsonl, kind: pairs, qc: { minPairs: 10 } }\n");
    const r = await cli(["run", dup.cfg, "--run-dir", dup.runDir]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("gate 'pairs' of stage 'import' failed: 5 pairs");
    expect(r.stderr).toContain("gate 'duplicate-rate' of stage 'import' failed: duplicates 1/5");
  });

  test("interrupted after a commit, resumed: every line once, the same bytes as an uninterrupted import", async () => {
    const dir = tempDir("selftune-import-resume-");
    const lines = Array.from({ length: 7 }, (_, i) => ({ instruction: `Question ${i}?`, response: `Answer ${i}.` }));
    writeFileSync(join(dir, "data.jsonl"), jsonl(lines));
    const run = async (out: string, abortAfterCommits: number | null) => {
      const writer = new ArtifactWriter(join(out, "examples.jsonl"), "examples", SftExampleKind, "t/import");
      const controller = new AbortController();
      let commits = 0;
      const commit = writer.commit.bind(writer);
      writer.commit = (cursor?: unknown) => {
        commit(cursor);
        if (cursor != null && ++commits === abortAfterCommits) controller.abort();
      };
      const noop = { tick() {}, update() {}, finish() {} };
      const ctx = {
        config: plugin.config.parse({ file: "data.jsonl", kind: "sft", commitEvery: 2 }),
        run: { id: "t", name: "t", dir: out, configPath: join(dir, "run.yaml") },
        outputs: { examples: writer },
        progress: { task: () => noop },
        signal: controller.signal,
        provenance: { extra: {} },
        log: { info() {}, warn() {} },
      };
      await plugin.run(ctx as never);
      return { writer, aborted: controller.signal.aborted };
    };
    const straight = await run(join(dir, "a"), null);
    await straight.writer.finalize();
    const first = await run(join(dir, "b"), 2);
    expect(first.aborted).toBe(true);
    expect(first.writer.committedRecords).toBe(4);
    const resumed = await run(join(dir, "b"), null);
    expect(resumed.writer.cursor).toEqual({ line: 7, sha256: await sha256File(join(dir, "data.jsonl")) });
    await resumed.writer.finalize();
    expect(records(join(dir, "b", "examples.jsonl")).map((r) => r.instruction)).toEqual(lines.map((l) => l.instruction));
    expect(await sha256File(join(dir, "b", "examples.jsonl"))).toBe(await sha256File(join(dir, "a", "examples.jsonl")));
  });
});
