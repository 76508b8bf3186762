/** Exact commands to suggest to the user, ready to copy and paste. */

/** Quotes a shell word only when it needs it. */
export function quote(word: string): string {
  if (/^[\w./:@%+=,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `outpost <args…> <flags>`, args quoted, flags appended verbatim. */
export function command(args: string[], flags = ""): string {
  return ["outpost", ...args.map(quote), flags].filter(Boolean).join(" ");
}
