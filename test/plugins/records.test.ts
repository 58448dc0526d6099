// Record builders (plugins/shared/records.ts): a valid record of each kind a plugin may
// produce from the fields it has, marked imported or hand-made; what is passed wins; a bad
// record is an error naming the kind, the record and the field.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ArtifactReader, ArtifactWriter } from "../../core/artifacts.ts";
import { InstructionKind, PreferencePairKind, SftExampleKind, TestInstructionKind } from "../../plugins/shared/kinds.ts";
import { instructionRecord, preferencePairRecord, sftExampleRecord, testInstructionRecord } from "../../plugins/shared/records.ts";
import { isTrainable } from "../../plugins/qc/trainable.ts";
import { tempDir } from "../helpers.ts";

describe("record builders", () => {
  test("an sft-example from instruction and response: valid, trainable, marked imported, no generation claimed", () => {
    const r = sftExampleRecord({ id: "ex-1", instruction: "Name a colour.", response: "Blue is a colour." });
    expect(SftExampleKind.schema.parse(r)).toEqual(r);
    expect(r.origin).toBe("imported");
    expect(r).toMatchObject({ instructionId: "ex-1", raw: "Blue is a colour.", stopReason: "eos", hitMaxTokens: false, responseTokens: 4, generatedTokens: 4, fewShotIds: [], seed: 0, critic: null });
    expect(r.sampling).toEqual({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, maxTokens: 4 });
    expect(isTrainable(r)).toBe(true);
  });

  test("fields passed win over the defaults, hand-made included", () => {
    const critic = { margin: 1.5, threshold: 0, accepted: true };
    const r = sftExampleRecord({ id: "ex-2", instruction: "Say hi.", response: "Hi.", responseTokens: 2, critic, origin: "hand-made", instructionId: "ins-9" });
    expect(r).toMatchObject({ responseTokens: 2, generatedTokens: 2, critic, origin: "hand-made", instructionId: "ins-9" });
  });

  test("the other kinds: instruction (normalized text), preference pair (best-of-n, or synthetic with a negative kind), test instruction", () => {
    const i = instructionRecord({ id: "i-1", text: "Name  A Colour!" });
    expect(InstructionKind.schema.parse(i)).toEqual(i);
    expect(i).toMatchObject({ origin: "imported", seed: null, sampling: null, fewShotIds: [], critic: null });
    expect(i.normalized).not.toBe(i.text);

    const p = preferencePairRecord({ id: "p-1", instruction: "Say hi.", chosen: "Hello there.", rejected: "No." });
    expect(PreferencePairKind.schema.parse(p)).toEqual(p);
    expect(p).toMatchObject({ source: "best-of-n", negativeKind: null, chosenTokens: 2, rejectedTokens: 1, marginGap: null, origin: "imported" });
    const s = preferencePairRecord({ id: "p-2", instruction: "Say hi.", chosen: "Hello.", rejected: "I cannot help with that.", negativeKind: "refusal" });
    expect(s.source).toBe("synthetic");

    const t = testInstructionRecord({ id: "t-1", instruction: "Name a colour.", type: "factual" });
    expect(TestInstructionKind.schema.parse(t)).toEqual(t);
    expect(t).toMatchObject({ origin: "hand-made", template: "hand-made", checks: [] });
  });

  test("a bad record is an error naming the kind, the record and the field", () => {
    expect(() => sftExampleRecord({ id: "ex-3", instruction: "two\nlines", response: "x" })).toThrow("sft-example record 'ex-3': field 'instruction': one line");
    expect(() => sftExampleRecord({ id: "ex-4", instruction: "ok", response: "x", seed: 1.5 })).toThrow(/sft-example record 'ex-4': field 'seed'/);
    expect(() => sftExampleRecord({ id: "ex-5", instruction: "ok", response: "x", respons: "typo" } as never)).toThrow("sft-example record 'ex-5': unknown field 'respons'");
    expect(() => preferencePairRecord({ id: "p-3", instruction: "ok", chosen: "same", rejected: "same" })).toThrow(/preference-pair record 'p-3'.*chosen and rejected must differ/);
    expect(() => instructionRecord({ id: "bad id", text: "ok" })).toThrow(/instruction record 'bad id': field 'id'/);
  });

  test("built records round-trip through the artifact store with their origin", async () => {
    const dir = tempDir();
    const w = new ArtifactWriter(join(dir, "x.jsonl"), "x", SftExampleKind, "run/stage");
    const recs = [sftExampleRecord({ id: "a", instruction: "A?", response: "Yes." }), sftExampleRecord({ id: "b", instruction: "B?", response: "No.", origin: "hand-made" })];
    for (const r of recs) w.write(r);
    await w.finalize();
    expect(await new ArtifactReader(join(dir, "x.jsonl"), SftExampleKind).all()).toEqual(recs);
  });
});
