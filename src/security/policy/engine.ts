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

  const texts = set.policies.map((p) => p.text);
  const usedArguments = argumentsUsed(texts);
  const used = {
    principal: attributesUsed(texts, "principal"),
    resource: attributesUsed(texts, "resource"),
    context: attributesUsed(texts, "context"),
  };
  const cache = new Map<string, PolicyDecision>();

  /**
   * Decisions are pure functions of the request while the policies stay loaded, so an identical request is answered
   * from memory (a run asks the same model.use and connector.use at every step). Crossing into Cedar's WebAssembly
   * costs far more than its evaluation — the entities and context are converted on every call — so the context
   * carries only the tool arguments some policy reads.
   */
  const authorize = (request: PolicyRequest): PolicyDecision => {
    const trimmed = trimArguments(request, usedArguments);
    const key = JSON.stringify([trimmed.action, trimmed.agent, trimmed.onBehalfOf, trimmed.resource, trimmed.context]);
    const hit = cache.get(key);
    if (hit) return hit;
    const decision = evaluate(trimmed);
    if (cache.size >= DECISION_CACHE_SIZE) cache.delete(cache.keys().next().value as string); // oldest first
    cache.set(key, decision);
    return decision;
  };

  const evaluate = (request: PolicyRequest): PolicyDecision => {
    try {
      const principal = { type: "Agent", id: request.agent };
      const resource = { type: request.resource.type, id: request.resource.id };
      const entities = [{ uid: principal, attrs: pick(agentAttributes(request.agent), used.principal), parents: [] }];
      if (resource.type !== "Agent") {
        entities.push({
          uid: resource,
          attrs: pick({ ...resourceDefaults(project, request.resource), ...request.resource.attributes }, used.resource),
          parents: [],
        });
      } else if (resource.id !== request.agent) {
        entities.push({ uid: resource, attrs: pick(agentAttributes(resource.id), used.resource), parents: [] });
      } else {
        // Delegating to itself: one entity is both principal and resource, so it carries what either is read for.
        entities[0] = { uid: principal, attrs: pick(agentAttributes(request.agent), union(used.principal, used.resource)), parents: [] };
      }
      const answer = cedar.statefulIsAuthorized({
        principal,
        action: { type: "Action", id: request.action },
        resource,
        context: pick({ ...request.context, on_behalf_of: request.onBehalfOf ?? "" }, used.context),
        entities,
        preparsedPolicySetId: setId,
      });
      if (answer.type === "failure")
        return deny(
          [],
          answer.errors.map((e) => e.message),
        );
      const { decision, diagnostics } = answer.response;
      // Sorted: Cedar's order of reasons follows the policy set's internals, and decisions are recorded and compared.
      diagnostics.reason.sort();
      const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
      if (decision === "deny") return deny(diagnostics.reason, errors);
      return { effect: "allow", policies: diagnostics.reason, approval: approvalOf(diagnostics.reason, byId), errors };
    } catch (error) {
      return deny([], [`policy evaluation failed: ${(error as Error).message}`]);
    }
  };
  return { authorize, hash: set.hash, policies: set.policies };
}

const DECISION_CACHE_SIZE = 10_000;

/**
 * The tool arguments policies read (`context.arguments.x`, `["x"]`, `has x`, `context has arguments.x`); null = all
 * of them. Any other mention of `arguments` (`context["arguments"]`, the record as a whole) keeps every argument: a
 * policy reading a trimmed argument would fail to evaluate, and a forbid that fails does not count.
 */
export function argumentsUsed(texts: string[]): Set<string> | null {
  const names = new Set<string>();
  for (const text of texts) {
    const code = stripComments(text);
    for (const m of code.matchAll(/\barguments\b/g)) {
      const before = code.slice(0, m.index);
      const after = code.slice(m.index);
      if (/context\s*\.\s*$/.test(before)) {
        const use = after.match(/^arguments(?:\s*\.\s*([A-Za-z_]\w*)|\s*\[\s*"([^"]*)"\s*\]|\s+has\s+([A-Za-z_]\w*)|\s+has\s+"([^"]*)")/);
        const name = use?.[1] ?? use?.[2] ?? use?.[3] ?? use?.[4];
        if (name === undefined) return null; // the record as a whole: keep every argument
        names.add(name);
      } else if (/\bcontext\s+has\s+$/.test(before)) {
        const path = after.match(/^arguments\s*\.\s*([A-Za-z_]\w*)/);
        if (path?.[1] !== undefined) names.add(path[1]); // `context has arguments` alone reads no argument
      } else {
        return null;
      }
    }
  }
  return names;
}

/** Cedar source without its `//` comments; a `//` inside a string (a URL) is not one. */
function stripComments(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|\/\/[^\n]*/g, (m) => (m.startsWith('"') ? m : ""));
}

/**
 * The attributes of `principal`, `resource` or `context` that some policy reads (`.x`, `["x"]`, `has x`); null when
 * one uses the whole record, or names it some other way — then everything is passed.
 */
export function attributesUsed(texts: string[], variable: "principal" | "resource" | "context"): Set<string> | null {
  const names = new Set<string>();
  const pattern = new RegExp(
    `\\b${variable}\\b(\\s*(?:\\.\\s*([A-Za-z_]\\w*)|\\[\\s*"([^"]*)"\\s*\\]|has\\s+([A-Za-z_]\\w*)|has\\s+"([^"]*)"))?`,
    "g",
  );
  for (const text of texts) {
    const code = stripComments(text).replace(/"(?:[^"\\]|\\.)*"/g, (q) => (q.includes(variable) ? '""' : q));
    for (const m of code.matchAll(pattern)) {
      const name = m[2] ?? m[3] ?? m[4] ?? m[5];
      if (name !== undefined) {
        names.add(name);
        continue;
      }
      // A bare mention: the scope (`principal,` `resource is Tool`, `principal ==`), or the whole record in a condition.
      const after = code.slice((m.index ?? 0) + m[0].length).trimStart();
      const scopeUse = /^(,|\)|is\b|==|in\b)/.test(after);
      if (!scopeUse || variable === "context") return null;
    }
  }
  return names;
}

function union(a: Set<string> | null, b: Set<string> | null): Set<string> | null {
  return a === null || b === null ? null : new Set([...a, ...b]);
}

function pick(attrs: Record<string, CedarJson>, names: Set<string> | null): Record<string, CedarJson> {
  if (names === null) return attrs;
  const out: Record<string, CedarJson> = {};
  for (const name of names) if (name in attrs) out[name] = attrs[name] as CedarJson;
  return out;
}

function trimArguments(request: PolicyRequest, used: Set<string> | null): PolicyRequest {
  const args = request.context.arguments;
  if (used === null || !args || typeof args !== "object" || Array.isArray(args)) return request;
  const kept: Record<string, CedarJson> = {};
  for (const name of used) if (name in args) kept[name] = (args as Record<string, CedarJson>)[name];
  return { ...request, context: { ...request.context, arguments: kept } };
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
  // Sorted: the order Cedar lists reasons in is not part of its contract, and the list is recorded in the log.
  return { role: chosen.approval?.role ?? "operator", group: chosen.approval?.group ?? null, policies: asking.map((p) => p.id).sort() };
}

/** `Agent::"<name>"`: its name, its teams (the first as `team`, "" if none) and clearance (default internal). */
export function agentEntityAttributes(project: Project, name: string): Record<string, CedarJson> {
  // A workflow acts as `Agent::"workflow:<name>"`, with the team and clearance its definition names.
  const workflow = name.startsWith("workflow:") ? project.workflows?.get(name.slice("workflow:".length)) : undefined;
  if (workflow) {
    const clearance = workflow.clearance;
    const teams = workflow.team ? [workflow.team] : [];
    return { name, team: workflow.team ?? "", teams, clearance, clearance_level: classificationLevel(clearance) };
  }
  const teams = [...project.teams.values()].filter((t) => t.lead === name || t.members.includes(name)).map((t) => t.name);
  const clearance = project.agents.get(name)?.clearance ?? "internal";
  return { name, team: teams[0] ?? "", teams, clearance, clearance_level: classificationLevel(clearance) };
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
    case "MemoryScope": {
      const slash = resource.id.indexOf("/");
      return {
        classification: "internal",
        classification_level: classificationLevel("internal"),
        kind: slash < 0 ? resource.id : resource.id.slice(0, slash),
        owner: slash < 0 ? "" : resource.id.slice(slash + 1),
      };
    }
    default:
      return { classification: "internal", classification_level: classificationLevel("internal") };
  }
}
