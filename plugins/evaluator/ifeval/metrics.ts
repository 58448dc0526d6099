// IFEval's four numbers (Zhou et al. 2023, §3; evaluation_lib.print_report):
// prompt-level accuracy (every instruction of the prompt followed) and
// instruction-level accuracy (instructions followed / instructions), each strict
// and loose; and the instruction-level accuracy per instruction id and per
// category (the id's part before ':'), as the reference prints them.

export interface PromptVerdict {
  instruction_id_list: string[];
  strict: boolean[];
  loose: boolean[];
}

export interface Accuracy {
  strict: number | null;
  loose: number | null;
}

export interface IdRow {
  id: string;
  n: number;
  strict: number;
  loose: number;
}

export interface IfevalMetrics {
  prompts: number;
  instructions: number;
  promptLevel: Accuracy;
  instructionLevel: Accuracy;
  /** Per instruction id, sorted by id. */
  byInstruction: IdRow[];
  /** Per category (keywords, length_constraints, ...), sorted. */
  byCategory: IdRow[];
}

function rows(verdicts: readonly PromptVerdict[], keyOf: (id: string) => string): IdRow[] {
  const m = new Map<string, { n: number; s: number; l: number }>();
  for (const v of verdicts)
    v.instruction_id_list.forEach((id, k) => {
      const e = m.get(keyOf(id)) ?? { n: 0, s: 0, l: 0 };
      e.n++;
      if (v.strict[k]) e.s++;
      if (v.loose[k]) e.l++;
      m.set(keyOf(id), e);
    });
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, e]) => ({ id, n: e.n, strict: e.s / e.n, loose: e.l / e.n }));
}

export function ifevalMetrics(verdicts: readonly PromptVerdict[]): IfevalMetrics {
  const prompts = verdicts.length;
  const instructions = verdicts.reduce((s, v) => s + v.instruction_id_list.length, 0);
  const share = (k: number, n: number) => (n === 0 ? null : k / n);
  const level = (mode: "strict" | "loose") => ({
    prompt: share(verdicts.filter((v) => v[mode].every(Boolean)).length, prompts),
    instruction: share(verdicts.reduce((s, v) => s + v[mode].filter(Boolean).length, 0), instructions),
  });
  const s = level("strict");
  const l = level("loose");
  return {
    prompts,
    instructions,
    promptLevel: { strict: s.prompt, loose: l.prompt },
    instructionLevel: { strict: s.instruction, loose: l.instruction },
    byInstruction: rows(verdicts, (id) => id),
    byCategory: rows(verdicts, (id) => id.split(":")[0]!),
  };
}

const pct = (x: number | null) => (x === null ? "    -" : `${(100 * x).toFixed(1).padStart(5)}%`);

/** The four metrics and the per-id table, readable. */
export function metricsText(m: IfevalMetrics, title = "IFEval"): string {
  const lines = [
    `${title}: ${m.prompts} prompts, ${m.instructions} instructions`,
    `                       strict   loose`,
    `  prompt-level        ${pct(m.promptLevel.strict)}  ${pct(m.promptLevel.loose)}`,
    `  instruction-level   ${pct(m.instructionLevel.strict)}  ${pct(m.instructionLevel.loose)}`,
    "",
    `  ${"instruction id".padEnd(45)} ${"n".padStart(5)}   strict   loose`,
    ...m.byInstruction.map((r) => `  ${r.id.padEnd(45)} ${String(r.n).padStart(5)}   ${pct(r.strict)}  ${pct(r.loose)}`),
  ];
  return lines.join("\n") + "\n";
}

export interface IfevalVariantMetrics {
  variant: string;
  metrics: IfevalMetrics;
}

/** What the metrics need of one evaluated item: its checks, IFEval's carrying their instruction id. */
interface CheckedItem {
  checks: readonly { instruction?: string; strict: boolean; loose: boolean }[];
}

/**
 * IFEval's metrics of each variant over the items that carry IFEval instructions, from the
 * recorded per-check verdicts; `{}` when there are none, so results without IFEval items
 * keep their shape.
 */
export function ifevalResults(variants: readonly { variant: string; responses: readonly CheckedItem[] }[]): { ifeval?: IfevalVariantMetrics[] } {
  const out = variants.map((v) => {
    const verdicts = v.responses.flatMap((r): PromptVerdict[] => {
      const own = r.checks.filter((c) => c.instruction !== undefined);
      return own.length ? [{ instruction_id_list: own.map((c) => c.instruction!), strict: own.map((c) => c.strict), loose: own.map((c) => c.loose) }] : [];
    });
    return { variant: v.variant, verdicts };
  });
  if (out.every((v) => v.verdicts.length === 0)) return {};
  return { ifeval: out.map((v) => ({ variant: v.variant, metrics: ifevalMetrics(v.verdicts) })) };
}
