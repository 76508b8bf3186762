/** Exact commands to suggest to the user, ready to copy and paste. */
import { existsSync } from "node:fs";
import path from "node:path";

/** Quotes a shell word only when it needs it. */
export function quote(word: string): string {
  if (/^[\w./:@%+=,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** How to run the CLI here: `outpost` where it is on the PATH (installed), else `npx outpost` (inside a checkout). */
let invocation: string | undefined;
function outpostCommand(): string {
  invocation ??= (process.env.PATH ?? "").split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, "outpost")))
    ? "outpost"
    : "npx outpost";
  return invocation;
}

/** `outpost <args…> <flags>`, args quoted, flags appended verbatim. */
export function command(args: string[], flags = ""): string {
  return [outpostCommand(), ...args.map(quote), flags].filter(Boolean).join(" ");
}
