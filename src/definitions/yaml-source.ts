/**
 * A YAML file kept together with its syntax tree, so a field path from a
 * schema error can be turned back into the line where a person should look.
 */
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { Issue } from "./errors.js";

export type FieldPath = ReadonlyArray<string | number>;

export interface YamlSource {
  /** Relative to the project root. */
  file: string;
  /** Plain data (undefined when the file has syntax errors). */
  data: unknown;
  /** Syntax errors, already located. */
  syntaxIssues: Issue[];
  /** The line of the field at `path`; for a missing field, the line of the nearest enclosing object. */
  lineOf(path: FieldPath): number | undefined;
}

export function parseYaml(file: string, text: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);

  const syntaxIssues: Issue[] = doc.errors.map((error) => {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    return { file, line, column: col, path: "", message: syntaxMessage(error.message, error.code) };
  });

  let data: unknown;
  if (syntaxIssues.length === 0) {
    try {
      data = doc.toJS();
    } catch (error) {
      // e.g. "Excessive alias count indicates a resource exhaustion attack" (an alias bomb)
      const message = (error as Error).message;
      const hint = /alias count/i.test(message)
        ? "use fewer aliases (*name), or write the values out"
        : "check the anchors (&name) and aliases (*name)";
      syntaxIssues.push({ file, path: "", message: `YAML error: ${message} — ${hint}` });
    }
  }

  return {
    file,
    data,
    syntaxIssues,
    lineOf: (path) => lineAt(offsetOf(doc, path)),
  };
}

function syntaxMessage(message: string, code: string): string {
  const first = message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
  const hint =
    code === "DUPLICATE_KEY"
      ? " — remove or rename one of them"
      : code === "TAB_AS_INDENT"
        ? " — indent with spaces"
        : " — check indentation, quotes and colons here";
  return `YAML syntax error: ${first}${hint}`;
}

/** Start offset of the node at `path` (the key, for a mapping entry), or of its nearest existing ancestor. */
function offsetOf(doc: Document, path: FieldPath): number | undefined {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (isScalar(item.key) ? item.key.value : item.key) === segment);
      if (!pair) return startOf(node) ?? offset; // a missing field: point at the object that lacks it
      offset = startOf(pair.key) ?? startOf(pair.value) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment];
      if (item === undefined) return startOf(node) ?? offset;
      offset = startOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function startOf(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** `models.assistant[0].provider` */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out;
}
