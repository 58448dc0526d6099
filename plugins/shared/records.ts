// Record builders: a valid record of a shared kind from the fields a plugin actually has.
//
// A stage that generates fills every field from what it did (seed, sampling, critic verdict,
// few-shot ids). A plugin that imports data or takes it from a person has none of that; these
// builders fill the rest with neutral values and mark the record `origin: "imported"` or
// `"hand-made"` (specs/data.md, "Imported and hand-made records"), so that nothing downstream
// mistakes it for a generation. Whatever a caller passes wins over a default; the result is
// validated against the kind's schema here, so a bad field fails at the call that made it,
// naming the kind, the record and the field (the writer validates again when it is written).
import type { ArtifactKind } from "../../core/plugin.ts";
import { normalizeInstruction } from "../prompts/dedupe.ts";
import {
  InstructionKind,
  PreferencePairKind,
  SftExampleKind,
  TestInstructionKind,
  type Instruction,
  type PreferencePair,
  type RecordOrigin,
  type SamplingParams,
  type SftExample,
  type TestInstruction,
} from "./kinds.ts";

export { RECORD_ORIGINS, type RecordOrigin } from "./kinds.ts";

/** Words, an estimate where no tokenizer counted: pass the real count when you have one. */
function words(text: string): number {
  const t = text.trim();
  return t === "" ? 0 : t.split(/\s+/).length;
}

/** The sampling recorded for text no model sampled: greedy, no penalties, limit = its length. */
function noSampling(tokens: number): SamplingParams {
  return { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, maxTokens: Math.max(1, tokens) };
}

function build<T>(kind: ArtifactKind<T>, record: Record<string, unknown>): T {
  const parsed = kind.schema.safeParse(record);
  if (parsed.success) return parsed.data;
  const id = typeof record.id === "string" ? ` '${record.id}'` : "";
  const issues = parsed.error.issues.map((i) => {
    const path = i.path.map(String).join(".");
    if (i.code === "unrecognized_keys") return `unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")}`;
    return `${path ? `field '${path}'` : "record"}: ${i.message}`;
  });
  throw new Error(`${kind.name} record${id}: ${issues.join("; ")}`);
}

type Given<T, Required extends keyof T> = Pick<T, Required> & Partial<Omit<T, Required | "origin">> & { origin?: RecordOrigin };

/** An sft-example from an instruction and a response (default origin "imported"). */
export function sftExampleRecord(f: Given<SftExample, "id" | "instruction" | "response">): SftExample {
  const responseTokens = f.responseTokens ?? words(f.response);
  const generatedTokens = f.generatedTokens ?? responseTokens;
  return build(SftExampleKind, {
    instructionId: f.id,
    raw: f.response,
    // The text ended where its source ended it: like a model's own end, no delimiter, no limit hit.
    stopReason: "eos",
    hitMaxTokens: false,
    fewShotIds: [],
    sampling: noSampling(generatedTokens),
    seed: 0,
    critic: null,
    ...f,
    responseTokens,
    generatedTokens,
    origin: f.origin ?? "imported",
  });
}

/** An instruction from its text (default origin "imported"); `normalized` is the dedupe key of the text. */
export function instructionRecord(f: Pick<Instruction, "id" | "text"> & Partial<Omit<Instruction, "id" | "text" | "origin">> & { origin?: RecordOrigin }): Instruction {
  return build(InstructionKind, {
    normalized: normalizeInstruction(f.text),
    seed: null,
    sampling: null,
    fewShotIds: [],
    critic: null,
    ...f,
    origin: f.origin ?? "imported",
  });
}

/**
 * A preference pair from an instruction and two responses (default origin "imported"). With a
 * `negativeKind` it is a synthetic pair (the rejected one a made negative), else `best-of-n`
 * (two real responses); margins and seed are null, as for a pair no critic judged.
 */
export function preferencePairRecord(f: Given<PreferencePair, "id" | "instruction" | "chosen" | "rejected">): PreferencePair {
  const negativeKind = f.negativeKind ?? null;
  return build(PreferencePairKind, {
    instructionId: f.id,
    source: negativeKind === null ? "best-of-n" : "synthetic",
    chosenId: null,
    rejectedId: null,
    chosenMargin: null,
    rejectedMargin: null,
    marginGap: null,
    chosenTokens: words(f.chosen),
    rejectedTokens: words(f.rejected),
    seed: null,
    ...f,
    negativeKind,
    origin: f.origin ?? "imported",
  });
}

/** A held-out test instruction (default origin "hand-made"); `template` names the origin, checks default to none. */
export function testInstructionRecord(f: Given<TestInstruction, "id" | "instruction" | "type">): TestInstruction {
  const origin = f.origin ?? "hand-made";
  return build(TestInstructionKind, { template: origin, checks: [], seed: 0, ...f, origin });
}
