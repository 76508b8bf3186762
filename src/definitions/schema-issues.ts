/**
 * Turns zod issues into Issues for people: located (file:line) by the YAML
 * syntax tree, phrased as "what is wrong — how to fix it", with "did you mean"
 * for misspelt field names and enum values.
 */
import type { z } from "zod";
import type { Issue } from "./errors.js";
import { didYouMean } from "./suggest.js";
import { type FieldPath, formatPath, type YamlSource } from "./yaml-source.js";

type ZodIssue = z.core.$ZodIssue;
type Path = Array<string | number>;

/** Validates `source.data` against `schema`; returns the output or the located issues. */
export function checkYaml<T>(source: YamlSource, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; issues: Issue[] } {
  const result = schema.safeParse(source.data, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues.flatMap((issue) => describe(issue, [], schema, source));
  return { ok: false, issues };
}

function describe(issue: ZodIssue, prefix: Path, root: z.ZodType, source: YamlSource): Issue[] {
  const path: Path = [...prefix, ...(issue.path as Path)];
  const at = (fieldPath: Path, message: string): Issue => ({
    file: source.file,
    line: source.lineOf(fieldPath),
    path: formatPath(fieldPath),
    message,
  });

  switch (issue.code) {
    case "invalid_union": {
      const branch = pickBranch(issue.errors as ZodIssue[][]);
      if (branch) return branch.flatMap((inner) => describe(inner, path, root, source));
      const expected = issue.errors.map((branchIssues) => {
        const first = branchIssues[0];
        return expectedName(first?.code === "invalid_type" ? first.expected : "");
      });
      return [at(path, `expected ${unique(expected).join(" or ")}, got ${inputName(issue.input)}`)];
    }
    case "unrecognized_keys": {
      const known = knownKeys(root, path);
      return issue.keys.map((key) => {
        const hint = didYouMean(key, known) || (known.length ? ` — remove it (known fields: ${known.join(", ")})` : "");
        return at([...path, key], `unknown field "${key}"${hint}`);
      });
    }
    case "invalid_type": {
      if (path.length === 0) {
        const fields = knownKeys(root, []).join(", ");
        const what = issue.input === undefined || issue.input === null ? "the file is empty" : `got ${inputName(issue.input)}`;
        return [at(path, `${what} — expected a mapping with the fields ${fields}`)];
      }
      if (issue.input === undefined) {
        const field = path[path.length - 1];
        return [at(path, `missing required field "${String(field)}"`)];
      }
      return [at(path, `expected ${expectedName(issue.expected)}, got ${inputName(issue.input)}`)];
    }
    case "invalid_value": {
      const values = issue.values.map((value) => (typeof value === "string" ? value : JSON.stringify(value)));
      const got = `(got ${inputName(issue.input)})`;
      if (values.length === 1) return [at(path, `must be ${values[0]} ${got}`)];
      const hint = typeof issue.input === "string" ? didYouMean(issue.input, values) : "";
      return [at(path, `must be one of ${values.join(", ")} ${got}${hint}`)];
    }
    case "invalid_key":
      return issue.issues.map((inner) => at(path, `invalid name "${String(path[path.length - 1])}": ${inner.message}`));
    case "too_small":
      return [at(path, sizeMessage(issue, "small"))];
    case "too_big":
      return [at(path, sizeMessage(issue, "big"))];
    default:
      return [at(path, issue.message)];
  }
}

/** In a union every branch fails; the one that got past the type check describes the real mistake. */
function pickBranch(branches: ZodIssue[][]): ZodIssue[] | undefined {
  const typeMatched = branches.filter((issues) => !issues.some((issue) => issue.code === "invalid_type" && issue.path.length === 0));
  if (typeMatched.length === 0) return undefined;
  return typeMatched.reduce((best, issues) => (issues.length < best.length ? issues : best));
}

function sizeMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, side: "small" | "big"): string {
  const limit = Number("minimum" in issue ? issue.minimum : issue.maximum);
  const got = `(got ${inputName(issue.input)})`;
  switch (issue.origin) {
    case "string":
      return side === "small" && limit === 1
        ? "must not be empty"
        : `must be at ${side === "small" ? "least" : "most"} ${limit} characters`;
    case "array":
      return side === "small" ? `must list at least ${limit} ${limit === 1 ? "entry" : "entries"}` : `must list at most ${limit} entries`;
    default: {
      if (side === "small") return issue.inclusive ? `must be at least ${limit} ${got}` : `must be greater than ${limit} ${got}`;
      return issue.inclusive ? `must be at most ${limit} ${got}` : `must be less than ${limit} ${got}`;
    }
  }
}

function expectedName(expected: string): string {
  switch (expected) {
    case "string":
      return "text";
    case "number":
      return "a number";
    case "int":
      return "a whole number";
    case "boolean":
      return "true or false";
    case "object":
      return "a mapping";
    case "array":
      return "a list";
    default:
      return expected || "something else";
  }
}

export function inputName(input: unknown): string {
  if (input === null || input === undefined) return "nothing";
  if (typeof input === "string") return JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input);
  if (Array.isArray(input)) return "a list";
  if (typeof input === "object") return "a mapping";
  return String(input);
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

// ---------------------------------------------------------------------------
// Walking a schema to find the fields an object may have (for "unknown field").

interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}

const defOf = (schema: z.ZodType): SchemaDef => (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;

/** Field names of the object schema at `path`, or [] when there is none. */
export function knownKeys(schema: z.ZodType, path: FieldPath): string[] {
  const found = objectAt(schema, path);
  return found ? Object.keys(found) : [];
}

function objectAt(schema: z.ZodType | undefined, path: FieldPath): Record<string, z.ZodType> | undefined {
  if (!schema) return undefined;
  const def = defOf(schema);
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
    case "catch":
      return objectAt(def.innerType, path);
    case "pipe":
      return objectAt(def.in, path);
    case "lazy":
      return objectAt(def.getter?.(), path);
    case "union":
      for (const option of def.options ?? []) {
        const found = objectAt(option, path);
        if (found) return found;
      }
      return undefined;
  }
  if (path.length === 0) return def.type === "object" ? def.shape : undefined;
  const [head, ...rest] = path;
  if (def.type === "object" && typeof head === "string") return objectAt(def.shape?.[head], rest);
  if (def.type === "array" && typeof head === "number") return objectAt(def.element, rest);
  if (def.type === "record" && typeof head === "string") return objectAt(def.valueType, rest);
  return undefined;
}
