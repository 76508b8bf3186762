/**
 * The Cedar schema Outpost generates from a project's definitions: the entity types and attributes
 * the request builders (requests.ts) produce, one action per kind of agent action with its context,
 * and for tool.call a typed `arguments` record gathered from the project's tools.
 *
 * Validation is strict. Cedar 4 cannot declare an open record, so `arguments` lists every top-level
 * argument of the project's own tools (each optional: policies test `context.arguments has x`). Tools
 * from connections are known only once connected, so a policy reading one of their arguments gets a
 * warning (not an error) from `outpost validate`.
 */
import { z } from "zod";
import type { Project } from "../../definitions/types.js";
import { RESOURCE_TYPE } from "./requests.js";

type CedarType =
  | { type: "String" }
  | { type: "Long" }
  | { type: "Boolean" }
  | { type: "Set"; element: CedarType }
  | { type: "Record"; attributes: Record<string, CedarType & { required?: boolean }> };

const String_ = { type: "String" } as const;
const Long = { type: "Long" } as const;
const Bool = { type: "Boolean" } as const;
const record = (attributes: Record<string, CedarType & { required?: boolean }>): CedarType => ({ type: "Record", attributes });
const classified = { classification: String_, classification_level: Long };

const ENTITY_TYPES: Record<string, CedarType> = {
  Agent: record({ name: String_, team: String_, teams: { type: "Set", element: String_ }, clearance: String_, clearance_level: Long }),
  Tool: record({ ...classified, side_effects: Bool, connection: String_, approval_required: Bool }),
  Model: record({ location: String_ }),
  Connector: record({ ...classified, kind: String_ }),
  MemoryScope: record({ ...classified, kind: String_, owner: String_ }),
};

const BASE_CONTEXT = { on_behalf_of: String_, run_classification: String_, run_classification_level: Long, tainted: Bool };

/** The schema as Cedar's JSON schema format (namespace ""), ready for `validate` and `schemaToText`. */
export function policySchema(project: Project): Record<string, unknown> {
  const actions: Record<string, unknown> = {};
  for (const [action, resource] of Object.entries(RESOURCE_TYPE)) {
    const context =
      action === "tool.call"
        ? record({ ...BASE_CONTEXT, arguments: record(argumentAttributes(project)), amount_cents: { ...Long, required: false } })
        : record(BASE_CONTEXT);
    actions[action] = { appliesTo: { principalTypes: ["Agent"], resourceTypes: [resource], context } };
  }
  const entityTypes = Object.fromEntries(Object.entries(ENTITY_TYPES).map(([name, shape]) => [name, { shape }]));
  return { "": { entityTypes, actions } };
}

/**
 * Every top-level argument of the project's tools, optional, typed when all tools agree on its type
 * (integers and numbers are Long: floats never reach Cedar); arguments whose type differs between
 * tools, or is not a scalar, are left out.
 */
function argumentAttributes(project: Project): Record<string, CedarType & { required: false }> {
  const seen = new Map<string, CedarType | null>();
  for (const tool of project.tools.values()) {
    if (tool.collaboration) continue;
    const properties = jsonSchemaOf(tool)?.properties;
    if (!properties || typeof properties !== "object") continue;
    for (const [name, prop] of Object.entries(properties as Record<string, { type?: unknown; enum?: unknown }>)) {
      const type = cedarTypeOf(prop);
      const before = seen.get(name);
      if (before === undefined) seen.set(name, type);
      else if (before && (!type || before.type !== type.type)) seen.set(name, null);
    }
  }
  const out: Record<string, CedarType & { required: false }> = {};
  for (const [name, type] of [...seen].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (type) out[name] = { ...type, required: false };
  }
  return out;
}

function jsonSchemaOf(tool: Project["tools"] extends Map<string, infer T> ? T : never): Record<string, unknown> | undefined {
  if (tool.inputSchema) return tool.inputSchema;
  try {
    return z.toJSONSchema(tool.input, { unrepresentable: "any" }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function cedarTypeOf(prop: { type?: unknown; enum?: unknown }): CedarType | null {
  const type = Array.isArray(prop.type) ? prop.type.filter((t) => t !== "null") : [prop.type];
  if (type.length !== 1) return Array.isArray(prop.enum) && prop.enum.every((v) => typeof v === "string") ? String_ : null;
  switch (type[0]) {
    case "string":
      return String_;
    case "integer":
    case "number":
      return Long;
    case "boolean":
      return Bool;
    default:
      return null;
  }
}
