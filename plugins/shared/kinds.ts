// Artifact kinds shared between the data plugins (SPEC §1-5, §8, §9). Each
// field is documented in specs/data.md; change both together. Schemas are
// strict: a record with an unknown field is an error, so a typo in a writer
// fails at write time rather than silently dropping data.
//
// The store adds `_prov` (a link to the stage's provenance in the manifest) to
// every record it writes and strips it on read; no schema here declares it.
import { z } from "zod";
import { defineKind } from "../../core/plugin.ts";
import { CheckSpecs, TestType } from "../evaluator/checks/spec.ts";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex sha256");
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:#-]*$/, "letters, digits and . _ : # - (not first)");
const count = z.number().int().min(0);
const finite = z.number().refine(Number.isFinite, "a finite number");
const fraction = z.number().min(0).max(1);

/**
 * Data a plugin brought in rather than a pipeline stage made (plugins/shared/records.ts):
 * imported from a file or dataset, or written by a person. Absent on the kinds that carry it
 * optionally (sft-example, preference-pair, test-instruction): made by a stage. Fields that
 * describe a generation (seed, sampling, raw, token counts) then hold the builders' neutral
 * values (specs/data.md, "Imported and hand-made records").
 */
export const RECORD_ORIGINS = ["imported", "hand-made"] as const;
export const RecordOrigin = z.enum(RECORD_ORIGINS);
export type RecordOrigin = z.output<typeof RecordOrigin>;

// ---------------------------------------------------------------- shared parts

/** Decoding parameters of one generation call, recorded with what it produced. */
export const SamplingParams = z.strictObject({
  temperature: z.number().min(0),
  topP: z.number().gt(0).max(1),
  /** 0 = off. */
  topK: count,
  /** 1 = off. */
  repetitionPenalty: z.number().gt(0),
  maxTokens: z.number().int().min(1),
});
export type SamplingParams = z.output<typeof SamplingParams>;

/** A single-token A/B critic's decision (SPEC §4). */
export const CriticVerdict = z
  .strictObject({
    /** logp(" A") − logp(" B") at the answer position. */
    margin: finite,
    /** Accepted when margin ≥ threshold. */
    threshold: finite,
    accepted: z.boolean(),
  })
  .refine((v) => v.accepted === v.margin >= v.threshold, { message: "accepted must equal margin >= threshold" });
export type CriticVerdict = z.output<typeof CriticVerdict>;

/** Why a cleaned response ends where it does (specs/prompts.md, "Cleaning"). */
export const STOP_REASONS = ["END", "instruction", "response", "blank-lines", "eos", "runaway"] as const;
export const StopReason = z.enum(STOP_REASONS);
export type StopReason = z.output<typeof StopReason>;

// ---------------------------------------------------------------- model-info

export const SentinelResult = z.strictObject({
  name: z.string().min(1),
  /** fail: a failed probe stops the load; warn: logged and recorded; off: not run. */
  status: z.enum(["fail", "warn", "off"]),
  /** null when the probe was off (not run). */
  passed: z.boolean().nullable(),
  /** What was observed, for humans. */
  detail: z.string(),
});

export const SpecialToken = z.strictObject({
  id: count,
  /** The token's text as stored in the vocabulary (e.g. "<|im_start|>"). */
  text: z.string(),
  /** The vocabulary's token type: "control", "user-defined", "unknown", ... */
  type: z.string().min(1),
});

export const NativeBuild = z.strictObject({
  /** llama.cpp version or commit the addon was built from. */
  llamaCpp: z.string().min(1),
  /** Compute backend compiled in and used: "cpu", "cuda", ... */
  backend: z.string().min(1),
  /** GPU name, or null on CPU. */
  gpu: z.string().nullable(),
});

/** The loader's provenance record (SPEC §2): what model was loaded, and how. */
export const ModelInfo = z.strictObject({
  path: z.string().min(1),
  sha256: sha256Hex,
  architecture: z.string().min(1),
  /** Total parameter count. */
  parameters: count,
  /** GGUF file type / quantization, e.g. "Q4_K_M", "F16". */
  fileType: z.string().min(1),
  vocabSize: z.number().int().min(1),
  /** sha256 over the tokenizer's vocabulary, merges and token types (how: loader's docs). */
  tokenizerSha256: sha256Hex,
  /** A chat template in the file is never applied, only recorded. */
  chatTemplate: z.enum(["present, disabled", "absent"]),
  specialTokens: z.array(SpecialToken),
  /** Special token ids a prompt may contain anyway (the guard's allow-list). */
  allowedSpecialTokens: z.array(count),
  sentinels: z.array(SentinelResult),
  backend: z.string().min(1),
  /** The device used, e.g. "cpu (16 threads)", "cuda:0 NVIDIA H100 80GB HBM3". */
  device: z.string().min(1),
  nativeBuild: NativeBuild,
});
export type ModelInfo = z.output<typeof ModelInfo>;
export const ModelInfoKind = defineKind("model-info", ModelInfo);

// ---------------------------------------------------------------- instruction

/** A training instruction (stage 2's `instructions.jsonl`). */
export const Instruction = z.strictObject({
  id,
  /** The tidied text used in prompts: one line, no delimiters. */
  text: z.string().min(1).regex(/^[^\r\n]*$/, "one line"),
  /** The dedupe key: normalizeInstruction(text) from plugins/prompts/dedupe.ts. */
  normalized: z.string(),
  /** generated: continued by the model; pool: a seed task; user: supplied by a person;
   *  imported / hand-made: brought in by a plugin (plugins/shared/records.ts). */
  origin: z.enum(["generated", "pool", "user", ...RECORD_ORIGINS]),
  /** Seed of the generation call that wrote it (null unless generated). */
  seed: z.number().int().nullable(),
  /** Decoding parameters of that call (null unless generated). */
  sampling: SamplingParams.nullable(),
  /** Seed-task ids shown in the instruction-list prompt, in prompt order. */
  fewShotIds: z.array(z.string()),
  /** The instruction critic's verdict; null when no critic ran. */
  critic: CriticVerdict.nullable(),
});
export type Instruction = z.output<typeof Instruction>;
export const InstructionKind = defineKind("instruction", Instruction);

// ---------------------------------------------------------------- sft-example

/**
 * One generated response to one instruction (stage 3's `sft.jsonl`). Every
 * generation is recorded, runaways and rejected ones included, so that QC sees
 * the true rates; `isTrainable` (plugins/qc/trainable.ts) says which to train on.
 */
export const SftExample = z.strictObject({
  id,
  /** The `instruction` record this answers. */
  instructionId: id,
  instruction: z.string().min(1).regex(/^[^\r\n]*$/, "one line"),
  /** The cleaned response (cleanResponse in plugins/prompts/clean.ts); may be empty. */
  response: z.string(),
  /** The generation as produced, before cleaning (for audit). */
  raw: z.string(),
  stopReason: StopReason,
  /** The generation reached sampling.maxTokens (a token-limit hit), whatever the stop reason. */
  hitMaxTokens: z.boolean(),
  /** Tokens of the cleaned response (tokenized alone, no BOS). */
  responseTokens: count,
  /** Tokens the generator produced (the raw text). */
  generatedTokens: count,
  /** Response-pool example ids in the prompt, in prompt order. */
  fewShotIds: z.array(z.string()),
  sampling: SamplingParams,
  /** Seed of the generation call. */
  seed: z.number().int(),
  /** The pair critic's verdict; null when no critic ran (e.g. empty responses). */
  critic: CriticVerdict.nullable(),
  /** Set only on imported or hand-made records; absent: generated by a stage. */
  origin: RecordOrigin.optional(),
})
  .refine((r) => r.stopReason !== "runaway" || r.hitMaxTokens, { message: "stopReason 'runaway' needs hitMaxTokens: true (no delimiter before max tokens)" })
  .refine((r) => r.stopReason !== "eos" || !r.hitMaxTokens, { message: "stopReason 'eos' needs hitMaxTokens: false (a token-limit hit without a delimiter is 'runaway')" });
export type SftExample = z.output<typeof SftExample>;
export const SftExampleKind = defineKind("sft-example", SftExample);

// ---------------------------------------------------------------- preference-pair

/** Where a pair came from (SPEC §7). */
export const PairSource = z.enum(["best-of-n", "synthetic"]);
/** The five kinds of synthetic negative (SPEC §7's default mix: 30/25/20/15/10 %). */
export const NegativeKind = z.enum(["refusal", "format-violation", "incorrect", "off-topic", "verbose"]);

/**
 * One preference pair (stage 7's `pairs.jsonl`): for the instruction, `chosen` is the better
 * response and `rejected` the worse. Trained on as `trainingText(instruction, response)`
 * sequences with the loss on the response (specs/training.md §15).
 */
export const PreferencePair = z.strictObject({
  id,
  /** The `instruction` record both responses answer. */
  instructionId: id,
  instruction: z.string().min(1).regex(/^[^\r\n]*$/, "one line"),
  chosen: z.string().min(1),
  rejected: z.string().min(1),
  source: PairSource,
  /** Ids of the responses (sft-example ids, or generated ones' ids); null for a deterministic edit. */
  chosenId: z.string().nullable(),
  rejectedId: z.string().nullable(),
  /** synthetic: the negative's kind; best-of-n: null. */
  negativeKind: NegativeKind.nullable(),
  /** The pair critic's margins (log p(A) - log p(B), chosen in the first slot) of each response; null where none was judged. */
  chosenMargin: finite.nullable(),
  rejectedMargin: finite.nullable(),
  /** chosenMargin - rejectedMargin; null unless both were judged. */
  marginGap: finite.nullable(),
  /** Tokens of each response (tokenized alone, no BOS): DPO rewards length, so QC reports the difference. */
  chosenTokens: count,
  rejectedTokens: count,
  /** Seed of the call that made the rejected (or both) responses; null for deterministic edits. */
  seed: z.number().int().nullable(),
  /** Set only on imported or hand-made pairs; absent: made by a stage. */
  origin: RecordOrigin.optional(),
}).refine((r) => r.chosen !== r.rejected, { message: "chosen and rejected must differ" })
  .refine((r) => (r.source === "synthetic") === (r.negativeKind !== null), { message: "negativeKind is set exactly for synthetic pairs" });
export type PreferencePair = z.output<typeof PreferencePair>;
export const PreferencePairKind = defineKind("preference-pair", PreferencePair);

// ---------------------------------------------------------------- qc-report

const Rate = z.strictObject({ count, total: count, /** count / total; null when total is 0. */ rate: fraction.nullable() });
const Distribution = z.strictObject({ count: z.number().int().min(1), min: finite, p10: finite, median: finite, mean: finite, p90: finite, max: finite });

export const QcGateRecord = z.strictObject({
  /** Gate name as reported to ctx.gate (e.g. "runaway-rate"). */
  name: z.string().min(1),
  /** The measured value (a rate in [0, 1], a count or tokens); null when not measurable. */
  value: z.number().nullable(),
  op: z.enum(["<", "<=", ">="]),
  /** null: the gate is disabled (reported, never fails). */
  threshold: z.number().nullable(),
  passed: z.boolean(),
  summary: z.string(),
});

/** The QC stage's result over a set of sft-example records (SPEC §5). */
export const QcReport = z.strictObject({
  records: count,
  /** Every enabled gate passed. */
  passed: z.boolean(),
  gates: z.array(QcGateRecord),
  runaway: Rate,
  tokenLimit: Rate,
  leakage: z.strictObject({ count, total: count, rate: fraction.nullable(), byDelimiter: z.strictObject({ "Instruction:": count, "Response:": count, END: count }) }),
  /** Records whose response holds chat-template markup (findChatMarkup). */
  chatMarkup: Rate,
  emptyResponses: Rate,
  /** Records isTrainable() accepts. */
  trainable: Rate,
  /** Over all records; null when there are none. */
  responseTokens: Distribution.nullable(),
  /** count = accepted, total = records with a critic verdict. */
  criticAcceptance: Rate,
  /** Pair-critic margins of records with a verdict; null when none. */
  margins: Distribution.nullable(),
  duplicates: z.strictObject({
    /** Records whose instruction equals an earlier one after normalisation. */
    instructionExact: count,
    /** Records whose instruction is a near-duplicate (not exact) of an earlier one. */
    instructionNear: count,
    instructionRate: fraction.nullable(),
    /** Records whose normalised response equals an earlier record's (empty ones excluded). */
    responseExact: count,
    responseRate: fraction.nullable(),
  }),
  stopReasons: z.record(StopReason, count),
  /** Heuristic instruction type -> records (plugins/qc/types.ts). */
  typeMix: z.record(z.string(), count),
  histogram: z.strictObject({
    /** Response tokens per bin; bin i is [edges[i], edges[i+1]), the last bin is [edges.at(-1), ∞). */
    edges: z.array(z.number().int().min(0)).min(1),
    counts: z.array(count),
  }),
  /** The effective thresholds (config after defaults). */
  thresholds: z.record(z.string(), z.number().nullable()),
});
export type QcReport = z.output<typeof QcReport>;
export const QcReportKind = defineKind("qc-report", QcReport);

// ---------------------------------------------------------------- test-instruction

/** A held-out test instruction (SPEC §8), made from templates by plugins/testset. */
export const TestInstruction = z.strictObject({
  id,
  type: TestType,
  /** The template it was made from (stable id, e.g. "factual/capital"). */
  template: z.string().min(1),
  /** One line, no delimiters: it goes into `Instruction: {i}\nResponse:`. */
  instruction: z.string().min(1).regex(/^[^\r\n]*$/, "one line"),
  /** Verifiable checks (specs/evaluation.md §3); may be empty where the type allows. */
  checks: CheckSpecs,
  /** The test-set seed it was drawn with. */
  seed: z.number().int(),
  /** Set only on imported or hand-made test instructions; absent: made from a template. */
  origin: RecordOrigin.optional(),
});
export type TestInstruction = z.output<typeof TestInstruction>;
export const TestInstructionKind = defineKind("test-instruction", TestInstruction);

// ---------------------------------------------------------------- prompt-spec

/** One prompt format or pool as used by a run (written by plugins/prompts for provenance). */
export const PromptSpec = z.strictObject({
  /** "response", "instruction-list", "instruction-critic", "pair-critic", "training", or "pool:<name>". */
  name: z.string().min(1),
  /** PROMPT_FORMAT_VERSION of plugins/prompts. */
  version: z.string().min(1),
  /** What it is, in words. */
  description: z.string(),
  /** The format with {placeholders}, or the pool as JSON. */
  template: z.string(),
  /** The format rendered on a fixed example (empty for pools). */
  example: z.string(),
  /** sha256 of template + "\n" + example. */
  sha256: sha256Hex,
});
export type PromptSpec = z.output<typeof PromptSpec>;
export const PromptSpecKind = defineKind("prompt-spec", PromptSpec);
