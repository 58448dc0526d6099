// The real trained model the tests use where random weights cannot stand in
// (../shared/models/README.md): stories260K, found at ../shared/models/ from the project
// root (or at $SELFTUNE_STORIES260K, which configs/stories260K.yaml reads too). It is not
// part of the project, so a fresh clone lacks it: tests that need it skip, saying why; CI
// has it.
import { describe } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ROOT } from "./helpers.ts";

export const STORIES260K = resolve(process.env.SELFTUNE_STORIES260K ?? join(ROOT, "..", "shared", "models", "stories260K.gguf"));

/** Why tests on it are skipped, or null when the file is there. */
export const STORIES260K_MISSING: string | null = existsSync(STORIES260K)
  ? null
  : `${STORIES260K} is absent (it is not part of the repository; CI has it, see ../shared/models/README.md)`;

/** describe() when the model is there; otherwise a skipped block whose name and a warning say why. */
export function describeStories(name: string, fn: () => void): void {
  if (STORIES260K_MISSING === null) return describe(name, fn);
  console.warn(`skipping "${name}": ${STORIES260K_MISSING}`);
  describe.skip(`${name} (skipped: ${STORIES260K_MISSING})`, fn);
}
