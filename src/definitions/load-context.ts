/**
 * context/*.yaml: the kinds of business entity agents share (customer, order, invoice…), each resolved by one tool
 * of a connection or of the project. The tool's namespace is checked here; whether the connection offers it is
 * known only once it is reached (a lookup then says so).
 */
import path from "node:path";
import type { Issue } from "./errors.js";
import { readYamlFolder } from "./files.js";
import { contextFileSchema } from "./schemas.js";
import { didYouMean } from "./suggest.js";
import type { Connection, ContextEntityType, ToolDefinition } from "./types.js";

/** Served from the cache this long when a file does not say (`ttl:`). */
export const DEFAULT_CONTEXT_TTL_MS = 5 * 60_000;

export async function loadContext(
  root: string,
  tools: Map<string, ToolDefinition>,
  connections: Map<string, Connection>,
  issues: Issue[],
): Promise<Map<string, ContextEntityType>> {
  const types = new Map<string, ContextEntityType>();
  for (const { file, source, value } of await readYamlFolder(root, "context", contextFileSchema, issues)) {
    const at = (field: string) => ({ file, line: source.lineOf([field]), path: field });
    const type = value.type ?? path.basename(file).replace(/\.ya?ml$/, "");
    if (!/^[a-z][a-z0-9_-]*$/.test(type)) {
      issues.push({ ...at("type"), message: `"${type}" is not an entity type name — add type: (lowercase, e.g. customer)` });
      continue;
    }
    const earlier = types.get(type);
    if (earlier) {
      issues.push({ ...at("type"), message: `entity type "${type}" is already defined in ${earlier.file} — rename one` });
      continue;
    }
    const namespace = value.tool.includes(".") ? value.tool.slice(0, value.tool.indexOf(".")) : "";
    if (!connections.has(namespace) && !tools.has(value.tool)) {
      const known = [...connections.keys(), ...tools.keys()];
      issues.push({
        ...at("tool"),
        message: `"${value.tool}" is neither a tool of a connection in outpost.yaml nor a tool in tools/${didYouMean(namespace || value.tool, known) || ` (connections: ${[...connections.keys()].join(", ") || "none"})`}`,
      });
      continue;
    }
    types.set(type, {
      type,
      description: value.description.trim(),
      tool: value.tool,
      key: value.key,
      ttlMs: value.ttl ?? DEFAULT_CONTEXT_TTL_MS,
      ...(value.classification ? { classification: value.classification } : {}),
      file,
    });
  }
  return types;
}
