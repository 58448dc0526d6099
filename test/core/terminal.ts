// A small terminal emulator for progress tests: applies the text and the escape sequences
// cli-progress and node:readline write (cursor up/down/left/right/column, erase in line,
// erase below, cursor shown/hidden, autowrap; colours ignored) to a screen of unbounded
// height, so a test can assert what a person would see at the end of a run, not only which
// bytes were written.
export class Screen {
  rows: string[][] = [[]];
  row = 0;
  col = 0;
  cursorVisible = true;
  autowrap = true;
  constructor(readonly columns = 80) {}

  private line(r = this.row): string[] {
    while (this.rows.length <= r) this.rows.push([]);
    return this.rows[r]!;
  }

  write(data: string): this {
    for (let i = 0; i < data.length; i++) {
      const c = data[i]!;
      if (c === "\x1b") {
        const m = /^\x1b\[(\??)(\d*)(?:;(\d*))?([A-Za-z])/.exec(data.slice(i));
        if (!m) throw new Error(`unknown escape sequence at ${JSON.stringify(data.slice(i, i + 8))}`);
        this.escape(m[1]!, m[2] === "" ? null : Number(m[2]), m[4]!);
        i += m[0].length - 1;
      } else if (c === "\r") this.col = 0;
      else if (c === "\n") {
        this.row++;
        this.line();
      } else {
        if (this.col >= this.columns) {
          if (!this.autowrap) continue;
          this.row++;
          this.col = 0;
        }
        const l = this.line();
        while (l.length < this.col) l.push(" ");
        l[this.col++] = c;
      }
    }
    return this;
  }

  private escape(priv: string, n: number | null, op: string) {
    if (priv === "?") {
      if (n === 25) this.cursorVisible = op === "h";
      else if (n === 7) this.autowrap = op === "h";
      else throw new Error(`unknown private mode ${n}${op}`);
      return;
    }
    const k = n ?? 1;
    const l = this.line();
    switch (op) {
      case "A": this.row = Math.max(0, this.row - k); break;
      case "B": this.row += k; this.line(); break;
      case "C": this.col += k; break;
      case "D": this.col = Math.max(0, this.col - k); break;
      case "G": this.col = k - 1; break;
      case "K":
        if ((n ?? 0) === 0) l.length = Math.min(l.length, this.col);
        else if (n === 1) for (let i = 0; i <= this.col && i < l.length; i++) l[i] = " ";
        else l.length = 0;
        break;
      case "J":
        if ((n ?? 0) !== 0) throw new Error(`unsupported erase ${n}J`);
        l.length = Math.min(l.length, this.col);
        this.rows.length = this.row + 1;
        break;
      case "m": break; // colours: not what these tests look at
      default:
        throw new Error(`unknown escape ${n ?? ""}${op}`);
    }
  }

  /** The screen's lines, trailing spaces and trailing empty lines dropped. */
  text(): string[] {
    const lines = this.rows.map((r) => r.join("").trimEnd());
    while (lines.length && lines.at(-1) === "") lines.pop();
    return lines;
  }
}

/** A writable stand-in for a TTY stream: records what is written into a Screen and raw. */
export function fakeTty(columns = 80) {
  const screen = new Screen(columns);
  const writes: string[] = [];
  const stream = {
    isTTY: true,
    columns,
    rows: 24,
    write(chunk: string | Uint8Array, ...rest: unknown[]) {
      const s = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      writes.push(s);
      screen.write(s);
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    },
    on() { return stream; },
    once() { return stream; },
    removeListener() { return stream; },
  };
  return { stream: stream as unknown as NodeJS.WriteStream, screen, writes };
}
