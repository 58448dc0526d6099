// A rough, rule-based instruction type, used only to report the mix of a data
// set (SPEC §5 "type mix"). Rules are tried in order; the first match wins.
// It is a reporting aid, not a filter: nothing is dropped by type.

export const INSTRUCTION_TYPES = ["list", "math", "creative", "rewrite", "explanation", "question", "other"] as const;
export type InstructionType = (typeof INSTRUCTION_TYPES)[number];

const COUNT_WORD = "(?:\\d+|two|three|four|five|six|seven|eight|nine|ten|a few|several|some)";
const RULES: [InstructionType, RegExp][] = [
  ["list", new RegExp(`^(?:list|enumerate)\\b|^(?:name|give(?: me)?|suggest|provide|write down)\\s+${COUNT_WORD}\\b`)],
  ["math", /\d\s*[-+*/×÷^=]\s*\d|\b(?:calculate|compute|solve|percent|divided by|multiplied by|equation|square root|sum of|product of)\b|%/],
  ["creative", /^(?:write|compose|create|invent|imagine|draft|come up with)\b|\b(?:poem|haiku|story|limerick|slogan|song|riddle|joke)\b/],
  ["rewrite", /^(?:rewrite|translate|correct|summari[sz]e|paraphrase|convert|sort|classify|edit|shorten|simplify|complete|finish|fill in|continue)\b/],
  ["explanation", /^(?:explain|describe|why\b|how (?:does|do|is|are|can|did)\b|what is the difference)/],
  ["question", /\?$|^(?:what|who|when|where|which|is|are|does|do|can|how)\b/],
];

export function instructionType(instruction: string): InstructionType {
  const text = instruction.trim().toLowerCase();
  for (const [type, re] of RULES) if (re.test(text)) return type;
  return "other";
}
