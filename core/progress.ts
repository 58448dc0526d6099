// Progress and the human lines of a run. Stages report counts through ctx.progress; what
// the user sees depends on the mode, SELFTUNE_PROGRESS=bar|json|off (default: bar when stderr
// is a terminal, else json):
// - bar: bars on stderr (cli-progress). Log lines are printed above the live bars, never
//   through them. A task's bar ends at its final frame (100 % and its total, or where it
//   stopped), which stays as a line above the live ones; when a stage ends none of its bars
//   is left live, and when no bar is live nothing of the bar area is left on screen.
// - json: one JSON object a line on stdout, so a pipe gets JSON on one stream and human lines
//   (logs, warnings, errors, the run summary) on the other, stderr.
// - off: no progress; human lines on stderr, the summary on stdout.
// --quiet (SELFTUNE_QUIET=1) is off plus no info lines: warnings, errors and the summary remain.
import { clearScreenDown } from "node:readline";
import { MultiBar, type SingleBar } from "cli-progress";

export interface ProgressTask {
  /** Advance by n; `info` (e.g. {loss: 1.2}) is shown beside the bar. */
  tick(n?: number, info?: Record<string, number | string>): void;
  update(done: number, info?: Record<string, number | string>): void;
  finish(): void;
}

export interface Progress {
  task(label: string, total: number): ProgressTask;
}

export type ProgressMode = "bar" | "json" | "off";

export function quiet(): boolean {
  return process.env.SELFTUNE_QUIET === "1";
}

export function progressMode(): ProgressMode {
  if (quiet()) return "off";
  const env = process.env.SELFTUNE_PROGRESS;
  if (env === "bar" || env === "json" || env === "off") return env;
  return process.stderr.isTTY ? "bar" : "json";
}

type Info = Record<string, number | string>;

/** What a task has done; the JSON event and the bar's frame are made from it. */
interface TaskState {
  stage: string;
  label: string;
  total: number;
  done: number;
  info?: Info;
  started: number;
  /** Set once the task has ended (finish(), or its stage closed). */
  endedAt: number | null;
}

function newState(stage: string, label: string, total: number): TaskState {
  return { stage, label, total, done: 0, started: performance.now(), endedAt: null };
}

const seconds = (s: TaskState) => ((s.endedAt ?? performance.now()) - s.started) / 1000;
const rateOf = (s: TaskState) => s.done / Math.max(1e-3, seconds(s));

function formatInfo(info?: Info): string {
  if (!info) return "";
  return Object.entries(info)
    .map(([k, v]) => `${k} ${typeof v === "number" ? +v.toPrecision(4) : v}`)
    .join("  ");
}

function duration(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

const BAR_WIDTH = 30;
const MIN_BAR_WIDTH = 10;

/** One bar line: live (rate, ETA) or final (rate, time taken; "stopped" short of the total). */
export function frame(s: TaskState, columns: number): string {
  const fraction = s.total > 0 ? Math.min(1, s.done / s.total) : 1;
  const rate = rateOf(s);
  const tail =
    s.endedAt === null
      ? `${rate.toFixed(1)}/s | ETA ${rate > 0 ? duration(Math.max(0, s.total - s.done) / rate) : "?"}`
      : `${rate.toFixed(1)}/s | ${s.done >= s.total ? "" : "stopped after "}${duration(seconds(s))}`;
  const info = formatInfo(s.info);
  const rest = `] ${s.done}/${s.total} ${Math.floor(fraction * 100)}% | ${tail}${info ? ` | ${info}` : ""}`;
  const head = `${s.stage} ${s.label} [`;
  // One column short of the width (a line that fills the row wraps on some terminals): the bar
  // narrows first, then what does not fit is cut.
  const width = Math.max(MIN_BAR_WIDTH, Math.min(BAR_WIDTH, columns - 1 - head.length - rest.length));
  const filled = Math.round(fraction * width);
  const line = `${head}${"█".repeat(filled)}${"░".repeat(width - filled)}${rest}`;
  return line.length < columns ? line : line.slice(0, Math.max(1, columns - 1));
}

/**
 * The bars of one terminal stream. cli-progress's MultiBar draws the live bars and moves the
 * cursor back to their top at each redraw; everything printed goes through here, so a line
 * never lands inside the bar area: at a redraw (started at once for a line) the area is
 * cleared from its top, the waiting lines are written there, and the live bars below them.
 */
export class BarDisplay {
  private multi: MultiBar | null = null;
  private readonly bars = new Map<TaskState, SingleBar>();
  /** Lines to print above the bars at the next redraw. */
  private above: string[] = [];

  constructor(private readonly stream: NodeJS.WriteStream) {}

  private columns(): number {
    return this.stream.columns || 80;
  }

  private ensure(): MultiBar {
    if (this.multi) return this.multi;
    const multi = new MultiBar({
      stream: this.stream,
      format: (_o, _p, payload: { state: TaskState }) => frame(payload.state, this.columns()),
      hideCursor: true,
      // Every frame is drawn in full (the area is cleared before it), and the bar area is
      // erased when the last bar ends: its final frames are lines above it by then.
      forceRedraw: true,
      clearOnComplete: true,
      // Trimmed to the width, with the terminal's wrapping left on for the lines above.
      linewrap: true,
      // Our own SIGINT handling lets the stage finish its batch; the bars end with it.
      gracefulExit: false,
    });
    // Emitted with the cursor at the top of the bar area, before the bars are drawn.
    multi.on("redraw-pre", () => {
      clearScreenDown(this.stream);
      if (this.above.length) this.stream.write(this.above.join("\n") + "\n");
      this.above = [];
    });
    this.multi = multi;
    return multi;
  }

  /** A human line: above the live bars, or plainly when there are none. */
  line(text: string): void {
    if (!this.multi) {
      this.stream.write(text + "\n");
      return;
    }
    this.above.push(text);
    this.multi.update();
  }

  task(stage: string, label: string, total: number): ProgressTask & { end(): void } {
    const state = newState(stage, label, total);
    this.bars.set(state, this.ensure().create(total, 0, { state }));
    const update = (done: number, info?: Info) => {
      if (state.endedAt !== null) return;
      state.done = done;
      if (info) state.info = info;
      this.bars.get(state)?.update(done);
    };
    return {
      tick: (n = 1, info) => update(state.done + n, info),
      update,
      finish: () => this.end(state),
      end: () => this.end(state),
    };
  }

  /** Print the bar's final frame above the others and take it out of the live area. */
  private end(state: TaskState): void {
    const bar = this.bars.get(state);
    if (!bar || !this.multi) return;
    state.endedAt = performance.now();
    this.bars.delete(state);
    this.above.push(frame(state, this.columns()));
    this.multi.remove(bar); // redraws: the final frame is written above the bars left
    if (this.bars.size === 0) {
      // Back to the area's top, which is cleared: the cursor is where the next line goes.
      this.multi.stop();
      this.multi = null;
    }
  }
}

let stderrBars: BarDisplay | null = null;
function bars(): BarDisplay {
  return (stderrBars ??= new BarDisplay(process.stderr));
}

/**
 * A human line of the run (a log line, a warning, a signal's notice): above the bars on a
 * terminal, else on stderr. Info lines are dropped under --quiet.
 */
export function humanLine(text: string, level: "info" | "warn" = "warn"): void {
  if (level === "info" && quiet()) return;
  if (progressMode() === "bar") bars().line(text);
  else process.stderr.write(text + "\n");
}

/** Where `run` prints its summary: stdout, unless stdout carries the JSON progress. */
export function summaryStream(): NodeJS.WriteStream {
  return progressMode() === "json" ? process.stderr : process.stdout;
}

class JsonTask implements ProgressTask {
  private readonly state: TaskState;
  private lastEmit = -Infinity;
  constructor(stage: string, label: string, total: number, private readonly write: (line: string) => void) {
    this.state = newState(stage, label, total);
  }
  private emit(force: boolean) {
    const now = performance.now();
    if (!force && now - this.lastEmit < 1000) return;
    this.lastEmit = now;
    const s = this.state;
    const rate = rateOf(s);
    const eta = rate > 0 ? Math.max(0, (s.total - s.done) / rate) : null;
    const final = s.endedAt !== null ? { final: true } : {};
    this.write(JSON.stringify({ event: "progress", stage: s.stage, task: s.label, done: s.done, total: s.total, rate: +rate.toFixed(3), etaSeconds: eta === null ? null : Math.round(eta), ...s.info, ...final }));
  }
  tick(n = 1, info?: Info) {
    this.update(this.state.done + n, info);
  }
  update(done: number, info?: Info) {
    if (this.state.endedAt !== null) return;
    this.state.done = done;
    if (info) this.state.info = info;
    this.emit(done >= this.state.total);
  }
  /** The last event of the task, `final: true` (once). */
  finish() {
    if (this.state.endedAt !== null) return;
    this.state.endedAt = performance.now();
    this.emit(true);
  }
}

/** One Progress per stage; `close()` when the stage ends: every task it left open ends there. */
export function createProgress(stage: string, mode: ProgressMode = progressMode()): Progress & { close(): void } {
  if (mode === "off") {
    const noop: ProgressTask = { tick() {}, update() {}, finish() {} };
    return { task: () => noop, close() {} };
  }
  const open: ProgressTask[] = [];
  const write = (line: string) => process.stdout.write(line + "\n");
  return {
    task: (label, total) => {
      const t = mode === "json" ? new JsonTask(stage, label, total, write) : bars().task(stage, label, total);
      open.push(t);
      return t;
    },
    close: () => {
      for (const t of open) t.finish();
    },
  };
}
