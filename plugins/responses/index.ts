// Built-in name `responses` for the response-generation stage; the code lives in
// plugins/generate/ (shared with `instructions`). See plugins/generate/README.md.
export { default } from "../generate/responses.ts";
