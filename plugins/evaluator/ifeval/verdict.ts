// One instruction's strict and loose verdict, as IFEval's evaluation_lib defines
// them: strict judges the response as it is; loose passes when any of eight
// versions passes (the response, without its first line, without its last, without
// both, and each of those with every `*` removed). A response that is only white
// space follows nothing. The same rule for both semantics, so they differ only in
// how one instruction is judged.
import { strip } from "./python.ts";

/** The reference's loose candidates, in its order. */
export function looseResponses(response: string): string[] {
  const lines = response.split("\n");
  const first = strip(lines.slice(1).join("\n"));
  const last = strip(lines.slice(0, -1).join("\n"));
  const both = strip(lines.slice(1, -1).join("\n"));
  const noStars = (s: string) => s.replaceAll("*", "");
  return [response, noStars(response), first, last, both, noStars(first), noStars(last), noStars(both)];
}

export type Follows = (response: string) => boolean;

export function strictVerdict(response: string, follows: Follows): boolean {
  return strip(response).length > 0 && follows(response);
}

export function looseVerdict(response: string, follows: Follows): boolean {
  return looseResponses(response).some((r) => strictVerdict(r, follows));
}
