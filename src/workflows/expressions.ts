/**
 * `{{ expression }}` in workflow values, evaluated with JSONata (a query and transformation language for JSON:
 * `steps.reconcile.output.mismatches`, `$count(x) > 0`, `$sum(lines.amount_cents)`) over the run's scope:
 * `input`, `steps.<id>.output`, and inside a loop its item (`item` unless `as:` names it) and `index`.
 *
 * A string that is one expression and nothing else gives the expression's value (an object stays an object); a
 * string with text around expressions gives text (non-strings as JSON). Evaluated once per step by the executor and
 * recorded in the step's event, so a resumed run reads what was evaluated, never evaluates again.
 */
import jsonata from "jsonata";

export type Scope = Record<string, unknown>;

const EXPRESSION = /\{\{([\s\S]*?)\}\}/g;
const WHOLE = /^\s*\{\{([\s\S]*?)\}\}\s*$/;

/** Why `text` (a template, or a bare expression where one is expected) cannot be evaluated; null when it can. */
export function expressionProblem(text: string): string | null {
  const parts = [...text.matchAll(EXPRESSION)].map((m) => m[1]);
  for (const source of parts.length > 0 ? parts : [text]) {
    try {
      jsonata(source);
    } catch (err) {
      const e = err as { message?: string; position?: number };
      return `${JSON.stringify(source.trim())} is not a valid expression: ${e.message ?? String(err)}${e.position !== undefined ? ` (at character ${e.position})` : ""}`;
    }
  }
  return null;
}

/** Every string in `value` (deeply) with its expressions evaluated. */
export async function render(value: unknown, scope: Scope): Promise<unknown> {
  if (typeof value === "string") return renderText(value, scope);
  if (Array.isArray(value)) return Promise.all(value.map((v) => render(v, scope)));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await render(v, scope);
    return out;
  }
  return value;
}

async function renderText(text: string, scope: Scope): Promise<unknown> {
  const whole = WHOLE.exec(text);
  if (whole && !whole[1].includes("{{")) return evaluate(whole[1], scope);
  let out = "";
  let last = 0;
  for (const m of text.matchAll(EXPRESSION)) {
    out += text.slice(last, m.index);
    const v = await evaluate(m[1], scope);
    out += typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v);
    last = (m.index ?? 0) + m[0].length;
  }
  return out + text.slice(last);
}

/** A condition or list: `{{ e }}` or a bare `e`. */
export async function evaluateExpression(text: string, scope: Scope): Promise<unknown> {
  const whole = WHOLE.exec(text);
  return evaluate(whole ? whole[1] : text, scope);
}

/** JSONata's truthiness is JavaScript's for what workflows compare: empty arrays and missing values are false. */
export function truthy(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : Boolean(v);
}

async function evaluate(source: string, scope: Scope): Promise<unknown> {
  let result: unknown;
  try {
    result = await jsonata(source).evaluate(scope);
  } catch (err) {
    throw new ExpressionError(source.trim(), (err as Error)?.message ?? String(err));
  }
  // JSONata marks sequences with extra properties: plain JSON out, undefined (nothing matched) as null.
  return result === undefined ? null : JSON.parse(JSON.stringify(result));
}

export class ExpressionError extends Error {
  constructor(
    readonly expression: string,
    reason: string,
  ) {
    super(`the expression ${JSON.stringify(expression)} failed: ${reason}`);
  }
}
