// A sharded stage's `merge` hook: it sees the merged outputs and each shard's folder, and
// its gates and files describe the whole — a gate a shard alone would fail passes on the
// merged records, and the hook's file is recorded in the manifest like any extra file.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { RunManifest } from "../../core/provenance.ts";
import { cli, FIXTURE_PLUGINS, tempDir, writeConfig } from "../helpers.ts";


test("merge: gates and files over the merged whole of a sharded stage", async () => {
  const dir = tempDir();
  const pluginPath = `${FIXTURE_PLUGINS}/counted.ts`;
  const cfg = (minTotal: number) => writeConfig(dir, "a.yaml", `name: mg\nstages:\n  - plugin: ${pluginPath}\n    shards: 3\n    config: { count: 20, minTotal: ${minTotal} }\n`);
  // 20 records over 3 shards (7, 7, 6): each shard alone would fail a gate of 15.
  const runDir = join(dir, "run");
  const r = await cli(["run", cfg(15), "--run-dir", runDir]);
  expect(r.exitCode).toBe(0);
  const m: RunManifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
  const st = m.stages.counted!;
  expect(st.gates.map((g) => [g.name, g.passed])).toEqual([["total", true]]);
  expect(JSON.parse(readFileSync(join(runDir, "counted/whole.json"), "utf8"))).toEqual({ total: 20, parts: [7, 7, 6], dirsExist: true });
  expect(st.files.map((f) => f.file)).toEqual(["whole.json"]);
  expect(st.files[0]!.sha256).toBe(new Bun.CryptoHasher("sha256").update(readFileSync(join(runDir, "counted/whole.json"))).digest("hex"));
  expect(st.provenance.extra.total).toBe(20);

  // The whole fails: the merged gate stops the run (exit 3); shards are not re-run, the merge is.
  const failed = await cli(["run", cfg(21), "--run-dir", join(dir, "run2")]);
  expect(failed.exitCode).toBe(3);
  expect(failed.stderr).toContain("gate 'total' of stage 'counted' failed: 20 >= 21");
});
