/**
 * The project's Cedar policies: policies/*.cedar, read and syntax-checked here so a typo is reported
 * by `outpost validate` with file:line:column like any YAML mistake. Evaluating them, the schema and
 * the shipped baseline are security/policy's.
 */
import type { Issue } from "./errors.js";
import { listFiles, readText } from "./files.js";
import type { PolicyFile } from "./types.js";

/** Every policies/*.cedar file (sorted); files whose syntax is wrong add their problems to `issues`. */
export async function readPolicyFiles(root: string, issues: Issue[]): Promise<PolicyFile[]> {
  const files = await listFiles(root, "policies", /\.cedar$/, issues);
  if (files.length === 0) return [];
  // The Cedar engine (a WebAssembly module) loads only for projects that have policies.
  const cedar = await import("@cedar-policy/cedar-wasm/nodejs");
  const out: PolicyFile[] = [];
  for (const file of files.sort()) {
    const text = await readText(root, file, issues);
    if (text === undefined) continue;
    const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
    if (parsed.type === "failure") {
      issues.push(...parsed.errors.map((error) => cedarIssue(file, text, error)));
      continue;
    }
    out.push({ file, text });
  }
  return out;
}

interface CedarError {
  message: string;
  help: string | null;
  sourceLocations?: { start: number; end: number; label: string | null }[];
  related?: CedarError[];
}

/** A Cedar error as an Issue: its first located part gives the line and column, its labels the detail. */
export function cedarIssue(file: string, text: string, error: CedarError, prefix = ""): Issue {
  const parts = [error, ...(error.related ?? [])];
  const located = parts.find((part) => part.sourceLocations?.length);
  const at = located?.sourceLocations?.[0];
  const where = at ? positionAt(text, at.start) : undefined;
  const details = parts
    .flatMap((part) => [
      part === error ? part.message.replace(/^failed to parse policies from string: /, "") : part.message,
      part.sourceLocations?.[0]?.label,
    ])
    .filter((s, i, all): s is string => Boolean(s) && all.indexOf(s) === i);
  const help = parts.map((part) => part.help).find(Boolean);
  return {
    file,
    ...(where ? { line: where.line, column: where.column } : {}),
    path: "",
    message: `${prefix}${details.join(": ")}${help ? ` — ${help}` : ""}`,
  };
}

/** 1-based line and column of a Cedar source offset (a UTF-8 byte offset: Cedar is Rust). */
export function positionAt(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, "utf8").subarray(0, byteOffset).toString("utf8");
  const lines = before.split("\n");
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}
