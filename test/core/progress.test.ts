// Progress on a terminal, driven two ways: the bar display on a fake TTY stream whose writes a
// small terminal emulator (terminal.ts) applies, and the real CLI in a pseudo-terminal
// (util-linux `script`). What a person sees: log lines on their own lines above the bars, the
// final frame of each bar (100 % and its total, or where it stopped) left as a line, and
// nothing of the bar area after the run. Piped: JSON lines on stdout only, human lines on
// stderr only; --quiet: warnings and the summary alone.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BarDisplay } from "../../core/progress.ts";
import { cli, FIXTURE_PLUGINS, ROOT, tempDir, writeConfig } from "../helpers.ts";
import { fakeTty, Screen } from "./terminal.ts";

const FRAME = /^(\S+) (\S+) \[([█░]+)\] (\d+)\/(\d+) (\d+)% \| /;
const frames = (lines: string[]) => lines.filter((l) => FRAME.test(l));

describe("bar display on a terminal", () => {
  test("log lines above the bars, final frames left as lines, no bar area after the last one", async () => {
    const { stream, screen, writes } = fakeTty(100);
    const d = new BarDisplay(stream);
    d.line("before any bar");
    const gen = d.task("responses", "generate", 10);
    const crit = d.task("responses", "critic", 4);
    gen.update(5, { loss: 1.23456 });
    crit.update(2);
    await Bun.sleep(250); // the redraw timer draws the live bars
    expect(screen.cursorVisible).toBe(false);
    expect(screen.text().slice(-2)).toEqual([expect.stringMatching(/^responses generate \[█{15}░{15}\] 5\/10 50% \| .* \| loss 1\.235$/), expect.stringMatching(/^responses critic \[█{15}░{15}\] 2\/4 50% /)]);

    d.line("a log line, longer than the bar it lands on is not: the area is cleared first");
    d.line("short");
    expect(screen.text()).toEqual(["before any bar", "a log line, longer than the bar it lands on is not: the area is cleared first", "short", expect.stringMatching(/^responses generate .* 5\/10 50%/), expect.stringMatching(/^responses critic .* 2\/4 50%/)]);

    crit.update(4);
    crit.finish();
    gen.update(10);
    await Bun.sleep(150);
    gen.finish();
    const end = screen.text();
    expect(end.slice(0, 3)).toEqual(["before any bar", "a log line, longer than the bar it lands on is not: the area is cleared first", "short"]);
    expect(end.slice(3)).toEqual([expect.stringMatching(/^responses critic \[█{30}\] 4\/4 100% \| [\d.]+\/s \| [\d.]+ s$/), expect.stringMatching(/^responses generate \[█{30}\] 10\/10 100% \| [\d.]+\/s \| [\d.]+ s \| loss 1\.235$/)]);
    // The cursor is on the line after them, shown again; whatever comes next is plain.
    expect([screen.row, screen.col, screen.cursorVisible]).toEqual([5, 0, true]);
    d.line("after the bars");
    expect(screen.text().at(-1)).toBe("after the bars");
    expect(screen.text()).toHaveLength(6);
    // Every final frame was written once, whole.
    expect(writes.join("").match(/4\/4 100%/g)).toHaveLength(1);
  });

  test("a task its stage left open ends where it stopped; a narrow terminal narrows the bar, never wraps it", async () => {
    const { stream, screen } = fakeTty(70);
    const d = new BarDisplay(stream);
    const t = d.task("a-stage", "work", 10);
    t.update(3);
    await Bun.sleep(150);
    expect(Math.max(...screen.rows.map((r) => r.length))).toBeLessThan(70);
    t.end();
    t.update(9); // after the end: ignored
    expect(screen.text()).toHaveLength(1);
    const [line] = screen.text();
    const m = /^a-stage work \[([█░]+)\] 3\/10 30% \| [\d.]+\/s \| stopped after [\d.]+ s$/.exec(line!);
    expect(m).not.toBeNull();
    expect(m![1]!.length).toBeLessThan(30);
    expect(m![1]).toMatch(/^█+░+$/);
    expect(line!.length).toBeLessThan(70);
    expect(screen.cursorVisible).toBe(true);
  });

  test("the CLI in a pseudo-terminal: bars of a run end complete, logs above them, nothing left after", async () => {
    const script = Bun.which("script");
    if (!script) throw new Error("this test needs util-linux 'script' (a pseudo-terminal for the CLI)");
    const dir = tempDir("selftune-pty-");
    writeFileSync(join(dir, "talker.ts"), `
import { z } from "${ROOT}/node_modules/zod";
import { definePlugin } from "${ROOT}/core/plugin.ts";
import { NumberKind } from "${FIXTURE_PLUGINS}/numbers.ts";
export default definePlugin({
  name: "talker", version: "1.0.0", description: "two tasks and log lines while they run (test)",
  config: z.strictObject({}), consumes: {}, produces: { numbers: NumberKind },
  async run(ctx) {
    const a = ctx.progress.task("first", 8), b = ctx.progress.task("second", 5);
    for (let i = 1; i <= 8; i++) {
      await Bun.sleep(60);
      a.update(i, { loss: 1 / i });
      if (i <= 5) b.update(i);
      if (i === 4) ctx.log.info("halfway there");
      if (i === 5) b.finish();
      ctx.outputs.numbers.write({ n: i, square: i * i });
    }
    ctx.log.warn("a warning while a bar is live");
  },
});
`);
    const cfg = writeConfig(dir, "run.yaml", `name: pty\nstages:\n  - plugin: ./talker.ts\n  - id: more\n    plugin: ${FIXTURE_PLUGINS}/numbers.ts\n    config: { count: 6, batch: 2, delayMs: 80 }\n`);
    const cmd = `stty cols 120 2>/dev/null; bun ${join(ROOT, "core/cli.ts")} run ${cfg} --run-dir ${join(dir, "run")}`;
    const proc = Bun.spawn([script, "-q", "-e", "-c", cmd, "/dev/null"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, SELFTUNE_PROGRESS: "" } });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(out).toContain("\x1b[?25l"); // bars were drawn (bar mode on a terminal)
    const screen = new Screen(120).write(out); // the pty turns each \n into \r\n
    const lines = screen.text();
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    // In order: the start, the log line and the second task's final frame above the first's, the warning, the end.
    const order = [/^stage 'talker' \(talker 1\.0\.0\) started$/, /^halfway there$/, /^talker second \[█{30}\] 5\/5 100% /, /^warning: a warning while a bar is live$/, /^talker first \[█{30}\] 8\/8 100% .* \| loss 0\.125$/, /^stage 'talker' done in/, /^stage 'more' \(numbers/, /^more numbers \[█{30}\] 6\/6 100% /, /^stage 'more' done in/, /^run pty-/];
    const found = order.map(at);
    if (found.some((i) => i < 0)) throw new Error(`missing ${order.filter((_, i) => found[i]! < 0).join(", ")} in:\n${lines.join("\n")}`);
    expect(found).toEqual([...found].sort((a, b) => a - b));
    // Only final frames are left: no partial bar, no blank line between the log lines, the cursor shown.
    expect(frames(lines).map((l) => FRAME.exec(l)!.slice(4, 7))).toEqual([["5", "5", "100"], ["8", "8", "100"], ["6", "6", "100"]]);
    expect(lines.slice(0, at(/^run pty-/))).not.toContain("");
    expect(screen.cursorVisible).toBe(true);
  });
});

describe("progress when piped", () => {
  const numbers = `${FIXTURE_PLUGINS}/numbers.ts`;
  const sumGate = `${FIXTURE_PLUGINS}/sum-gate.ts`;
  const yaml = `name: p\nstages:\n  - plugin: ${numbers}\n    config: { count: 6 }\n  - plugin: ${sumGate}\n    gate: report\n    config: { max: 3 }\n`;

  test("JSON lines on stdout and nothing else; human lines on stderr and no JSON", async () => {
    const dir = tempDir();
    const r = await cli(["run", writeConfig(dir, "a.yaml", yaml), "--run-dir", join(dir, "run")], { SELFTUNE_PROGRESS: "json" });
    expect(r.exitCode).toBe(0);
    const events = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.event === "progress")).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: "progress", stage: "numbers", task: "numbers", done: 6, total: 6, final: true });
    expect(events.filter((e) => e.final)).toHaveLength(1);
    expect(r.stderr).not.toContain("{\"event\"");
    expect(r.stderr).toContain("stage 'numbers' (numbers 1.0.0) started");
    expect(r.stderr).toContain("gate max-sum: FAIL"); // the summary goes with the human lines
    // Not a terminal and no mode given: json.
    const d = await cli(["run", writeConfig(dir, "b.yaml", yaml.replace("count: 6", "count: 5")), "--run-dir", join(dir, "run2")], { SELFTUNE_PROGRESS: "" });
    expect(JSON.parse(d.stdout.trimEnd().split("\n").at(-1)!)).toMatchObject({ done: 5, total: 5, final: true });
  });

  test("off: no progress, the summary on stdout; --quiet: warnings, errors and the summary only", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "a.yaml", yaml);
    const off = await cli(["run", cfg, "--run-dir", join(dir, "run")], { SELFTUNE_PROGRESS: "off" });
    expect(off.stdout).toContain("gate max-sum: FAIL");
    expect(off.stdout).not.toContain("{");
    expect(off.stderr).toContain("stage 'numbers' (numbers 1.0.0) started");
    const q = await cli(["run", cfg, "--run-dir", join(dir, "run-q"), "--quiet"], { SELFTUNE_PROGRESS: "json" });
    expect(q.exitCode).toBe(0);
    expect(q.stdout).toContain("gate max-sum: FAIL");
    expect(q.stdout).not.toContain("\"event\"");
    expect(q.stderr.trim()).toBe("warning: gate 'max-sum' of stage 'sum-gate' failed: sum 15 > 3 (gate: report, continuing)");
  });
});
