// The fixed example pools behind every few-shot prompt (SPEC §3).
//
// These texts are data, not code: changing one changes every prompt built from
// it, so each pool is hashed into the `prompt-spec` records and into the
// provenance of the stages that use it. Ids are stable; never reuse an id for
// a different text.
//
// Response examples are deliberately short (the pilot gate wants a median under
// 40 response tokens, and the model copies the length it is shown), contain no
// blank lines (a blank line ends a response, see clean.ts), and never contain
// the delimiters `Instruction:`, `Response:` or `END`.

export const FEW_SHOT_CATEGORIES = ["math", "completion", "facts", "creative", "explanation"] as const;
export type FewShotCategory = (typeof FEW_SHOT_CATEGORIES)[number];

export interface FewShotExample {
  id: string;
  category: FewShotCategory;
  instruction: string;
  response: string;
}

export const RESPONSE_POOL: readonly FewShotExample[] = [
  // math: show the arithmetic in one line, then the result
  { id: "math-01", category: "math", instruction: "What is 15% of 80?", response: "15% of 80 is 0.15 × 80 = 12." },
  { id: "math-02", category: "math", instruction: "A train travels at 60 miles per hour for 2.5 hours. How far does it go?", response: "It goes 60 × 2.5 = 150 miles." },
  { id: "math-03", category: "math", instruction: "Solve for x: 3x + 7 = 22.", response: "Subtract 7 from both sides to get 3x = 15, so x = 5." },
  { id: "math-04", category: "math", instruction: "A rectangle is 8 cm long and 3 cm wide. What is its area?", response: "The area is 8 × 3 = 24 square centimeters." },
  { id: "math-05", category: "math", instruction: "Is 91 a prime number?", response: "No. 91 = 7 × 13, so it is not prime." },
  // completion: finish, fill in, transform a given piece of text
  { id: "completion-01", category: "completion", instruction: "Complete the proverb: The early bird...", response: "The early bird catches the worm." },
  { id: "completion-02", category: "completion", instruction: "Finish the sentence: When the power went out, we...", response: "When the power went out, we lit candles and played board games until the lights came back on." },
  { id: "completion-03", category: "completion", instruction: "Fill in the blank: Water freezes at ___ degrees Celsius.", response: "Water freezes at 0 degrees Celsius." },
  { id: "completion-04", category: "completion", instruction: "Continue the sequence: 2, 4, 8, 16, ...", response: "32, 64, 128. Each number is double the one before it." },
  { id: "completion-05", category: "completion", instruction: "Rewrite this sentence in the past tense: She walks to the market and buys bread.", response: "She walked to the market and bought bread." },
  // facts: one direct answer, optionally one supporting detail; one list-shaped answer
  { id: "facts-01", category: "facts", instruction: "Who painted the Mona Lisa?", response: "Leonardo da Vinci painted the Mona Lisa in the early 1500s." },
  { id: "facts-02", category: "facts", instruction: "What gas do plants absorb from the air?", response: "Plants absorb carbon dioxide, which they use to make sugar during photosynthesis." },
  { id: "facts-03", category: "facts", instruction: "How many bones are in the adult human body?", response: "An adult human body has 206 bones." },
  { id: "facts-04", category: "facts", instruction: "List the three primary colors of paint.", response: "1. Red\n2. Yellow\n3. Blue" },
  { id: "facts-05", category: "facts", instruction: "In which year did people first walk on the Moon?", response: "In 1969, when Neil Armstrong and Buzz Aldrin landed with Apollo 11." },
  // creative: short pieces of the requested form
  { id: "creative-01", category: "creative", instruction: "Write a haiku about autumn.", response: "Red leaves drift and fall\ncool wind hums through empty trees\nthe year breathes out slow" },
  { id: "creative-02", category: "creative", instruction: "Suggest a name for a coffee shop run by cats.", response: "The Purr Brew." },
  { id: "creative-03", category: "creative", instruction: "Write a one-sentence story about a lost key.", response: "After searching the house for an hour, Maya found her key in the front door, exactly where she had left it." },
  { id: "creative-04", category: "creative", instruction: "Give me a slogan for a bicycle shop.", response: "Pedal further, smile wider." },
  { id: "creative-05", category: "creative", instruction: "Describe the ocean in three words.", response: "Vast, restless, blue." },
  // explanation: the why or how in one or two plain sentences
  { id: "explanation-01", category: "explanation", instruction: "Why is the sky blue?", response: "Air molecules scatter blue sunlight much more than red light, so blue light reaches our eyes from every part of the sky." },
  { id: "explanation-02", category: "explanation", instruction: "Explain what a noun is.", response: "A noun is a word that names a person, place, thing or idea, such as \"teacher\", \"city\" or \"freedom\"." },
  { id: "explanation-03", category: "explanation", instruction: "Why do we have seasons?", response: "Earth's axis is tilted, so each half of the planet gets more direct sunlight for part of the year (summer) and less for the rest (winter)." },
  { id: "explanation-04", category: "explanation", instruction: "What does a thermometer measure?", response: "A thermometer measures temperature, that is, how hot or cold something is." },
  { id: "explanation-05", category: "explanation", instruction: "Explain the difference between weather and climate.", response: "Weather is the state of the air on a given day; climate is the average weather of a place over many years." },
];

/** Seed tasks for the instruction-generation list: varied in form (question,
 *  imperative, with inline input) and topic, each one line and self-contained. */
export interface SeedTask {
  id: string;
  text: string;
}

export const SEED_TASKS: readonly SeedTask[] = [
  "Write a short poem about the moon.",
  "What is the difference between a virus and a bacterium?",
  "Give three tips for getting better sleep.",
  "Convert 5 kilometers to miles.",
  "Summarize the story of Cinderella in two sentences.",
  "Explain how a rainbow forms.",
  "Suggest a name for a new brand of orange juice.",
  "List four animals that live in the Arctic.",
  "Rewrite this sentence to sound more polite: Give me the report now.",
  "What is 144 divided by 12?",
  "Describe the taste of a lemon to someone who has never had one.",
  "Write a friendly reminder about a team meeting tomorrow at 10 am.",
  "Why do cats purr?",
  "Translate \"thank you very much\" into French.",
  "Name a renewable source of energy and explain why it is renewable.",
  "Create a riddle whose answer is \"a shadow\".",
  "Sort these numbers from smallest to largest: 42, 7, 19, 3, 28.",
  "Explain what inflation means in simple terms.",
  "Write a two-sentence scary story.",
  "What should I pack for a weekend camping trip?",
  "Name a famous scientist and one discovery they made.",
  "How do you make a cup of tea?",
  "Correct the grammar in this sentence: He don't like apples.",
  "What is the opposite of \"generous\"?",
  "Give a synonym for \"happy\".",
  "Write a short message announcing the opening of a new library.",
  "How many hours are there in a week?",
  "Explain the rules of tic-tac-toe.",
  "Describe a sunset using three adjectives.",
  "What is photosynthesis?",
  "Invent a new holiday and say how people celebrate it.",
  "What are two benefits of regular exercise?",
  "Write a thank-you note to a neighbor who watered your plants.",
  "Classify these animals as mammals or birds: eagle, dolphin, penguin, bat.",
  "What does the word \"ephemeral\" mean?",
  "Give step-by-step instructions for planting a seed.",
  "Explain why metal feels colder than wood at the same temperature.",
  "Write a limerick about a forgetful cat.",
  "What is the main job of the heart?",
  "Suggest three questions to ask at the end of a job interview.",
].map((text, i) => ({ id: `task-${String(i + 1).padStart(2, "0")}`, text }));

/** Labelled examples shown inside the critic prompts, in a fixed order (the
 *  critic header is the same for every item, so its KV cache is shared). A/B
 *  alternate so that neither letter is merely "the last one seen". */
export interface CriticExample {
  instruction: string;
  response?: string;
  answer: "A" | "B";
}

export const INSTRUCTION_CRITIC_EXAMPLES: readonly CriticExample[] = [
  { instruction: "Name three primary colors.", answer: "A" },
  { instruction: "Summarize the article above.", answer: "B" },
  { instruction: "Explain why ice floats on water.", answer: "A" },
  { instruction: "and then the second part of it", answer: "B" },
];

export const PAIR_CRITIC_EXAMPLES: readonly CriticExample[] = [
  { instruction: "What is 7 times 8?", response: "7 times 8 is 56.", answer: "A" },
  { instruction: "Name a mammal that lives in the sea.", response: "The sea is very big and very blue.", answer: "B" },
  { instruction: "Give a synonym for \"fast\".", response: "Quick.", answer: "A" },
  { instruction: "Write a haiku about snow.", response: "Write a haiku about rain. Write a haiku about wind. Write a haiku about", answer: "B" },
];
