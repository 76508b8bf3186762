/**
 * Building policy requests: the runtime calls these with what it has at hand, and they fix the entity
 * and context conventions policies are written against (see baseline.cedar and policySchema):
 *
 * - principal `Agent::"<name>"` {team, teams, clearance, clearance_level} — from the project (engine.ts);
 * - resources `Tool::"<name>"` {classification, classification_level, side_effects, connection, approval_required},
 *   `Agent::"<name>"` (delegate/handoff target), `Model::"<alias>/<provider>:<model>"` {location},
 *   `Connector::"<name>"` {classification, classification_level, kind}, `MemoryScope::"<scope>"` {classification,
 *   classification_level, kind, owner};
 * - context: `on_behalf_of` ("" if unknown), `run_classification`, `run_classification_level`, `tainted`; tool.call
 *   adds `arguments` (floats and nulls dropped) and, when an amount is found, `amount_cents`.
 */
import type { Classification, Connection, ModelCandidate, ToolDefinition } from "../../definitions/types.js";
import { type CedarJson, classificationLevel, type PolicyAction, type PolicyRequest } from "../types.js";

/** What every request carries about the run. */
export interface RunFacts {
  agent: string;
  /** `key:<id>` / `user:<sub>` the run acts for; null or undefined when unknown. */
  onBehalfOf?: string | null;
  /** The highest classification the run has touched (default public). */
  runClassification?: Classification;
  /** The run carries untrusted content (tool or connector output). */
  tainted?: boolean;
}

/** Tools without a classification count as internal. */
export const DEFAULT_TOOL_CLASSIFICATION: Classification = "internal";

function baseContext(facts: RunFacts): Record<string, CedarJson> {
  const run = facts.runClassification ?? "public";
  return {
    on_behalf_of: facts.onBehalfOf ?? "",
    run_classification: run,
    run_classification_level: classificationLevel(run),
    tainted: facts.tainted ?? false,
  };
}

const classified = (c: Classification) => ({ classification: c, classification_level: classificationLevel(c) });

export function toolCallRequest(
  facts: RunFacts & {
    tool: Pick<ToolDefinition, "name" | "classification" | "sideEffects" | "approval">;
    args: unknown;
    /** The connection the tool comes from ("" or undefined for project tools). */
    connection?: string;
    /** The agent's own override of the tool's approval setting. */
    approvalRequired?: boolean;
  },
): PolicyRequest {
  const args = toCedarRecord(facts.args);
  const amount = amountCents(facts.args);
  return {
    action: "tool.call",
    agent: facts.agent,
    onBehalfOf: facts.onBehalfOf ?? null,
    resource: {
      type: "Tool",
      id: facts.tool.name,
      attributes: {
        ...classified(facts.tool.classification ?? DEFAULT_TOOL_CLASSIFICATION),
        side_effects: facts.tool.sideEffects ?? true,
        connection: facts.connection ?? "",
        approval_required: facts.approvalRequired ?? facts.tool.approval === "required",
      },
    },
    context: { ...baseContext(facts), arguments: args, ...(amount !== undefined ? { amount_cents: amount } : {}) },
  };
}

function collaborationRequest(action: "agent.delegate" | "agent.handoff", facts: RunFacts & { target: string }): PolicyRequest {
  return {
    action,
    agent: facts.agent,
    onBehalfOf: facts.onBehalfOf ?? null,
    resource: { type: "Agent", id: facts.target },
    context: baseContext(facts),
  };
}

export const delegateRequest = (facts: RunFacts & { target: string }) => collaborationRequest("agent.delegate", facts);
export const handoffRequest = (facts: RunFacts & { target: string }) => collaborationRequest("agent.handoff", facts);

/** `Model::"<alias>/<provider>:<model>"`: policies can name an alias (`like "local/*"`) or a provider. */
export const modelEntityId = (alias: string, candidate: Pick<ModelCandidate, "provider" | "model">) =>
  `${alias}/${candidate.provider}:${candidate.model}`;

export function modelUseRequest(
  facts: RunFacts & { alias: string; candidate: Pick<ModelCandidate, "provider" | "model" | "location"> },
): PolicyRequest {
  return {
    action: "model.use",
    agent: facts.agent,
    onBehalfOf: facts.onBehalfOf ?? null,
    resource: { type: "Model", id: modelEntityId(facts.alias, facts.candidate), attributes: { location: facts.candidate.location } },
    context: baseContext(facts),
  };
}

export function connectorUseRequest(facts: RunFacts & { connection: Pick<Connection, "name" | "kind" | "classification"> }): PolicyRequest {
  return {
    action: "connector.use",
    agent: facts.agent,
    onBehalfOf: facts.onBehalfOf ?? null,
    resource: {
      type: "Connector",
      id: facts.connection.name,
      attributes: { ...classified(facts.connection.classification ?? DEFAULT_TOOL_CLASSIFICATION), kind: facts.connection.kind },
    },
    context: baseContext(facts),
  };
}

/**
 * `MemoryScope::"team/finance"` {kind: "team", owner: "finance", classification}: for a write, the class of what is
 * written; for a read, the most sensitive class it may return (the reader's clearance: recall returns nothing above).
 */
export function memoryRequest(
  facts: RunFacts & { action: "memory.read" | "memory.write"; scope: string; classification?: Classification },
): PolicyRequest {
  const slash = facts.scope.indexOf("/");
  const kind = slash < 0 ? facts.scope : facts.scope.slice(0, slash);
  const owner = slash < 0 ? "" : facts.scope.slice(slash + 1);
  return {
    action: facts.action,
    agent: facts.agent,
    onBehalfOf: facts.onBehalfOf ?? null,
    resource: { type: "MemoryScope", id: facts.scope, attributes: { ...classified(facts.classification ?? "internal"), kind, owner } },
    context: baseContext(facts),
  };
}

/**
 * Tool arguments as a Cedar record. Cedar has no floats or nulls: those are dropped (amounts reach policies
 * as `amount_cents`); integers outside Long range are dropped too. A non-object becomes `{}`.
 */
export function toCedarRecord(value: unknown): Record<string, CedarJson> {
  const out: Record<string, CedarJson> = {};
  if (!value || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [key, item] of Object.entries(value)) {
    const converted = toCedarValue(item);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

function toCedarValue(value: unknown): CedarJson | undefined {
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined;
  if (Array.isArray(value)) {
    // Cedar sets are homogeneous in a schema; mixed lists are kept as given (validation is the policy author's).
    return value.map(toCedarValue).filter((v): v is CedarJson => v !== undefined);
  }
  if (value && typeof value === "object") return toCedarRecord(value);
  return undefined;
}

/** The first of `amount_cents` (cents), `amount`, `amount_usd`, `total` (dollars), as whole cents. */
export function amountCents(args: unknown): number | undefined {
  if (!args || typeof args !== "object") return undefined;
  const a = args as Record<string, unknown>;
  const number = (v: unknown) =>
    typeof v === "number" && Number.isFinite(v)
      ? v
      : typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))
        ? Number(v)
        : undefined;
  const cents = number(a.amount_cents);
  if (cents !== undefined) return Math.round(cents);
  for (const key of ["amount", "amount_usd", "total"]) {
    const dollars = number(a[key]);
    if (dollars !== undefined) return Math.round(dollars * 100);
  }
  return undefined;
}

/** The kind of resource each action is asked about. */
export const RESOURCE_TYPE: Record<PolicyAction, PolicyRequest["resource"]["type"]> = {
  "tool.call": "Tool",
  "memory.read": "MemoryScope",
  "memory.write": "MemoryScope",
  "agent.delegate": "Agent",
  "agent.handoff": "Agent",
  "model.use": "Model",
  "connector.use": "Connector",
};

export const POLICY_ACTIONS: readonly PolicyAction[] = [
  "tool.call",
  "memory.read",
  "memory.write",
  "agent.delegate",
  "agent.handoff",
  "model.use",
  "connector.use",
];
