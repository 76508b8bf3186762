/**
 * Loads `tools/*.ts` (and .mts/.js/.mjs) of a project. Each file exports
 * tools made with `defineTool`: as its default export (one tool or a list),
 * and/or as named exports. Files whose name starts with "_" are helpers and
 * are not scanned for tools.
 */

import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { register as registerTsxRequire } from "tsx/cjs/api";
import { register as registerTsx } from "tsx/esm/api";
import { isBrandedTool } from "./define-tool.js";
import type { Issue } from "./errors.js";
import { registerOutpostResolution } from "./resolve-hook.js";
import { BUILTIN_TOOL_NAMES, TOOL_NAME_PATTERN } from "./schemas.js";
import { didYouMean } from "./suggest.js";
import type { ToolDefinition } from "./types.js";

const TOOL_FILE = /\.(ts|mts|js|mjs)$/;
const TOOL_FIELDS = ["name", "description", "input", "handler", "approval", "sideEffects", "classification", "timeoutMs"];
const CLASSIFICATIONS = ["public", "internal", "confidential", "restricted"];

export interface LoadedTools {
  tools: ToolDefinition[];
  issues: Issue[];
  /** True when some file could not be imported at all (so its tools are unknown). */
  incomplete: boolean;
}

/** Tool files in `<root>/tools`, relative to root, sorted. */
export async function listToolFiles(root: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(path.join(root, "tools"));
  } catch {
    return [];
  }
  return names
    .filter((name) => TOOL_FILE.test(name) && !name.endsWith(".d.ts") && !name.startsWith("_"))
    .sort()
    .map((name) => `tools/${name}`);
}

export async function loadTools(root: string): Promise<LoadedTools> {
  const result: LoadedTools = { tools: [], issues: [], incomplete: false };
  const files = await listToolFiles(root);
  if (files.length === 0) return result;
  registerOutpostResolution();
  // One fresh tsx namespace per load: the files share their imports (zod, outpost, helpers), which
  // are evaluated once, and a later load sees edited files instead of cached modules.
  // (As tsImport does, register for require() too: files without "type": "module" compile to CommonJS.)
  const namespace = randomUUID();
  registerTsxRequire({ namespace });
  const tsx = registerTsx({ namespace });
  const seen = new Map<string, string>();

  for (const file of files) {
    const absolute = path.join(root, file);
    const source = await readFile(absolute, "utf8").catch(() => "");
    const lineOf = (needle: string) => findLine(source, needle);
    let mod: Record<string, unknown>;
    try {
      mod = await tsx.import(pathToFileURL(absolute).href, import.meta.url);
    } catch (error) {
      result.incomplete = true;
      result.issues.push(importIssue(file, error));
      continue;
    }

    const found = exportedTools(unwrapCommonJs(mod));
    if (found.problems.length > 0) {
      for (const message of found.problems) result.issues.push({ file, line: lineOf("export default"), path: "", message });
    }
    if (found.candidates.length === 0 && found.problems.length === 0) {
      result.issues.push({
        file,
        path: "",
        message: 'exports no tools — add `export default defineTool({ ... })` (put helper modules in files whose name starts with "_")',
      });
    }

    for (const { value, label } of found.candidates) {
      const name = typeof value.name === "string" ? value.name : undefined;
      const line =
        (name && (lineOf(`"${name}"`) ?? lineOf(`'${name}'`) ?? lineOf(`\`${name}\``))) ||
        lineOf(label.replace(/^export (default)?/, "").replace(/\[\d+\]$/, "") || "export default");
      const problems = checkTool(value, name);
      if (problems.length > 0) {
        for (const [field, message] of problems) result.issues.push({ file, line, path: field, message });
        continue;
      }
      const tool = { ...(value as unknown as ToolDefinition), file };
      if (BUILTIN_TOOL_NAMES.includes(tool.name)) {
        result.issues.push({ file, line, path: "name", message: `"${tool.name}" is a built-in tool of Outpost — choose another name` });
        continue;
      }
      const previous = seen.get(tool.name);
      if (previous !== undefined) {
        result.issues.push({
          file,
          line,
          path: "name",
          message: `tool "${tool.name}" is already defined in ${previous} — tool names must be unique; rename one`,
        });
        continue;
      }
      seen.set(tool.name, file);
      result.tools.push(tool);
    }
  }
  return result;
}

/** A tool file compiled to CommonJS (no `"type": "module"` in its package.json) arrives as `{ default: exports }`. */
function unwrapCommonJs(mod: Record<string, unknown>): Record<string, unknown> {
  const exports = mod.default;
  return isObject(exports) && exports.__esModule === true ? exports : mod;
}

interface Candidate {
  value: Record<string, unknown>;
  label: string;
}

function exportedTools(mod: Record<string, unknown>): { candidates: Candidate[]; problems: string[] } {
  const candidates: Candidate[] = [];
  const problems: string[] = [];
  const taken = new Set<unknown>();
  const add = (value: unknown, label: string) => {
    if (taken.has(value)) return;
    taken.add(value);
    candidates.push({ value: value as Record<string, unknown>, label });
  };

  const fallback = mod.default;
  if (Array.isArray(fallback)) {
    fallback.forEach((item, index) => {
      if (isObject(item)) add(item, `export default[${index}]`);
      else problems.push(`default export [${index}] is not a tool — list tools made with defineTool({ ... })`);
    });
  } else if (isObject(fallback)) {
    add(fallback, "export default");
  } else if (fallback !== undefined) {
    problems.push("the default export is not a tool — use `export default defineTool({ ... })` or a list of tools");
  }

  for (const [key, value] of Object.entries(mod)) {
    if (key === "default") continue;
    if (isBrandedTool(value)) add(value, `export ${key}`);
    else if (Array.isArray(value) && value.length > 0 && value.every(isBrandedTool)) {
      for (const item of value) add(item, `export ${key}`);
    }
  }
  return { candidates, problems };
}

/** [field, message] pairs for everything wrong with one tool definition. */
function checkTool(tool: Record<string, unknown>, name: string | undefined): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  const who = name ? `tool "${name}"` : "tool";
  if (typeof tool.name !== "string" || tool.name === "") {
    problems.push(["name", `${who} has no name — add name: "area.action" (e.g. "orders.lookup")`]);
  } else if (!TOOL_NAME_PATTERN.test(tool.name)) {
    problems.push([
      "name",
      `"${tool.name}" is not a valid tool name — use lowercase words of letters, digits and "_", joined by dots (e.g. "orders.lookup")`,
    ]);
  }
  if (typeof tool.description !== "string" || tool.description.trim() === "") {
    problems.push(["description", `${who} has no description — the model reads it to decide when to call the tool`]);
  }
  if (!isZodSchema(tool.input)) {
    problems.push([
      "input",
      tool.input === undefined
        ? `${who} has no input schema — add input: z.object({ ... }) (import { z } from "zod")`
        : `${who}: input is not a zod schema — use input: z.object({ ... }) (import { z } from "zod")`,
    ]);
  }
  if (typeof tool.handler !== "function") {
    problems.push([
      "handler",
      tool.handler === undefined
        ? `${who} has no handler — add handler: async ({ input, context, idempotencyKey }) => { ... }`
        : `${who}: handler must be a function`,
    ]);
  }
  if (tool.approval !== undefined && tool.approval !== "required" && tool.approval !== "none") {
    problems.push(["approval", `must be "required" or "none" (got ${JSON.stringify(tool.approval)})`]);
  }
  if (tool.sideEffects !== undefined && typeof tool.sideEffects !== "boolean") {
    problems.push(["sideEffects", "must be true or false"]);
  }
  if (tool.classification !== undefined && !CLASSIFICATIONS.includes(tool.classification as string)) {
    const got = JSON.stringify(tool.classification);
    const hint = typeof tool.classification === "string" ? didYouMean(tool.classification, CLASSIFICATIONS) : "";
    problems.push(["classification", `must be one of ${CLASSIFICATIONS.join(", ")} (got ${got})${hint}`]);
  }
  if (tool.timeoutMs !== undefined && !(typeof tool.timeoutMs === "number" && tool.timeoutMs > 0)) {
    problems.push(["timeoutMs", "must be a positive number of milliseconds (e.g. 30_000)"]);
  }
  for (const key of Object.keys(tool)) {
    if (TOOL_FIELDS.includes(key) || key === "file") continue;
    const hint = didYouMean(key, TOOL_FIELDS) || ` — remove it (known fields: ${TOOL_FIELDS.join(", ")})`;
    problems.push([key, `unknown field "${key}"${hint}`]);
  }
  return problems;
}

/** Duck-typed: the schema may come from another copy of zod than ours. */
function isZodSchema(value: unknown): boolean {
  return isObject(value) && typeof value.safeParse === "function" && ("_zod" in value || "_def" in value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function findLine(source: string, needle: string): number | undefined {
  if (!needle) return undefined;
  const index = source.indexOf(needle);
  return index < 0 ? undefined : source.slice(0, index).split("\n").length;
}

/** The file's import error, without a stack; with the line when the error says where. */
function importIssue(file: string, error: unknown): Issue {
  const err = error instanceof Error ? error : new Error(String(error));
  const text = err.message;
  // esbuild: "Transform failed with 1 error:\n/abs/tools/x.ts:3:10: ERROR: Expected ..."
  const esbuild = /:(\d+):(\d+): ERROR: (.+)/.exec(text);
  if (esbuild) {
    return {
      file,
      line: Number(esbuild[1]),
      column: Number(esbuild[2]),
      path: "",
      message: `cannot be compiled: ${esbuild[3]}`,
    };
  }
  const first = text.split("\n")[0].trim();
  // No line from the stack: under test runners and some loaders its positions are those of the
  // compiled code, and a wrong line is worse than none.
  return { file, path: "", message: `failed to load: ${first}` };
}
