import { describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ArtifactReader, ArtifactWriter, RecordError } from "../../core/artifacts.ts";
import { defineKind } from "../../core/plugin.ts";
import { tempDir } from "../helpers.ts";

const Item = defineKind("item", z.strictObject({ id: z.number().int(), text: z.string() }));
const Vec = defineKind("vec", z.strictObject({ id: z.number(), ids: z.instanceof(Int32Array), logp: z.instanceof(Float32Array) }), "msgpack");

describe("artifact store", () => {
  test("JSONL round trip stamps provenance and strips it on read", async () => {
    const dir = tempDir();
    const w = new ArtifactWriter(join(dir, "items.jsonl"), "items", Item, "run-1/stage");
    for (let i = 0; i < 5; i++) w.write({ id: i, text: `t${i}` });
    const info = await w.finalize();
    expect(info.records).toBe(5);
    expect(readFileSync(join(dir, "items.jsonl"), "utf8").split("\n")[0]).toBe('{"id":0,"text":"t0","_prov":"run-1/stage"}');
    expect(existsSync(join(dir, "items.jsonl.partial"))).toBe(false);
    const back = await new ArtifactReader(join(dir, "items.jsonl"), Item).all();
    expect(back).toEqual([0, 1, 2, 3, 4].map((i) => ({ id: i, text: `t${i}` })));
  });

  test("MessagePack keeps typed arrays typed", async () => {
    const dir = tempDir();
    const w = new ArtifactWriter(join(dir, "v.msgpack"), "v", Vec, "r/s");
    w.write({ id: 1, ids: new Int32Array([1, -2, 3]), logp: new Float32Array([-0.5, -1.25]) });
    await w.finalize();
    const [rec] = await new ArtifactReader(join(dir, "v.msgpack"), Vec).all();
    expect(rec!.ids).toBeInstanceOf(Int32Array);
    expect([...rec!.ids]).toEqual([1, -2, 3]);
    expect([...rec!.logp]).toEqual([-0.5, -1.25]);
  });

  test("a record that breaks its schema is refused on write", () => {
    const w = new ArtifactWriter(join(tempDir(), "items.jsonl"), "items", Item, "r/s");
    expect(() => w.write({ id: 1.5, text: "x" } as never)).toThrow(RecordError);
  });

  test("a bad record on read is reported with file:line", async () => {
    const dir = tempDir();
    const p = join(dir, "items.jsonl");
    writeFileSync(p, '{"id":1,"text":"a"}\n{"id":2,"text":"b"}\n{"id":"three","text":"c"}\n');
    const err = await new ArtifactReader(p, Item).all().catch((e) => e);
    expect(err).toBeInstanceOf(RecordError);
    expect(err.message).toStartWith(`${p}:3:`);
    writeFileSync(p, '{"id":1,"text":"a"}\n{"id":2,\n');
    const err2 = await new ArtifactReader(p, Item).all().catch((e) => e);
    expect(err2.message).toStartWith(`${p}:2: not valid JSON`);
  });

  test("reopening drops an uncommitted or torn tail and keeps the cursor", async () => {
    const dir = tempDir();
    const p = join(dir, "items.jsonl");
    const w1 = new ArtifactWriter(p, "items", Item, "r/s");
    w1.write({ id: 0, text: "a" });
    w1.write({ id: 1, text: "b" });
    w1.commit({ next: 2 });
    w1.write({ id: 2, text: "never committed" });
    // Simulate a crash mid-append: half a record after the committed bytes.
    appendFileSync(`${p}.partial`, '{"id":2,"te');
    const w2 = new ArtifactWriter(p, "items", Item, "r/s");
    expect(w2.committedRecords).toBe(2);
    expect(w2.cursor).toEqual({ next: 2 });
    expect((await w2.committed().all()).map((r) => r.id)).toEqual([0, 1]);
    w2.write({ id: 2, text: "c" });
    await w2.finalize();
    expect((await new ArtifactReader(p, Item).all()).map((r) => r.id)).toEqual([0, 1, 2]);
  });

  test("only a commit with a cursor is a resume point: records flushed after it are dropped on reopen", async () => {
    const dir = tempDir();
    const p = join(dir, "items.jsonl");
    const w1 = new ArtifactWriter(p, "items", Item, "r/s");
    w1.write({ id: 0, text: "a" });
    w1.commit(1);
    w1.write({ id: 1, text: "flushed, not a resume point" });
    w1.commit();
    w1.write({ id: 2, text: "buffered" });
    expect(w1.totalRecords).toBe(3);
    const w2 = new ArtifactWriter(p, "items", Item, "r/s");
    expect(w2.cursor).toBe(1);
    expect(w2.committedRecords).toBe(1);
    w2.write({ id: 1, text: "b" });
    await w2.finalize();
    expect((await new ArtifactReader(p, Item).all()).map((r) => r.text)).toEqual(["a", "b"]);
  });
});

describe("readers and Ctrl-C", () => {
  for (const format of ["jsonl", "msgpack"] as const) {
    test(`a loop over a ${format} reader whose awaits are all settled promises still lets a timer (a signal handler) run`, async () => {
      const Big = defineKind(`big-${format}`, z.strictObject({ n: z.number().int(), text: z.string() }), format);
      const path = join(tempDir(), `big.${format}`);
      const w = new ArtifactWriter(path, "big", Big, "r/s");
      const N = 60_000;
      for (let n = 0; n < N; n++) w.write({ n, text: `record ${n} with some text to parse and validate` });
      await w.finalize();
      let n = 0;
      let firedAt = -1;
      setTimeout(() => (firedAt = n), 0);
      const t0 = performance.now();
      for await (const r of new ArtifactReader(path, Big)) {
        await Promise.resolve(r); // a per-record await that never leaves the microtask queue
        n++;
      }
      const ms = performance.now() - t0;
      expect(n).toBe(N);
      // The loop took long enough to need a turn; the timer ran during it, not after.
      expect(ms).toBeGreaterThan(30);
      expect(firedAt).toBeGreaterThanOrEqual(0);
      expect(firedAt).toBeLessThan(N);
    });
  }
});
