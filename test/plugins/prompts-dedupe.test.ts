// Normalisation, exact and near-duplicate detection (plugins/prompts/dedupe.ts).
import { describe, expect, test } from "bun:test";
import { dedupe, DuplicateIndex, jaccard, normalizeInstruction, shingles, similarity } from "../../plugins/prompts/dedupe.ts";
import { Rng } from "../../plugins/prompts/rng.ts";

describe("normalizeInstruction", () => {
  test("case, punctuation, whitespace and Unicode width fold away; arithmetic symbols stay", () => {
    expect(normalizeInstruction("  What is the CAPITAL of France?! ")).toBe("what is the capital of france");
    expect(normalizeInstruction("Name   three\tfish.")).toBe(normalizeInstruction("name three fish"));
    expect(normalizeInstruction("Ｗｈａｔ is 2+2?")).toBe("what is 2 + 2");
    expect(normalizeInstruction("What is 5+3?")).not.toBe(normalizeInstruction("What is 5-3?"));
    expect(normalizeInstruction("Café déjà vu")).toBe("café déjà vu");
    expect(normalizeInstruction("?!...")).toBe("");
  });
});

describe("similarity", () => {
  test("shingles and Jaccard by hand", () => {
    expect([...shingles("abcdef", 5)]).toEqual(["abcde", "bcdef"]);
    expect([...shingles("abc", 5)]).toEqual(["abc"]);
    expect(shingles("", 5).size).toBe(0);
    expect(jaccard(new Set(["a", "b", "c"]), new Set(["b", "c", "d"]))).toBe(2 / 4);
    expect(jaccard(new Set(), new Set())).toBe(1);
    expect(jaccard(new Set(["a"]), new Set())).toBe(0);
  });

  test("small edits are near-duplicates; a different fact is not; rewordings are out of reach", () => {
    expect(similarity("Name three primary colors.", "Name three primary colours")).toBeGreaterThanOrEqual(0.7);
    expect(similarity("Name three primary colors.", "Name the three primary colors.")).toBeGreaterThanOrEqual(0.7);
    expect(similarity("Explain how a rainbow forms.", "Please explain how a rainbow forms.")).toBeGreaterThanOrEqual(0.7);
    // documented limits (specs/prompts.md): edits in the middle of short texts cut many shingles
    expect(similarity("Explain how a rainbow forms.", "Explain how rainbows form.")).toBeLessThan(0.7);
    expect(similarity("Give three tips for better sleep.", "Give 3 tips for better sleep.")).toBeLessThan(0.7);
    expect(similarity("What is the capital of France?", "What is the capital of Spain?")).toBeLessThan(0.7);
    expect(similarity("Write a haiku about autumn.", "Give three tips for sleeping well.")).toBeLessThan(0.2);
  });
});

describe("DuplicateIndex", () => {
  test("exact after normalisation, near above the threshold, unique otherwise", () => {
    const idx = new DuplicateIndex();
    expect(idx.add("a", "Name three primary colors.")).toEqual({ kind: "unique" });
    expect(idx.add("b", "name three PRIMARY colors")).toEqual({ kind: "exact", of: "a", similarity: 1 });
    const near = idx.add("c", "Name three primary colours.");
    expect(near.kind).toBe("near");
    expect(near.kind !== "unique" && near.of).toBe("a");
    expect(idx.add("d", "What is the capital of France?")).toEqual({ kind: "unique" });
    expect(idx.add("e", "What is the capital of Spain?")).toEqual({ kind: "unique" });
    expect(idx.size).toBe(3);
    expect(idx.check("What is the capital of Spain")).toEqual({ kind: "exact", of: "e", similarity: 1 });
    expect(idx.size).toBe(3);
  });

  test("the threshold is configurable and validated", () => {
    const strict = new DuplicateIndex({ threshold: 0.95 });
    strict.add("a", "Name three primary colors.");
    expect(strict.check("Name three primary colours.").kind).toBe("unique");
    expect(() => new DuplicateIndex({ threshold: 0 })).toThrow();
  });

  test("insert keeps duplicates in a reference set; check reports the most similar", () => {
    const idx = new DuplicateIndex();
    idx.insert("x", "Please explain how a rainbow forms.");
    idx.insert("y", "Explain how a rainbow forms.");
    idx.insert("y2", "Explain how a rainbow forms.");
    expect(idx.size).toBe(3);
    expect(idx.check("Explain how a rainbow forms!")).toEqual({ kind: "exact", of: "y", similarity: 1 });
    const w = idx.check("Now please explain how a rainbow forms.");
    expect(w.kind === "near" && w.of).toBe("x");
  });

  test("LSH finds the same near-duplicate pairs as comparing every pair", () => {
    // A corpus of templated instructions with small edits, so many pairs sit near the threshold.
    const rng = new Rng(9, "corpus");
    const verbs = ["Write", "Explain", "Describe", "List", "Summarize"];
    const things = ["a poem about the sea", "how rainbows form", "the water cycle", "three kinds of fish", "the history of tea", "why the sky is blue"];
    const edits = ["", " please", " briefly", " in simple words", "!", " for a child"];
    const texts = Array.from({ length: 300 }, () => `${rng.pick(verbs)} ${rng.pick(things)}${rng.pick(edits)}${rng.int(3) === 0 ? ` ${rng.range(1, 9)}` : ""}`);
    const idx = new DuplicateIndex();
    texts.forEach((t, i) => idx.insert(`t${i}`, t));
    let checked = 0;
    const sets = texts.map((t) => shingles(normalizeInstruction(t)));
    for (let i = 0; i < texts.length; i++) {
      // every text is in the index, so it is at least an exact match of itself
      expect(idx.check(texts[i]!).kind).toBe("exact");
      // without itself, the index must report exactly the brute-force best match at or above 0.7
      if (i % 20 === 0) {
        let best = 0;
        for (let j = 0; j < texts.length; j++) if (j !== i && normalizeInstruction(texts[j]!) !== normalizeInstruction(texts[i]!)) best = Math.max(best, jaccard(sets[i]!, sets[j]!));
        const other = new DuplicateIndex();
        texts.forEach((t, j) => normalizeInstruction(t) !== normalizeInstruction(texts[i]!) && other.insert(`t${j}`, t));
        const w = other.check(texts[i]!);
        expect(w.kind === "unique" ? 0 : w.similarity).toBe(best >= 0.7 ? best : 0);
        checked += best >= 0.7 ? 1 : 0;
      }
    }
    expect(checked).toBeGreaterThan(5); // the corpus does exercise near-duplicates
  });
});

describe("dedupe", () => {
  test("keeps the first of each group, in order, and says why the others went", () => {
    const items = [
      { id: "1", t: "Name three primary colors." },
      { id: "2", t: "Explain gravity to a child." },
      { id: "3", t: "NAME three primary colors" },
      { id: "4", t: "Name three primary colours." },
      { id: "5", t: "Write a poem about rain." },
    ];
    const { kept, dropped } = dedupe(items, (x) => x.id, (x) => x.t);
    expect(kept.map((x) => x.id)).toEqual(["1", "2", "5"]);
    expect(dropped.map((d) => [d.item.id, d.verdict.kind, d.verdict.of])).toEqual([
      ["3", "exact", "1"],
      ["4", "near", "1"],
    ]);
  });
});
