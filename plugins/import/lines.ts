// One line of a user's JSONL -> a record of the shared kind, or an error naming the field.
// The line schemas are the minimum a person writes; the record builders (plugins/shared/
// records.ts) fill the rest with values that describe no generation and mark it imported.
import { z } from "zod";
import { preferencePairRecord, sftExampleRecord } from "../shared/records.ts";
import type { PreferencePair, SftExample } from "../shared/kinds.ts";

// Surrounding whitespace is dropped (the training text puts exactly one space after
// `Response:`); what is left must be non-empty, and the instruction one line.
const text = z.string({ error: (i) => (i.input === undefined ? "required" : "expected a string") }).trim().min(1, "empty");
const oneLine = text.regex(/^[^\r\n]*$/, "must be one line (the training format puts it on the `Instruction:` line)");
const id = z.string({ error: "expected a string" }).regex(/^[A-Za-z0-9][A-Za-z0-9._:#-]*$/, "letters, digits and . _ : # - only, starting with a letter or digit");

const sftFields = { id: id.optional(), instruction: oneLine, response: text };
const pairFields = { id: id.optional(), prompt: oneLine, chosen: text, rejected: text };
const differ = (p: { chosen: string; rejected: string }) => p.chosen !== p.rejected;

export const LINE_SCHEMAS = {
  sft: { error: z.strictObject(sftFields), ignore: z.object(sftFields) },
  pairs: {
    error: z.strictObject(pairFields).refine(differ, { path: ["rejected"], message: "the same text as chosen" }),
    ignore: z.object(pairFields).refine(differ, { path: ["rejected"], message: "the same text as chosen" }),
  },
} as const;

export class LineError extends Error {}

function explain(e: z.ZodError): string {
  return e.issues
    .map((i) => {
      if (i.code === "unrecognized_keys") return `unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")} (extraFields: ignore drops them)`;
      const field = i.path.map(String).join(".");
      return field ? `field '${field}': ${i.message}` : i.message;
    })
    .join("; ");
}

/** Parse and check one non-blank line; `fallbackId` is used where the line gives no id. Throws LineError. */
export function recordOfLine(kind: "sft", line: string, fallbackId: string, extra: "error" | "ignore"): SftExample;
export function recordOfLine(kind: "pairs", line: string, fallbackId: string, extra: "error" | "ignore"): PreferencePair;
export function recordOfLine(kind: "sft" | "pairs", line: string, fallbackId: string, extra: "error" | "ignore"): SftExample | PreferencePair {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (e) {
    throw new LineError(`not JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new LineError("expected a JSON object");
  const parsed = LINE_SCHEMAS[kind][extra].safeParse(json);
  if (!parsed.success) throw new LineError(explain(parsed.error));
  const f = parsed.data as Record<string, string>;
  try {
    if (kind === "sft") return sftExampleRecord({ id: f.id ?? fallbackId, instruction: f.instruction!, response: f.response! });
    return preferencePairRecord({ id: f.id ?? fallbackId, instruction: f.prompt!, chosen: f.chosen!, rejected: f.rejected! });
  } catch (e) {
    // The line was checked above; what is left is the kind's own rule (e.g. chat markup is allowed, but nothing else).
    throw new LineError((e as Error).message);
  }
}
