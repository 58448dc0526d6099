// Reading IFEval's two file formats: the input data (one JSON a line: key, prompt,
// instruction_id_list, kwargs) and a model's responses (one JSON a line: prompt,
// response). Users bring both; every problem is reported as file:line.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseInstruction, type Instruction } from "./instructions.ts";

export interface IfevalItem {
  key: number | string;
  prompt: string;
  instructions: Instruction[];
  /** 1-based line in the input file, for messages. */
  line: number;
}

const InputLine = z.looseObject({
  key: z.union([z.number().int(), z.string().min(1)]),
  prompt: z.string().min(1),
  instruction_id_list: z.array(z.string()).min(1),
  kwargs: z.array(z.union([z.record(z.string(), z.unknown()), z.null()])),
});

const ResponseLine = z.looseObject({ prompt: z.string(), response: z.string() });

export class IfevalInputError extends Error {}

function* jsonLines(path: string): Generator<{ line: number; value: unknown }> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new IfevalInputError(`${path}: cannot read: ${(e as Error).message}`);
  }
  const lines = text.split("\n");
  for (const [i, raw] of lines.entries()) {
    if (raw.trim() === "") continue;
    try {
      yield { line: i + 1, value: JSON.parse(raw) };
    } catch (e) {
      throw new IfevalInputError(`${path}:${i + 1}: not valid JSON: ${(e as Error).message}`);
    }
  }
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "(line)"}: ${i.message}`).join("; ");
}

/** IFEval input data: every line validated, every instruction id and its kwargs checked. */
export function readIfevalInput(path: string): IfevalItem[] {
  const items: IfevalItem[] = [];
  const keys = new Map<string, number>();
  for (const { line, value } of jsonLines(path)) {
    const at = `${path}:${line}`;
    const r = InputLine.safeParse(value);
    if (!r.success) throw new IfevalInputError(`${at}: not an IFEval input record: ${issues(r.error)}`);
    const { key, prompt, instruction_id_list: ids, kwargs } = r.data;
    if (kwargs.length !== ids.length) throw new IfevalInputError(`${at}: ${ids.length} instruction ids but ${kwargs.length} kwargs entries`);
    const seen = keys.get(String(key));
    if (seen !== undefined) throw new IfevalInputError(`${at}: key ${key} already used at line ${seen}`);
    keys.set(String(key), line);
    const instructions = ids.map((id, k) => {
      const p = parseInstruction(id, kwargs[k]);
      if (!p.ok) throw new IfevalInputError(`${at}: instruction ${k + 1}: ${p.message}`);
      return p.value;
    });
    items.push({ key, prompt, instructions, line });
  }
  if (items.length === 0) throw new IfevalInputError(`${path}: no records`);
  return items;
}

/** A model's responses by prompt (the reference's prompt_to_response: a repeated prompt's last line wins). */
export function readIfevalResponses(path: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const { line, value } of jsonLines(path)) {
    const r = ResponseLine.safeParse(value);
    if (!r.success) throw new IfevalInputError(`${path}:${line}: not a response record ({"prompt", "response"}): ${issues(r.error)}`);
    out.set(r.data.prompt, r.data.response);
  }
  return out;
}
