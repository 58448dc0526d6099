// Built-in name `instructions` for the instruction-generation stage; the code lives in
// plugins/generate/ (shared with `responses`). See plugins/generate/README.md.
export { default } from "../generate/instructions.ts";
