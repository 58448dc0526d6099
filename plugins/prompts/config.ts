// The prompts stage has nothing to configure: the formats are fixed by design
// (SPEC §3, one place, byte-exact). The schema exists so that a typo'd key in a
// config is reported rather than ignored.
import { z } from "zod";

export const PromptsConfig = z.strictObject({});
export type PromptsConfig = z.output<typeof PromptsConfig>;
