/**
 * `${name}` / `${last_tool_result.a.b}` templates, compiled once into parts so
 * rendering is a join over a few strings.
 */

/** What templates may read while a turn plays. */
export interface TemplateScope {
  /** Named groups of the dialogue's `when`, plus `input`. */
  vars: Record<string, string | undefined>;
  /** The JSON of the latest tool result (parsed lazily; `undefined` when none). */
  lastToolResult(): unknown;
  /** In a tool call with `for_each`: the element this call is for (`${item.sku}`). */
  item?: unknown;
}

/** The variable roots whose fields a template may read. */
const OBJECT_ROOTS = new Set(["last_tool_result", "item"]);

type Part = string | { root: string; path: string[] };

export interface Template {
  /** The constant text when the template has no variables. */
  readonly constant?: string;
  readonly usesToolResult: boolean;
  render(scope: TemplateScope): string;
  /** For a template that is one reference and nothing else: the value itself (a number, a list…), not its text. */
  value?(scope: TemplateScope): unknown;
}

const VAR = /\$\{([^}]*)\}/g;
const EXPR = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$/;

/** Compiles a template; `known` lists the variable roots in scope. Throws Error(message) on a bad reference. */
export function compileTemplate(source: string, known: ReadonlySet<string>): Template {
  const parts: Part[] = [];
  let last = 0;
  let usesToolResult = false;
  for (const m of source.matchAll(VAR)) {
    const expr = m[1].trim();
    if (!EXPR.test(expr)) throw new Error(`"\${${m[1]}}" is not a variable reference; write \${name} or \${last_tool_result.field}`);
    const [root, ...path] = expr.split(".");
    if (!known.has(root)) {
      throw new Error(`unknown variable \${${root}}; available here: ${[...known].map((k) => `\${${k}}`).join(", ")}`);
    }
    if (!OBJECT_ROOTS.has(root) && path.length > 0) throw new Error(`\${${expr}}: only last_tool_result and item have fields`);
    if (root === "last_tool_result") usesToolResult = true;
    if (m.index > last) parts.push(source.slice(last, m.index));
    parts.push({ root, path });
    last = m.index + m[0].length;
  }
  if (parts.length === 0) return { constant: source, usesToolResult: false, render: () => source };
  if (last < source.length) parts.push(source.slice(last));
  const only = parts.length === 1 && typeof parts[0] !== "string" ? parts[0] : undefined;
  return {
    usesToolResult,
    ...(only ? { value: (scope: TemplateScope) => resolve(only, scope) } : {}),
    render(scope) {
      let out = "";
      for (const p of parts) out += typeof p === "string" ? p : stringify(resolve(p, scope));
      return out;
    },
  };
}

function resolve(part: { root: string; path: string[] }, scope: TemplateScope): unknown {
  if (!OBJECT_ROOTS.has(part.root)) return scope.vars[part.root];
  let value = part.root === "item" ? scope.item : scope.lastToolResult();
  for (const key of part.path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
