/**
 * How the CLI reports failures: a person-readable message and hint, never a
 * stack trace unless OUTPOST_DEBUG=1.
 */
import { err } from "./output.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A mistake in how the command was invoked (exit code 2). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/** Ends the command with an exit code, after output has been printed. */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = "Exit";
  }
}

interface IssueLike {
  file?: string;
  line?: number;
  column?: number;
  path?: string;
  message: string;
}

/** Duck-typed so the CLI need not load the modules that define the errors. */
function isPersonError(e: unknown): e is Error & { code?: string; hint?: string } {
  return e instanceof Error && (e.name === "OutpostError" || e.name === "ProjectError");
}

function issuesOf(e: unknown): IssueLike[] | undefined {
  const issues = (e as { issues?: unknown })?.issues;
  if (!Array.isArray(issues)) return undefined;
  return issues.filter((i): i is IssueLike => typeof i === "object" && i !== null && typeof i.message === "string");
}

export function formatIssue(issue: IssueLike): string {
  const line = issue.line ? `:${issue.line}${issue.column ? `:${issue.column}` : ""}` : "";
  const where = issue.file ? `${issue.file}${line}` : "";
  const path = issue.path ? `${where ? " " : ""}${issue.path}` : "";
  const prefix = `${where}${path}`;
  return prefix ? `${prefix}: ${issue.message}` : issue.message;
}

/** Prints an error for a person and returns the exit code to use. */
export function reportError(e: unknown): number {
  if (e instanceof Exit) return e.code;
  if (e instanceof UsageError) {
    err.line(`${err.red("error:")} ${e.message}`);
    if (e.hint) err.line(`${err.dim("hint:")} ${e.hint}`);
    return EXIT_USAGE;
  }
  const issues = issuesOf(e);
  if (issues && issues.length > 0) {
    const message = e instanceof Error ? e.message : "the project has problems";
    err.line(`${err.red("error:")} ${message.split("\n")[0]}`);
    for (const issue of issues) err.line(`  ${formatIssue(issue)}`);
    const hint = (e as { hint?: string }).hint;
    if (hint) err.line(`${err.dim("hint:")} ${hint}`);
    debugStack(e);
    return EXIT_FAILED;
  }
  if (isPersonError(e)) {
    err.line(`${err.red("error:")} ${e.message}`);
    const hint = e.code === "unauthorized" ? unauthorizedHint() : e.code === "forbidden" ? forbiddenHint(e.hint) : e.hint;
    if (hint) err.line(`${err.dim("hint:")} ${hint}`);
    debugStack(e);
    return EXIT_FAILED;
  }
  const message = e instanceof Error ? e.message : String(e);
  err.line(`${err.red("error:")} ${message.split("\n")[0]}`);
  if (process.env.OUTPOST_DEBUG) {
    debugStack(e);
  } else {
    err.line(err.dim("(run with OUTPOST_DEBUG=1 for a stack trace)"));
  }
  return EXIT_FAILED;
}

/**
 * A server refused the credentials: the server's hint speaks of HTTP headers; a CLI user sets OUTPOST_API_KEY.
 * Whether one is set tells "no key" from "a key that no longer works".
 */
function unauthorizedHint(): string {
  const create = "an admin creates one with: outpost keys create NAME --role ROLE";
  if (!process.env.OUTPOST_API_KEY) {
    return `OUTPOST_API_KEY is not set: export OUTPOST_API_KEY=… with the admin key \`outpost up\` printed at first start, or ${create}`;
  }
  return `the key in OUTPOST_API_KEY was refused: export OUTPOST_API_KEY=… with a working key (\`outpost up\` prints the admin key at first start; ${create})`;
}

/** The key works but lacks a role or group: the message names which; say which key the CLI sent. */
function forbiddenHint(serverHint: string | undefined): string {
  const key = process.env.OUTPOST_API_KEY;
  const sent = key ? `the CLI sent the key in OUTPOST_API_KEY (${key.slice(0, 10)}…)` : "";
  return [serverHint, sent].filter(Boolean).join("; ");
}

function debugStack(e: unknown): void {
  if (process.env.OUTPOST_DEBUG && e instanceof Error && e.stack) err.line(err.dim(e.stack));
}
