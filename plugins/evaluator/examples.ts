// Example instructions for the report: per test type, the first few items in
// test-set order (deterministic, the same for every run on the same test set),
// each with every variant's response and the checks that response failed. The
// responses files hold everything; this only picks and truncates, so the
// report stays readable at any response length.
import type { Metric } from "./analysis.ts";
import type { ResponseRecord } from "./outputs.ts";

export const EXAMPLES_PER_TYPE = 3;
/** Characters (code points) of a response shown before it is cut with a visible mark. */
export const EXAMPLE_MAX_CHARS = 600;

export interface ExampleResponse {
  variant: string;
  /** The response cut to `maxChars` code points (the whole of it when shorter). */
  text: string;
  /** Code points left out; 0 when the response is shown whole. */
  omitted: number;
  success: { strict: boolean; loose: boolean };
  /** Checks failed under the analysis's metric, in the record's order. */
  failed: { type: string; instruction?: string; detail: string }[];
}

export interface Example {
  id: string;
  instruction: string;
  instructionOmitted: number;
  responses: ExampleResponse[];
}

export interface TypeExamples {
  type: string;
  examples: Example[];
}

/** Cut by code points so a surrogate pair (emoji, rare CJK) is never split. */
export function truncate(s: string, maxChars: number): { text: string; omitted: number } {
  const cps = Array.from(s);
  return cps.length <= maxChars ? { text: s, omitted: 0 } : { text: cps.slice(0, maxChars).join(""), omitted: cps.length - maxChars };
}

export function pickExamples(variants: { name: string; responses: ResponseRecord[] }[], metric: Metric, perType = EXAMPLES_PER_TYPE, maxChars = EXAMPLE_MAX_CHARS): TypeExamples[] {
  const first = variants[0]?.responses ?? [];
  const byVariant = variants.map((v) => ({ name: v.name, byId: new Map(v.responses.map((r) => [r.id, r])) }));
  const types = [...new Set(first.map((r) => r.type))];
  return types.map((type) => ({
    type,
    examples: first
      .filter((r) => r.type === type)
      .slice(0, perType)
      .map((item): Example => {
        const instr = truncate(item.instruction, maxChars);
        return {
          id: item.id,
          instruction: instr.text,
          instructionOmitted: instr.omitted,
          responses: byVariant.flatMap(({ name, byId }) => {
            const r = byId.get(item.id);
            if (!r) return [];
            const t = truncate(r.response, maxChars);
            return [{ variant: name, text: t.text, omitted: t.omitted, success: r.success, failed: r.checks.filter((c) => !c[metric]).map((c) => ({ type: c.type, ...(c.instruction ? { instruction: c.instruction } : {}), detail: c.detail })) }];
          }),
        };
      }),
  }));
}
