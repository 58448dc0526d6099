// The import stage's config: one JSONL file of the user's and what its lines are. Strict, so a
// typo is an error; `qc` (the pairs stage's QC gate) only where it applies.
import { z } from "zod";
import { PairsQcConfig } from "../pairs/qc.ts";

export const ImportConfig = z
  .strictObject({
    /** The JSONL file, relative to the run config's folder. Its sha256 is part of the stage's identity: an edited file is imported again. */
    file: z.string().min(1),
    /** sft: lines {instruction, response} -> sft-example records (for qc, then sft); pairs: lines {prompt, chosen, rejected} -> preference-pair records (for dpo). Either may give an `id`. */
    kind: z.enum(["sft", "pairs"]),
    /** A field a line's kind does not know: an error naming it (default), or dropped. */
    extraFields: z.enum(["error", "ignore"]).default("error"),
    /** kind pairs: the pairs stage's QC gate (plugins/pairs/qc.ts, specs/prompts.md §10.1) over the imported pairs. Defaults as there. */
    qc: PairsQcConfig.optional(),
    /** Lines per commit (an interrupted import resumes after the last one). */
    commitEvery: z.number().int().min(1).default(1000),
  })
  .refine((c) => c.kind === "pairs" || c.qc === undefined, { path: ["qc"], message: "only for kind: pairs (imported SFT data goes through the qc stage)" });
export type ImportConfig = z.output<typeof ImportConfig>;
