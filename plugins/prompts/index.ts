// The prompts stage: no inputs; writes the prompt formats and pools this run
// uses as `prompt-spec` records (plus prompts.txt, the formats rendered, for
// reading). The builders themselves are a plain module API (prompts.ts,
// clean.ts, dedupe.ts, pool.ts) that the generating stages import.
import { definePlugin } from "../../core/plugin.ts";
import { PromptSpecKind } from "../shared/kinds.ts";
import { PromptsConfig } from "./config.ts";
import { PROMPT_FORMAT_VERSION } from "./prompts.ts";
import { promptFormatsSha256, promptSpecs } from "./spec.ts";

export default definePlugin({
  name: "prompts",
  version: PROMPT_FORMAT_VERSION,
  description: "record the prompt formats and few-shot pools (SPEC §3) for provenance",
  config: PromptsConfig,
  consumes: {},
  produces: { formats: PromptSpecKind },
  async run(ctx) {
    const specs = promptSpecs();
    for (const s of specs) ctx.outputs.formats.write(s);
    ctx.outputs.formats.commit();
    const sha = promptFormatsSha256();
    ctx.provenance.extra.promptFormatsSha256 = sha;
    const readable = specs
      .filter((s) => s.example !== "")
      .map((s) => `=== ${s.name} (sha256 ${s.sha256.slice(0, 12)}) ===\n${s.example}\n`)
      .join("\n");
    await ctx.writeFile("prompts.txt", `prompt formats ${PROMPT_FORMAT_VERSION}, sha256 ${sha}\n\n${readable}`);
    ctx.log.info(`prompts: ${specs.length} formats and pools, sha256 ${sha.slice(0, 12)}`);
  },
});
