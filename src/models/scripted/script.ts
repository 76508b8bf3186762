/**
 * Scripts for the scripted model: the zod schema, YAML parsing with file:line
 * errors, and compilation into precompiled regexes and templates.
 */
import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { z } from "zod";
import { ModelError } from "../types.js";
import { compileTemplate, type Template } from "./template.js";

const toolCallSchema = z
  .object({
    name: z.string().min(1, "a tool call needs a name, e.g. orders.lookup"),
    /** An object (strings interpolated) or a raw string sent as-is (e.g. malformed JSON, for tests). */
    args: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
    /**
     * One call per element of a list, e.g. `"${last_tool_result.orders}"`; `${item.x}` in args reads the element.
     * A turn whose calls all come to none (an empty list) passes to the dialogue's last turn, its answer.
     */
    for_each: z.string().optional(),
  })
  .strict();

const turnSchema = z
  .object({
    text: z.string().optional(),
    tool_calls: z.array(toolCallSchema).min(1).optional(),
  })
  .strict()
  .refine((t) => t.text !== undefined || t.tool_calls !== undefined, { message: "a turn needs `text` or `tool_calls`" });

const dialogueSchema = z
  .object({
    /** Case-insensitive regex against the latest user message; named groups become variables. */
    when: z.string().optional(),
    turns: z.array(turnSchema).min(1, "a dialogue needs at least one turn"),
  })
  .strict();

export const scriptSchema = z.object({ dialogues: z.array(dialogueSchema).min(1, "a script needs at least one dialogue") }).strict();

/** A script as written in `<scriptsDir>/<agent>.yaml`, or built in code. */
export type ScriptObject = z.input<typeof scriptSchema>;

export interface CompiledToolCall {
  name: string;
  /** Renders the raw argument text. */
  args: Template;
  /** The list this call is made once per element of (a template that is one reference). */
  forEach?: Template;
}

export interface CompiledTurn {
  text?: Template;
  toolCalls: CompiledToolCall[];
  usesToolResult: boolean;
}

export interface CompiledDialogue {
  index: number;
  when?: RegExp;
  whenSource?: string;
  turns: CompiledTurn[];
}

export interface CompiledScript {
  /** Where it came from, for messages: a path relative to the cwd, or "in-code script". */
  source: string;
  dialogues: CompiledDialogue[];
}

type Path = (string | number)[];
/** Maps a path inside the script to a line number, when the script came from a file. */
type Locate = (path: Path) => number | undefined;

/** One mistake in a script: line (when from a file), field path (e.g. `dialogues[0].turns[1].text`, "" for the whole file), message. */
export interface ScriptProblem {
  line?: number;
  path: string;
  message: string;
}

/** The ModelError for an invalid script, with its problems for tools that list them (`outpost validate`). */
export class InvalidScriptError extends ModelError {
  constructor(
    source: string,
    readonly problems: ScriptProblem[],
  ) {
    const lines = problems.map((p) => `${source}${p.line !== undefined ? `:${p.line}` : ""}${p.path ? `: ${p.path}` : ""}: ${p.message}`);
    super(
      `invalid script ${source}:\n${lines.map((l) => `  ${l}`).join("\n")}\n` +
        "A script is `dialogues:` — a list of { when?: <regex>, turns: [{ text?: ..., tool_calls?: [{ name, args }] }] }.",
      "bad_request",
      false,
    );
  }
}

/** Parses and compiles a script file's text. Throws InvalidScriptError (a ModelError "bad_request") with file:line messages. */
export function parseScriptText(text: string, source: string): CompiledScript {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({
      line: lineCounter.linePos(e.pos[0]).line,
      path: "",
      message: `YAML syntax error: ${firstLine(e.message)}`,
    }));
    throw new InvalidScriptError(source, problems);
  }
  const locate: Locate = (path) => {
    const offset = offsetOf(doc.contents, path);
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  let input: unknown;
  try {
    input = doc.toJS();
  } catch (e) {
    // e.g. "Excessive alias count indicates a resource exhaustion attack"
    throw new InvalidScriptError(source, [{ path: "", message: `YAML error: ${(e as Error).message}` }]);
  }
  return compileScript(input ?? {}, source, locate);
}

/** The problems of a script file's text ([] when it is valid). */
export function checkScriptText(text: string, source: string): ScriptProblem[] {
  try {
    parseScriptText(text, source);
    return [];
  } catch (e) {
    if (e instanceof InvalidScriptError) return e.problems;
    throw e;
  }
}

/** Validates and compiles a script object. */
export function compileScript(input: unknown, source: string, locate: Locate = () => undefined): CompiledScript {
  const at = (path: Path, message: string): ScriptProblem => ({ line: locate(path), path: formatPath(path), message });
  const parsed = scriptSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => {
      const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
      if (issue.code === "unrecognized_keys") return issue.keys.map((k) => at([...path, k], `unknown field "${k}"`));
      return [at(path, issue.message)];
    });
    throw new InvalidScriptError(source, problems);
  }

  const errors: ScriptProblem[] = [];
  const dialogues = parsed.data.dialogues.map((d, di): CompiledDialogue => {
    const known = new Set(["input", "last_tool_result"]);
    let when: RegExp | undefined;
    if (d.when !== undefined) {
      try {
        when = new RegExp(d.when, "i");
        for (const m of d.when.matchAll(/\(\?<([A-Za-z_$][A-Za-z0-9_$]*)>/g)) known.add(m[1]);
      } catch (e) {
        errors.push(at(["dialogues", di, "when"], `invalid regular expression: ${(e as Error).message}`));
      }
    }
    const withItem = new Set([...known, "item"]);
    const template = (s: string, path: Path, roots: ReadonlySet<string> = known): Template => {
      try {
        return compileTemplate(s, roots);
      } catch (e) {
        errors.push(at(path, (e as Error).message));
        return compileTemplate("", known);
      }
    };
    const turns = d.turns.map((t, ti): CompiledTurn => {
      const base: Path = ["dialogues", di, "turns", ti];
      const text = t.text === undefined ? undefined : template(t.text, [...base, "text"]);
      const toolCalls = (t.tool_calls ?? []).map((c, ci): CompiledToolCall => {
        const callPath: Path = [...base, "tool_calls", ci];
        const roots = c.for_each === undefined ? known : withItem;
        const args =
          typeof c.args === "string"
            ? { constant: c.args, usesToolResult: false, render: () => c.args as string }
            : compileArgs(c.args ?? {}, [...callPath, "args"], (s, p) => template(s, p, roots));
        if (c.for_each === undefined) return { name: c.name, args };
        const forEach = template(c.for_each, [...callPath, "for_each"]);
        if (!forEach.value)
          errors.push(at([...callPath, "for_each"], 'for_each is one reference to a list, e.g. "${last_tool_result.orders}"'));
        return { name: c.name, args, forEach };
      });
      const usesToolResult =
        (text?.usesToolResult ?? false) || toolCalls.some((c) => c.args.usesToolResult || (c.forEach?.usesToolResult ?? false));
      return { text, toolCalls, usesToolResult };
    });
    return { index: di, when, whenSource: d.when, turns };
  });
  if (errors.length > 0) throw new InvalidScriptError(source, errors);
  return { source, dialogues };
}

/** Args object → a template rendering its JSON, with every string inside interpolated. */
function compileArgs(args: Record<string, unknown>, path: Path, template: (s: string, path: Path) => Template): Template {
  let usesToolResult = false;
  let dynamic = false;
  const build = (value: unknown, p: Path): ((scope: Parameters<Template["render"]>[0]) => unknown) => {
    if (typeof value === "string") {
      const t = template(value, p);
      if (t.constant !== undefined) return () => t.constant;
      dynamic = true;
      usesToolResult ||= t.usesToolResult;
      // `amount: "${last_tool_result.fee}"` passes the number (and a list stays a list), not its text.
      const whole = t.value;
      if (whole) return (scope) => whole(scope) ?? "";
      return (scope) => t.render(scope);
    }
    if (Array.isArray(value)) {
      const items = value.map((v, i) => build(v, [...p, i]));
      return (scope) => items.map((f) => f(scope));
    }
    if (value !== null && typeof value === "object") {
      const entries = Object.entries(value).map(([k, v]) => [k, build(v, [...p, k])] as const);
      return (scope) => {
        const out: Record<string, unknown> = {};
        for (const [k, f] of entries) out[k] = f(scope);
        return out;
      };
    }
    return () => value;
  };
  const render = build(args, path);
  if (!dynamic) {
    const constant = JSON.stringify(args);
    return { constant, usesToolResult: false, render: () => constant };
  }
  return { usesToolResult, render: (scope) => JSON.stringify(render(scope)) };
}

/** Start offset of the node at `path` (or of its nearest existing ancestor / key). */
function offsetOf(root: Node | null, path: Path): number | undefined {
  let node: unknown = root;
  let offset = (root as Node | null)?.range?.[0];
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      // Point at the key: for a block value, that is the line a person looks for.
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number" && node.items[key] !== undefined) {
      node = node.items[key];
      offset = (node as Node).range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
