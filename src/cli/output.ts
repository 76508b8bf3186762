/**
 * Terminal output: colours (only on a TTY, never with NO_COLOR), a spinner on
 * stderr, truncation and plain-text tables. Everything the CLI prints goes
 * through `out` / `err` so it stays readable when piped.
 */

type Stream = NodeJS.WriteStream;

function colourEnabled(stream: Stream): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") return false;
  if (process.env.FORCE_COLOR === "0") return false;
  return Boolean(stream.isTTY);
}

const wrap = (open: number, close: number) => (enabled: boolean) => (text: string) =>
  enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text;

const codes = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  cyan: wrap(36, 39),
};

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

function styleFor(stream: Stream): Style {
  const on = colourEnabled(stream);
  return {
    bold: codes.bold(on),
    dim: codes.dim(on),
    red: codes.red(on),
    green: codes.green(on),
    yellow: codes.yellow(on),
    cyan: codes.cyan(on),
  };
}

/**
 * Run inputs, model answers and tool results come from people and models we do not trust: a control
 * sequence in them could move the cursor, erase lines or fake a "✓ approved". Only newlines, tabs
 * and (on a colour terminal) the colour codes this file itself emits reach the terminal.
 */
const OWN_SGR = new Set(
  Object.values(codes).flatMap((w) =>
    w(true)("")
      .split("m")
      .slice(0, 2)
      .map((c) => `${c}m`),
  ),
);
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /\x1b\[[0-9;]*m|\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])?|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

export function sanitize(text: string, keepColour: boolean): string {
  return text.replace(CONTROL, (m) => (keepColour && OWN_SGR.has(m) ? m : m === "\r" ? "" : "�"));
}

function printer(stream: Stream) {
  const keep = colourEnabled(stream);
  return (text: string) => void stream.write(sanitize(text, keep));
}

const toStdout = printer(process.stdout);
const toStderr = printer(process.stderr);

/** Styles for stdout and stderr (each decides on its own whether it is a TTY). */
export const out: Style & { line(text?: string): void; write(text: string): void } = {
  ...styleFor(process.stdout),
  line: (text = "") => toStdout(`${text}\n`),
  write: (text: string) => toStdout(text),
};

export const err: Style & { line(text?: string): void } = {
  ...styleFor(process.stderr),
  line: (text = "") => toStderr(`${text}\n`),
};

/** One line, at most `max` characters, whitespace collapsed. */
export function truncate(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

/** Compact JSON for arguments/outputs shown on one line. */
export function short(value: unknown, max = 80): string {
  if (value === undefined) return "";
  if (typeof value === "string") {
    // Tool arguments arrive as raw JSON text: show them as compact JSON.
    try {
      return truncate(JSON.stringify(JSON.parse(value)), max);
    } catch {
      return truncate(value, max);
    }
  }
  try {
    return truncate(JSON.stringify(value) ?? String(value), max);
  } catch {
    return truncate(String(value), max);
  }
}

export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return "$?";
  if (usd === 0) return "$0.00";
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

export function formatInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "?";
}

/** "2m ago"-style age of an ISO timestamp. */
export function age(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Time of day of an ISO timestamp, HH:MM:SS (local time). */
export function clock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toTimeString().slice(0, 8);
}

/** A plain table: header row, then rows, columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(Math.max(0, widths[i] - visibleLength(c)))))
      .join("  ")
      .trimEnd();
  return [render(headers.map((h) => out.bold(h))), ...rows.map(render)].join("\n");
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI codes on purpose
const ansi = /\x1b\[[0-9;]*m/g;
function visibleLength(text: string): number {
  return [...text.replace(ansi, "")].length;
}

/** A spinner on stderr, shown only when stderr is a TTY. */
export class Spinner {
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private label = "";
  private readonly enabled = Boolean(process.stderr.isTTY);
  private static readonly frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

  start(label: string): void {
    if (!this.enabled) return;
    this.label = label;
    if (this.timer) return;
    this.draw();
    this.timer = setInterval(() => this.draw(), 80);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    process.stderr.write("\r\x1b[K");
  }

  get active(): boolean {
    return this.timer !== undefined;
  }

  private draw(): void {
    const f = Spinner.frames[this.frame++ % Spinner.frames.length];
    process.stderr.write(`\r${err.cyan(f)} ${err.dim(this.label)}\x1b[K`);
  }
}
