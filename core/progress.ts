// Progress: stages report counts; on a TTY they become bars with rate and ETA,
// otherwise throttled JSON lines on stderr (machine-readable logs, CI).
import { MultiBar, Presets, type SingleBar } from "cli-progress";

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

export function progressMode(): ProgressMode {
  const env = process.env.SELFTUNE_PROGRESS;
  if (env === "bar" || env === "json" || env === "off") return env;
  return process.stderr.isTTY ? "bar" : "json";
}

class JsonTask implements ProgressTask {
  private done = 0;
  private lastEmit = 0;
  private readonly started = performance.now();
  constructor(
    private readonly stage: string,
    private readonly label: string,
    private readonly total: number,
    private readonly write: (line: string) => void,
  ) {}
  private emit(force: boolean, info?: Record<string, number | string>) {
    const now = performance.now();
    if (!force && now - this.lastEmit < 1000) return;
    this.lastEmit = now;
    const secs = (now - this.started) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 ? Math.max(0, (this.total - this.done) / rate) : null;
    this.write(JSON.stringify({ event: "progress", stage: this.stage, task: this.label, done: this.done, total: this.total, rate: +rate.toFixed(3), etaSeconds: eta === null ? null : Math.round(eta), ...info }));
  }
  tick(n = 1, info?: Record<string, number | string>) {
    this.done += n;
    this.emit(this.done >= this.total, info);
  }
  update(done: number, info?: Record<string, number | string>) {
    this.done = done;
    this.emit(done >= this.total, info);
  }
  finish() {
    this.emit(true);
  }
}

class BarTask implements ProgressTask {
  private done = 0;
  private readonly started = performance.now();
  constructor(private readonly bar: SingleBar, private readonly multi: MultiBar) {}
  tick(n = 1, info?: Record<string, number | string>) {
    this.update(this.done + n, info);
  }
  update(done: number, info?: Record<string, number | string>) {
    this.done = done;
    // cli-progress has no rate token of its own.
    const rate = done / Math.max(1e-3, (performance.now() - this.started) / 1000);
    this.bar.update(done, { rate: rate.toFixed(1), info: formatInfo(info) });
  }
  finish() {
    this.bar.stop();
    this.multi.remove(this.bar);
  }
}

function formatInfo(info?: Record<string, number | string>): string {
  if (!info) return "";
  return Object.entries(info)
    .map(([k, v]) => `${k} ${typeof v === "number" ? +v.toPrecision(4) : v}`)
    .join("  ");
}

/** One Progress per stage; `close()` when the stage ends. */
export function createProgress(stage: string, mode: ProgressMode = progressMode()): Progress & { close(): void } {
  if (mode === "off") {
    const noop: ProgressTask = { tick() {}, update() {}, finish() {} };
    return { task: () => noop, close() {} };
  }
  if (mode === "json") {
    const write = (line: string) => process.stderr.write(line + "\n");
    return { task: (label, total) => new JsonTask(stage, label, total, write), close() {} };
  }
  const multi = new MultiBar(
    { format: `${stage} {task} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted} {info}`, hideCursor: true, clearOnComplete: false, etaBuffer: 50 },
    Presets.shades_classic,
  );
  return {
    task: (label, total) => new BarTask(multi.create(total, 0, { task: label, info: "", rate: "0" }), multi),
    close: () => multi.stop(),
  };
}
