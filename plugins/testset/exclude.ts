// Reading the training texts named in `exclude:`. Each file is validated as
// the artifact kind its first record looks like, so a bad line is reported as
// file:line like any other input.
import { readFileSync } from "node:fs";
import { ArtifactReader, sha256File } from "../../core/artifacts.ts";
import type { ArtifactKind } from "../../core/plugin.ts";
import { InstructionKind, SftExampleKind, TestInstructionKind } from "../shared/kinds.ts";
import type { TextRef } from "./disjoint.ts";

export interface ExcludeFile {
  path: string;
  sha256: string;
  kind: string;
  texts: number;
}

function sniff(path: string): ArtifactKind<unknown> {
  const first = readFileSync(path, "utf8").split("\n").find((l) => l.trim() !== "");
  if (first === undefined) return InstructionKind as ArtifactKind<unknown>; // empty file: nothing to exclude
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(first) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}:1: not valid JSON: ${(e as Error).message}`);
  }
  if ("instructionId" in rec) return SftExampleKind as ArtifactKind<unknown>;
  if ("checks" in rec) return TestInstructionKind as ArtifactKind<unknown>;
  if ("normalized" in rec) return InstructionKind as ArtifactKind<unknown>;
  throw new Error(`${path}:1: not an instruction, sft-example or test-instruction record (fields: ${Object.keys(rec).join(", ")})`);
}

/** The instruction texts of every file, with ids `<file>#<record id>`. */
export async function readExcludeFiles(paths: readonly string[]): Promise<{ refs: TextRef[]; files: ExcludeFile[] }> {
  const refs: TextRef[] = [];
  const files: ExcludeFile[] = [];
  for (const path of paths) {
    const kind = sniff(path);
    const before = refs.length;
    for await (const raw of new ArtifactReader(path, kind)) {
      const r = raw as { id: string; text?: string; instruction?: string };
      refs.push({ id: `${path}#${r.id}`, text: (r.text ?? r.instruction)! });
    }
    files.push({ path, sha256: await sha256File(path), kind: kind.name, texts: refs.length - before });
  }
  return { refs, files };
}
