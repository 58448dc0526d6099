// Ollama's Modelfile for the merged GGUF: FROM the file beside it, TEMPLATE in the training
// format (chat-template.ts), PARAMETER stop for each delimiter, provenance as comments.
//
// Ollama's parser (parser/parser.go) knows no escapes: a value in "..." or """...""" is
// taken literally, line breaks included, so the stop string "\nEND" is written as a quote,
// a real line break, END and a quote.
import { CHAT_STOP_STRINGS, OLLAMA_TEMPLATE } from "./chat-template.ts";
import type { ExportProvenance } from "./source.ts";

function quoted(value: string): string {
  if (value.includes('"""')) throw new Error(`cannot quote ${JSON.stringify(value)} for a Modelfile`);
  return value.includes('"') ? `"""${value}"""` : `"${value}"`;
}

export function modelfile(prov: ExportProvenance, opts: { model?: string } = {}): string {
  const lines = [
    `# Modelfile written by selftune export: the ${prov.stage} stage of run ${prov.runId} merged into its base.`,
    "# The template is the training format (Instruction: ... / Response: ... / END); the stops end a reply at its delimiters.",
    `# run_id ${prov.runId}`,
    `# stage ${prov.stage} (${prov.plugin}@${prov.pluginVersion}), config sha256 ${prov.configHash}`,
    `# git ${prov.gitCommit ?? "none"}${prov.gitDirty ? " (dirty)" : ""}`,
    `# base model sha256 ${prov.baseModel.sha256} (${prov.baseModel.architecture})`,
    `# adapter sha256 ${prov.adapterSha256} (rank ${prov.lora.rank}, alpha ${prov.lora.alpha})`,
    `# training data sha256 ${prov.data.textSha256 ?? "unknown"}`,
    `# exported ${prov.exportedAt}; provenance.json beside this file has the rest`,
    `FROM ./${opts.model ?? "model.gguf"}`,
    `TEMPLATE """${OLLAMA_TEMPLATE}"""`,
    ...CHAT_STOP_STRINGS.map((s) => `PARAMETER stop ${quoted(s)}`),
    "",
  ];
  return lines.join("\n");
}
