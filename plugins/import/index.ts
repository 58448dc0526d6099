// The import stage: a user's JSONL dataset as the records the generating stages make, so that
// qc, sft, the pairs QC gate and dpo take it unchanged. `kind: sft` -> sft-example records
// (`examples`), which go through the qc stage like generated ones; `kind: pairs` ->
// preference-pair records (`pairs`), judged here by the pairs stage's own QC gate (one stage
// gate per row, read by dpo, which refuses a failed set unless `force: true`).
//
// Records are built by the shared record builders (origin "imported"); ids are the line's own
// or `imp-<first 8 hex of the file's sha256>-<line>`; the file's path and sha256 are in the
// stage's provenance, which every record's `_prov` names. The sha256 is the stage's
// fingerprint: an edited file is imported again, and so is everything downstream.
//
// Deterministic (the records depend on the file's bytes alone) and resumable: lines are
// committed every `commitEvery` with the line number as the cursor. A bad line is an error
// naming file:line and the field; the lines before it are committed, nothing after it is.
import { createReadStream, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { sha256File } from "../../core/artifacts.ts";
import { definePlugin, type StageContext } from "../../core/plugin.ts";
import { DEFAULT_MIX } from "../pairs/config.ts";
import { pairsQc, PairsQcConfig } from "../pairs/qc.ts";
import { summarizePairs } from "../pairs/summary.ts";
import { PreferencePairKind, SftExampleKind, type PreferencePair, type SftExample } from "../shared/kinds.ts";
import { ImportConfig } from "./config.ts";
import { LineError, recordOfLine } from "./lines.ts";

interface Cursor {
  /** Lines of the file done (1-based number of the last one). */
  line: number;
  sha256: string;
}

/** Bad lines reported in one error at most (the rest are counted). */
const MAX_REPORTED = 10;

const dataPath = (configDir: string, file: string) => resolve(configDir, file);

async function* lines(path: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const l of rl) yield l;
}

async function countLines(path: string): Promise<number> {
  let n = 0;
  for await (const _ of lines(path)) n++;
  return n;
}

export default definePlugin({
  name: "import",
  version: "1.0.0",
  description: "a user's JSONL as sft-example records (instruction, response) or preference-pair records (prompt, chosen, rejected; with the pairs QC gate)",
  config: ImportConfig,
  consumes: {},
  produces: { examples: SftExampleKind, pairs: PreferencePairKind },
  producesFor: (c) => [c.kind === "sft" ? "examples" : "pairs"],
  async fingerprint(c, { configDir }) {
    const path = dataPath(configDir, c.file);
    if (!existsSync(path)) throw new Error(`file: ${path} not found`);
    return { sha256: await sha256File(path) };
  },
  async run(ctx) {
    const c = ctx.config;
    const path = dataPath(dirname(resolve(ctx.run.configPath)), c.file);
    const sha256 = await sha256File(path);
    const out = c.kind === "sft" ? ctx.outputs.examples : ctx.outputs.pairs;
    const cur = out.cursor as Cursor | null;
    // The hash is planned with the file's sha256, so a resume sees the same file unless it changed since.
    if (cur && cur.sha256 !== sha256) throw new Error(`import: ${path} changed while the import was interrupted (sha256 ${cur.sha256.slice(0, 12)} -> ${sha256.slice(0, 12)}); run again to import it from the start`);
    const done = cur?.line ?? 0;
    const prefix = `imp-${sha256.slice(0, 8)}`;

    // Ids must be unique in the artifact; those of committed lines are read back on resume.
    const committed = cur ? await out.committed().all() : [];
    const ids = new Map<string, number | null>(committed.map((r) => [r.id, null]));
    const pairs: PreferencePair[] = c.kind === "pairs" ? (committed as PreferencePair[]) : [];
    const task = ctx.progress.task("import", await countLines(path));
    task.update(done);

    const errors: string[] = [];
    let bad = 0, blank = 0, records = committed.length, n = 0;
    for await (const text of lines(path)) {
      n++;
      if (n <= done) continue;
      if (text.trim() === "") {
        blank++;
      } else {
        try {
          const fallback = `${prefix}-${String(n).padStart(6, "0")}`;
          const rec = c.kind === "sft" ? recordOfLine("sft", text, fallback, c.extraFields) : recordOfLine("pairs", text, fallback, c.extraFields);
          const first = ids.get(rec.id);
          if (first !== undefined) throw new LineError(`field 'id': '${rec.id}' is used twice (${first === null ? "by a line imported before" : `first on line ${first}`})`);
          ids.set(rec.id, n);
          if (!bad) {
            if (c.kind === "sft") ctx.outputs.examples.write(rec as SftExample);
            else {
              ctx.outputs.pairs.write(rec as PreferencePair);
              pairs.push(rec as PreferencePair);
            }
            records++;
          }
        } catch (e) {
          if (!(e instanceof LineError)) throw e;
          if (++bad <= MAX_REPORTED) errors.push(`${path}:${n}: ${e.message}`);
        }
      }
      // Past a bad line nothing is written or committed: the cursor never passes it.
      if (!bad && n % c.commitEvery === 0) {
        out.commit({ line: n, sha256 } satisfies Cursor);
        task.update(n);
        if (ctx.signal.aborted) return;
      }
    }
    if (bad) throw new Error(`import: ${bad} bad line${bad > 1 ? "s" : ""} in ${path}${bad > MAX_REPORTED ? ` (the first ${MAX_REPORTED})` : ""}:\n${errors.join("\n")}`);
    out.commit({ line: n, sha256 } satisfies Cursor);
    task.update(n);
    task.finish();
    Object.assign(ctx.provenance.extra, { import: { file: path, sha256, kind: c.kind, lines: n, blankLines: blank, records } });
    ctx.log.info(`import: ${records} ${c.kind === "sft" ? "sft-example" : "preference-pair"} records from ${path} (sha256 ${sha256.slice(0, 12)})`);
    if (c.kind === "pairs") await judgePairs(ctx, pairs, c.qc ?? PairsQcConfig.parse({}));
  },
});

/**
 * The pairs stage's QC gate over imported pairs: its pure gate function with nothing made here
 * (no best-of-N, no synthetic negatives, so those two gates are off). Written as the pairs
 * stage writes it: pairs-summary.json, the provenance, one stage gate per row.
 */
async function judgePairs(ctx: Pick<StageContext<unknown, never, never>, "provenance" | "writeFile" | "gate" | "log">, pairs: PreferencePair[], qcConfig: PairsQcConfig) {
  const counts = { work: { bestOfN: 0, synthetic: 0 }, skipped: {}, negativesMadeBy: {}, duplicates: 0 };
  const qc = pairsQc(pairs, counts, { qc: qcConfig, mix: DEFAULT_MIX, bestOfN: false, synthetic: false });
  const summary = { ...summarizePairs(pairs, {}), duplicates: 0, negativesMadeBy: {}, work: counts.work, qc };
  ctx.provenance.extra.summary = summary;
  await ctx.writeFile("pairs-summary.json", `${JSON.stringify(summary, null, 2)}\n`);
  for (const g of qc.gates) ctx.gate({ name: g.name, passed: g.passed, summary: g.summary, details: { value: g.value, op: g.op, threshold: g.threshold } });
  ctx.log.info(`import: pairs QC ${qc.passed ? "PASS" : `FAIL (${qc.gates.filter((g) => !g.passed).map((g) => g.name).join(", ")})`}`);
}
