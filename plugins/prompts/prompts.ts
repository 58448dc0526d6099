// The prompt builders: the only place in selftune where prompt text is made
// (SPEC §3). Every format is written down byte for byte in specs/prompts.md and
// pinned by golden tests; change both together and bump PROMPT_FORMAT_VERSION.
import { findChatMarkup, findLeakage } from "./clean.ts";
import { INSTRUCTION_CRITIC_EXAMPLES, PAIR_CRITIC_EXAMPLES, RESPONSE_POOL, SEED_TASKS, type FewShotExample, type SeedTask } from "./pool.ts";
import { deriveSeed, Rng } from "./rng.ts";

/** Bumped whenever any rendered format or pool text changes. */
export const PROMPT_FORMAT_VERSION = "1.0.0";

export class PromptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PromptError";
  }
}

/** Text that goes into an `Instruction: ...` line: one non-empty line, no delimiters. */
export function assertInstruction(text: string, what = "instruction"): void {
  if (text.trim() === "") throw new PromptError(`${what} is empty`);
  if (/[\r\n]/.test(text)) throw new PromptError(`${what} spans several lines (the format needs one line): ${JSON.stringify(text.slice(0, 80))}`);
  if (text !== text.trim()) throw new PromptError(`${what} has leading or trailing whitespace: ${JSON.stringify(text.slice(0, 80))}`);
  const leak = findLeakage(text);
  if (leak.length) throw new PromptError(`${what} contains the delimiter ${leak.map((d) => JSON.stringify(d)).join(", ")}: ${JSON.stringify(text.slice(0, 80))}`);
}

// ---------------------------------------------------------------- responses

/** One few-shot block: `Instruction: {i}\nResponse: {r}\nEND\n\n`. */
export function formatExample(instruction: string, response: string): string {
  return `Instruction: ${instruction}\nResponse: ${response}\nEND\n\n`;
}

/** The open item a response prompt ends with; the model writes after `Response:`. */
export function formatQuery(instruction: string): string {
  return `Instruction: ${instruction}\nResponse:`;
}

/**
 * k examples for one prompt, chosen by (seed, key) alone. Stratified: the first
 * min(k, 5) examples come from distinct categories (so a prompt never shows
 * three math problems), any further ones from the rest of the pool; the order is
 * shuffled too. `key` is usually the instruction id, or a variant key from
 * `variantKey` when prompts should share a few-shot header (KV-cache reuse).
 */
export function selectFewShot(seed: number, key: string, k: number, pool: readonly FewShotExample[] = RESPONSE_POOL): FewShotExample[] {
  if (!Number.isInteger(k) || k < 0) throw new PromptError(`few-shot k must be a non-negative integer, got ${k}`);
  if (k > pool.length) throw new PromptError(`few-shot k = ${k} but the pool has ${pool.length} examples`);
  const rng = new Rng(seed, "response-few-shot", key);
  const categories = [...new Set(pool.map((e) => e.category))];
  const chosen: FewShotExample[] = [];
  for (const cat of rng.shuffle(categories).slice(0, k)) chosen.push(rng.pick(pool.filter((e) => e.category === cat)));
  const rest = pool.filter((e) => !chosen.includes(e));
  chosen.push(...rng.sample(rest, k - chosen.length));
  return rng.shuffle(chosen);
}

/** Map an item id onto one of `variants` few-shot headers. Prompts with the
 *  same header share its KV cache; more variants = more diversity, less reuse. */
export function variantKey(seed: number, id: string, variants: number): string {
  if (!Number.isInteger(variants) || variants < 1) throw new PromptError(`variants must be a positive integer, got ${variants}`);
  return `variant-${deriveSeed(seed, "variant", id) % variants}`;
}

/** The response prompt: the examples, then `Instruction: {i}\nResponse:`. */
export function responsePrompt(instruction: string, examples: readonly FewShotExample[]): string {
  assertInstruction(instruction);
  return examples.map((e) => formatExample(e.instruction, e.response)).join("") + formatQuery(instruction);
}

export interface BuiltPrompt {
  /** The full prompt text. */
  prompt: string;
  /** The part shared with every prompt of the same seed and key (prompt.startsWith(header)). */
  header: string;
  /** Ids of the pool examples shown, in prompt order. */
  fewShotIds: string[];
}

/** Choose the examples and render the response prompt in one call. `pool` (default the
 *  response pool) narrows where they come from, e.g. without an evaluated instruction. */
export function buildResponsePrompt(instruction: string, opts: { seed: number; key: string; k: number; pool?: readonly FewShotExample[] }): BuiltPrompt {
  const examples = selectFewShot(opts.seed, opts.key, opts.k, opts.pool);
  const prompt = responsePrompt(instruction, examples);
  return { prompt, header: examples.map((e) => formatExample(e.instruction, e.response)).join(""), fewShotIds: examples.map((e) => e.id) };
}

// ---------------------------------------------------------------- instructions

export const INSTRUCTION_LIST_PREAMBLE =
  "Below is a list of varied tasks. Each task is one clear, self-contained instruction that a helpful assistant can carry out.\n\n";

/**
 * The instruction-generation prompt: the preamble, the tasks numbered from 1,
 * then the next number and a dot (`9.` after eight tasks, no trailing space):
 * the model continues the list, and `parseInstructionList` reads what it wrote.
 */
export function instructionListPrompt(tasks: readonly string[]): string {
  if (tasks.length === 0) throw new PromptError("the instruction list needs at least one example task");
  tasks.forEach((t, i) => assertInstruction(t, `example task ${i + 1}`));
  return INSTRUCTION_LIST_PREAMBLE + tasks.map((t, i) => `${i + 1}. ${t}\n`).join("") + `${tasks.length + 1}.`;
}

/** k seed tasks in random order, chosen by (seed, key). */
export function selectSeedTasks(seed: number, key: string, k: number, pool: readonly SeedTask[] = SEED_TASKS): SeedTask[] {
  if (!Number.isInteger(k) || k < 1 || k > pool.length) throw new PromptError(`seed-task k must be in [1, ${pool.length}], got ${k}`);
  return new Rng(seed, "instruction-seed-tasks", key).sample(pool, k);
}

export function buildInstructionListPrompt(opts: { seed: number; key: string; k: number }): BuiltPrompt & { nextNumber: number } {
  const tasks = selectSeedTasks(opts.seed, opts.key, opts.k);
  const prompt = instructionListPrompt(tasks.map((t) => t.text));
  return { prompt, header: prompt, fewShotIds: tasks.map((t) => t.id), nextNumber: tasks.length + 1 };
}

// ---------------------------------------------------------------- critics

/**
 * The two answers a critic compares, as they follow `Answer:`: accept means yes, reject
 * means no. Each is a space and a short word; the rubric and the labelled examples name them.
 */
export interface CriticLabels {
  readonly accept: string;
  readonly reject: string;
}

/** The default pair (SPEC §4): what every critic prompt uses when " A" and " B" are single tokens. */
export const CRITIC_CHOICES: CriticLabels = { accept: " A", reject: " B" };

/**
 * The label pairs the critic tries, in this order, for one whose labels are each a single
 * token after `Answer:` (small vocabularies lack " A"; stories260K has " a" and " b"). The
 * first is the default; when none fits, the critic scores the default pair's multi-token
 * labels by their summed log-probs (plugins/critic/critic.ts). Fixed: the choice depends on
 * the tokenizer alone, and changing this list changes which prompts such models get.
 */
export const CRITIC_LABEL_PAIRS: readonly CriticLabels[] = [
  CRITIC_CHOICES,
  { accept: " a", reject: " b" },
  { accept: " Y", reject: " N" },
  { accept: " y", reject: " n" },
  { accept: " 1", reject: " 2" },
];

/** A label pair a prompt can name: a space then one word each, different. */
export function assertCriticLabels(labels: CriticLabels): void {
  for (const [what, l] of [["accept", labels.accept], ["reject", labels.reject]] as const) {
    if (!/^ [^\s]{1,16}$/.test(l)) throw new PromptError(`critic label ${what} must be a space and one word of at most 16 characters, got ${JSON.stringify(l)}`);
  }
  if (labels.accept === labels.reject) throw new PromptError(`critic labels accept and reject are both ${JSON.stringify(labels.accept)}`);
}

function criticRubric(task: string, yes: string, no: string, labels: CriticLabels): string {
  return `${task}\n${labels.accept.slice(1)} means yes: ${yes}\n${labels.reject.slice(1)} means no: ${no}\n\n`;
}

const answerLabel = (answer: "A" | "B", labels: CriticLabels) => (answer === "A" ? labels.accept : labels.reject);

/** The instruction critic's rubric and labelled examples for a label pair (identical for every item: batches share its KV cache). */
export function instructionCriticHeader(labels: CriticLabels = CRITIC_CHOICES): string {
  assertCriticLabels(labels);
  return (
    criticRubric(
      "Decide whether each instruction is clear, self-contained and answerable.",
      "someone could carry it out right away without asking anything back.",
      "it is vague, incomplete, refers to something that is not given, or is not a task.",
      labels,
    ) + INSTRUCTION_CRITIC_EXAMPLES.map((e) => `Instruction: ${e.instruction}\nAnswer:${answerLabel(e.answer, labels)}\n\n`).join("")
  );
}

/** The pair critic's rubric and labelled examples for a label pair. */
export function pairCriticHeader(labels: CriticLabels = CRITIC_CHOICES): string {
  assertCriticLabels(labels);
  return (
    criticRubric(
      "Decide whether each response fulfils its instruction.",
      "it does what the instruction asks, correctly and on topic.",
      "it is wrong, off topic, incomplete, repeats the instruction, or does something else.",
      labels,
    ) + PAIR_CRITIC_EXAMPLES.map((e) => `Instruction: ${e.instruction}\nResponse: ${e.response}\nAnswer:${answerLabel(e.answer, labels)}\n\n`).join("")
  );
}

/** The headers with the default labels " A" / " B". */
export const INSTRUCTION_CRITIC_HEADER = instructionCriticHeader();
export const PAIR_CRITIC_HEADER = pairCriticHeader();

/** Ends in `Answer:`; the critic reads the log-probs of the two labels that follow (default " A" and " B"). */
export function instructionCriticPrompt(instruction: string, labels: CriticLabels = CRITIC_CHOICES): string {
  assertInstruction(instruction);
  const header = labels === CRITIC_CHOICES ? INSTRUCTION_CRITIC_HEADER : instructionCriticHeader(labels);
  return `${header}Instruction: ${instruction}\nAnswer:`;
}

/** Ends in `Answer:`. The response may span lines; it should be a cleaned one
 *  (a leftover delimiter would make the item look like two examples). */
export function pairCriticPrompt(instruction: string, response: string, labels: CriticLabels = CRITIC_CHOICES): string {
  assertInstruction(instruction);
  const header = labels === CRITIC_CHOICES ? PAIR_CRITIC_HEADER : pairCriticHeader(labels);
  return `${header}Instruction: ${instruction}\nResponse: ${response}\nAnswer:`;
}

/** The verdict record of SPEC §4: margin = logp(accept label) − logp(reject label) (" A", " B" by default), accepted iff margin ≥ threshold. */
export function criticVerdict(logpA: number, logpB: number, threshold: number): { margin: number; accepted: boolean; threshold: number } {
  const margin = logpA - logpB;
  if (!Number.isFinite(margin)) throw new PromptError(`critic margin is not finite (logp A ${logpA}, logp B ${logpB})`);
  return { margin, accepted: margin >= threshold, threshold };
}

// ---------------------------------------------------------------- training text

export interface Span {
  start: number;
  end: number;
}

export interface TrainingText {
  /** `Instruction: {i}\nResponse: {r}\nEND` — no trailing newline, no BOS/EOS. */
  text: string;
  /** The loss region ` {r}\nEND` in UTF-16 code units (JavaScript string indices). */
  loss: Span;
  /** The same region in UTF-8 bytes, which is what tokenizer offsets count. */
  lossBytes: Span;
}

/**
 * The SFT text (SPEC §6) and the character span the loss covers: everything
 * after `Response:`, i.e. the space, the response, the newline and `END`. The
 * mask is made from these offsets, never by searching for the template in token
 * space. Refuses text that would corrupt the format; `allowDelimiters` admits
 * delimiters in the response (only for the rejected side of a preference pair).
 */
export function trainingText(instruction: string, response: string, opts: { allowDelimiters?: boolean } = {}): TrainingText {
  assertInstruction(instruction);
  if (response.trim() === "") throw new PromptError("training response is empty");
  if (response !== response.trim()) throw new PromptError(`training response has leading or trailing whitespace: ${JSON.stringify(response.slice(0, 80))}`);
  // A preference pair's rejected side may run on into a new turn on purpose (a
  // format-violation negative): DPO must see the delimiter to learn not to write it.
  const leak = opts.allowDelimiters ? [] : findLeakage(response);
  if (leak.length) throw new PromptError(`training response contains the delimiter ${leak.map((d) => JSON.stringify(d)).join(", ")}`);
  // The last line of the contamination guard: chat markup never becomes training text.
  const markup = findChatMarkup(instruction) ?? findChatMarkup(response);
  if (markup !== null) throw new PromptError(`training text contains chat markup ${JSON.stringify(markup)}`);
  const head = `Instruction: ${instruction}\nResponse:`;
  const text = `${head} ${response}\nEND`;
  const bytes = (s: string) => Buffer.byteLength(s, "utf8");
  return { text, loss: { start: head.length, end: text.length }, lossBytes: { start: bytes(head), end: bytes(text) } };
}
