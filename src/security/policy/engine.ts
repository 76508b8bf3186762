/**
 * The policy engine: Cedar over the project's policies, parsed once (preparsePolicySet) and then
 * evaluated per request without re-parsing (statefulIsAuthorized). Default deny; a satisfied forbid
 * beats every permit; a satisfied permit with `@approval` makes the action wait for that person.
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { ProjectError } from "../../definitions/index.js";
import type { Project } from "../../definitions/types.js";
import { type CedarJson, classificationLevel, type PolicyDecision, type PolicyEngine, type PolicyRequest } from "../types.js";
import { type LoadedPolicy, loadPolicySet } from "./policy-set.js";
import { DEFAULT_TOOL_CLASSIFICATION } from "./requests.js";

export interface ProjectPolicyEngine extends PolicyEngine {
  /** The policies in force, baseline first, in file order. */
  readonly policies: readonly LoadedPolicy[];
}

/** Builds the engine for a project; throws ProjectError (file:line problems) when its policies cannot be used. */
export function createPolicyEngine(project: Project): ProjectPolicyEngine {
  const set = loadPolicySet(project);
  if (set.issues.length > 0) throw new ProjectError(project.root, set.issues);
  const setId = `outpost:${set.hash}`;
  const staticPolicies = Object.fromEntries(set.policies.map((p) => [p.id, p.text]));
  const parsed = cedar.preparsePolicySet(setId, { staticPolicies });
  if (parsed.type === "failure") {
    throw new ProjectError(project.root, [{ file: ".", path: "", message: parsed.errors.map((e) => e.message).join("; ") }]);
  }
  const byId = new Map(set.policies.map((p) => [p.id, p]));
  const principals = new Map<string, Record<string, CedarJson>>();
  const agentAttributes = (name: string) => {
    let attrs = principals.get(name);
    if (!attrs) {
      attrs = agentEntityAttributes(project, name);
      principals.set(name, attrs);
    }
    return attrs;
  };

  const authorize = (request: PolicyRequest): PolicyDecision => {
    try {
      const principal = { type: "Agent", id: request.agent };
      const resource = { type: request.resource.type, id: request.resource.id };
      const entities = [{ uid: principal, attrs: agentAttributes(request.agent), parents: [] }];
      if (resource.type !== "Agent") {
        entities.push({
          uid: resource,
          attrs: { ...resourceDefaults(project, request.resource), ...request.resource.attributes },
          parents: [],
        });
      } else if (resource.id !== request.agent) {
        entities.push({ uid: resource, attrs: agentAttributes(resource.id), parents: [] });
      }
      const answer = cedar.statefulIsAuthorized({
        principal,
        action: { type: "Action", id: request.action },
        resource,
        context: { ...request.context, on_behalf_of: request.onBehalfOf ?? "" },
        entities,
        preparsedPolicySetId: setId,
      });
      if (answer.type === "failure")
        return deny(
          [],
          answer.errors.map((e) => e.message),
        );
      const { decision, diagnostics } = answer.response;
      const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
      if (decision === "deny") return deny(diagnostics.reason, errors);
      return { effect: "allow", policies: diagnostics.reason, approval: approvalOf(diagnostics.reason, byId), errors };
    } catch (error) {
      return deny([], [`policy evaluation failed: ${(error as Error).message}`]);
    }
  };
  return { authorize, hash: set.hash, policies: set.policies };
}

const deny = (policies: string[], errors: string[]): PolicyDecision => ({ effect: "deny", policies, approval: null, errors });

/**
 * Every satisfied permit's `@approval` counts. The role and group asked for are the first that names a
 * group (the narrower ask), else the first; all such policies are listed.
 */
function approvalOf(reasons: string[], byId: Map<string, LoadedPolicy>): PolicyDecision["approval"] {
  const asking = reasons.map((id) => byId.get(id)).filter((p): p is LoadedPolicy => Boolean(p?.approval));
  if (asking.length === 0) return null;
  const chosen = (asking.find((p) => p.approval?.group) ?? asking[0]) as LoadedPolicy;
  return { role: chosen.approval?.role ?? "operator", group: chosen.approval?.group ?? null, policies: asking.map((p) => p.id) };
}

/** `Agent::"<name>"`: its teams (the first as `team`, "" if none) and clearance (default internal). */
export function agentEntityAttributes(project: Project, name: string): Record<string, CedarJson> {
  const teams = [...project.teams.values()].filter((t) => t.lead === name || t.members.includes(name)).map((t) => t.name);
  const clearance = project.agents.get(name)?.clearance ?? "internal";
  return { team: teams[0] ?? "", teams, clearance, clearance_level: classificationLevel(clearance) };
}

/** A resource's attributes when the request does not carry them: from the project's definitions. */
function resourceDefaults(project: Project, resource: PolicyRequest["resource"]): Record<string, CedarJson> {
  switch (resource.type) {
    case "Tool": {
      const tool = project.tools.get(resource.id);
      const namespace = resource.id.includes(".") ? resource.id.slice(0, resource.id.indexOf(".")) : "";
      const connection = tool ? undefined : project.connections.get(namespace);
      const classification = tool?.classification ?? connection?.classification ?? DEFAULT_TOOL_CLASSIFICATION;
      return {
        classification,
        classification_level: classificationLevel(classification),
        side_effects: tool?.sideEffects ?? true,
        connection: connection?.name ?? "",
        approval_required: tool?.approval === "required",
      };
    }
    case "Connector": {
      const connection = project.connections.get(resource.id);
      const classification = connection?.classification ?? DEFAULT_TOOL_CLASSIFICATION;
      return { classification, classification_level: classificationLevel(classification), kind: connection?.kind ?? "" };
    }
    case "Model": {
      const slash = resource.id.indexOf("/");
      const alias = slash < 0 ? resource.id : resource.id.slice(0, slash);
      const rest = slash < 0 ? "" : resource.id.slice(slash + 1);
      const candidate = project.models.get(alias)?.candidates.find((c) => `${c.provider}:${c.model}` === rest);
      // Unknown models count as external: the safe side for the restricted-data rule.
      return { location: candidate?.location ?? "external" };
    }
    default:
      return { classification: "internal", classification_level: classificationLevel("internal") };
  }
}
