/**
 * Governance for one run: which policy requests each action makes, the hash an approval binds to, and the
 * audit entries a commit carries. Pure functions over the project, the policy engine and the run's state;
 * decide() calls them, the executor commits what they produce.
 */
import type { EventDataOf, NewEvent } from "../core/events.js";
import type { AgentDefinition, Project, ToolDefinition } from "../definitions/types.js";
import { type MemoryScopeResolution, memoryRequests, resolveMemoryScopes } from "../memory/index.js";
import { actionHash, DEFAULT_APPROVAL_TTL_MS } from "../security/approvals/index.js";
import { teamsOf } from "../security/budgets/index.js";
import { sha256Hex } from "../security/canonical.js";
import { connectorUseRequest, delegateRequest, handoffRequest, toolCallRequest } from "../security/policy/index.js";
import type { PolicyEngine, PolicyRequest } from "../security/types.js";
import type { ApprovalRecord, AuditEntryInput } from "../store/types.js";
import type { Governance } from "./decide.js";
import type { RunState, ToolCallState } from "./state.js";

export interface RunGovernanceOptions {
  project: Project;
  engine: PolicyEngine;
  workspace: string;
  runId: string;
  approvalTtlMs?: number;
}

/** The connection a tool comes from (`ledger.issue_refund` → ledger), if any. */
export function connectionOf(project: Project, toolName: string) {
  const dot = toolName.indexOf(".");
  return dot > 0 ? project.connections.get(toolName.slice(0, dot)) : undefined;
}

export function runGovernance(o: RunGovernanceOptions): Governance {
  return {
    policiesHash: o.engine.hash,
    approvalTtlMs: o.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS,
    authorize: (request) => o.engine.authorize(request),
    actionHash: (s, call, args) =>
      actionHash({ workspace: o.workspace, runId: o.runId, callKey: call.key, agent: s.agent, tool: call.name, arguments: args }),
    memoryScopes: (agent, s, tool, args) => memoryScopesFor(o.project, agent, s, tool, args),
    requestsFor(agent: AgentDefinition, s: RunState, call: ToolCallState, tool: ToolDefinition, args: unknown): PolicyRequest[] {
      const facts = { agent: s.agent, onBehalfOf: s.by, runClassification: s.classification, tainted: s.tainted.length > 0 };
      if (tool.memory) {
        const resolved = memoryScopesFor(o.project, agent, s, tool, args);
        return "error" in resolved ? [] : memoryRequests({ ...facts, clearance: agent.clearance ?? "internal" }, resolved);
      }
      if (tool.collaboration) {
        const target = tool.collaboration.agent;
        return [tool.collaboration.kind === "delegate" ? delegateRequest({ ...facts, target }) : handoffRequest({ ...facts, target })];
      }
      if (tool.context) {
        // A lookup is decided as the call of the tool that resolves the entity (decide refuses one that names none).
        const resolved = tool.context.resolve(args);
        if ("error" in resolved) return [];
        tool = resolved.tool;
        args = resolved.args;
      }
      const connection = connectionOf(o.project, tool.name);
      const own = agent.tools.find((t) => t.name === call.name)?.approval;
      const requests: PolicyRequest[] = [];
      if (connection) requests.push(connectorUseRequest({ ...facts, connection }));
      requests.push(
        toolCallRequest({
          ...facts,
          tool,
          args,
          ...(connection ? { connection: connection.name } : {}),
          ...(own ? { approvalRequired: own === "required" } : {}),
        }),
      );
      return requests;
    },
  };
}

/** The scopes a memory tool call touches, from its arguments and who the run is. */
function memoryScopesFor(
  project: Project,
  agent: AgentDefinition,
  s: RunState,
  tool: ToolDefinition,
  args: unknown,
): MemoryScopeResolution {
  const teams = teamsOf(project.teams.values(), agent.name);
  return resolveMemoryScopes(tool, args, {
    agent: agent.name,
    teams,
    onBehalfOf: s.by,
    sessionId: s.sessionId,
    runClassification: s.classification,
  });
}

/**
 * The hash an approval record binds to now, from the record itself: the store denies a decision when it differs
 * from the hash recorded at the request (the record was altered, e.g. its arguments made to look harmless).
 */
export function approvalRehash(a: ApprovalRecord): string {
  return actionHash({
    workspace: a.workspace,
    runId: a.runId,
    callKey: a.callKey ?? "",
    agent: a.agent,
    tool: a.tool,
    arguments: a.arguments,
  });
}

/** Facts about the model a response came from, for its audit entry. */
export interface ModelFacts {
  location: string;
}

/** The audit entry of a policy decision: who, what, the effect and why — the classification facts, not the arguments
 * (those stay in the run's log). Agents' and workflows' runs alike. */
export function policyDecisionEntry(runId: string, d: EventDataOf<"policy.decided">): AuditEntryInput {
  const r = d.request;
  return {
    kind: "policy.decision",
    actor: `agent:${r.agent}`,
    data: {
      run_id: runId,
      agent: r.agent,
      on_behalf_of: r.on_behalf_of,
      action: r.action,
      resource: { type: r.resource.type, id: r.resource.id },
      effect: d.effect,
      policies: d.policies,
      approval: d.approval,
      classification: r.context.classification ?? r.resource.attributes?.classification ?? null,
      run_classification: r.context.run_classification ?? null,
      tainted: r.context.tainted ?? false,
      ...(typeof r.context.amount_cents === "number" ? { amount_cents: r.context.amount_cents } : {}),
      ...(r.resource.type === "Model" ? { location: r.resource.attributes?.location ?? null } : {}),
    },
  };
}

/** The audit entry of an approval asked for, bound to the action's hash. */
export function approvalRequestedEntry(runId: string, agent: string, d: EventDataOf<"approval.requested">): AuditEntryInput {
  return {
    kind: "approval.requested",
    actor: `agent:${agent}`,
    data: {
      approval_id: d.approval_id,
      run_id: runId,
      agent,
      tool: d.tool,
      action_hash: d.action_hash ?? null,
      approver: d.approver ?? null,
      expires_at: d.expires_at ?? null,
    },
  };
}

/**
 * The audit entries for a batch of events about to be committed: decisions, approval requests, executed
 * tool calls, model use, injection findings and budget refusals. Written in the commit's own transaction.
 */
export function auditEntriesFor(s: RunState, runId: string, events: NewEvent[], model: ModelFacts | null): AuditEntryInput[] {
  const out: AuditEntryInput[] = [];
  const actor = `agent:${s.agent}`;
  for (const e of events) {
    switch (e.type) {
      case "policy.decided":
        out.push(policyDecisionEntry(runId, e.data));
        break;
      case "approval.requested":
        out.push(approvalRequestedEntry(runId, s.agent, e.data));
        break;
      case "tool.completed": {
        if (e.data.model_error) break;
        const call = s.calls.find((c) => c.id === e.data.call_id);
        if (!call?.intentCommitted) break; // refused before it ran: the decision is the record
        out.push({
          kind: "tool.executed",
          actor,
          data: {
            run_id: runId,
            agent: s.agent,
            tool: e.data.tool,
            idempotency_key: call.key,
            arguments_sha256: sha256Hex(JSON.stringify(call.arguments ?? null)),
            is_error: e.data.is_error,
            classification: e.data.classification ?? null,
          },
        });
        if (e.data.tainted && e.data.tainted.length > 0) {
          out.push({ kind: "guardrail.injection", actor, data: { run_id: runId, tool: e.data.tool, findings: e.data.tainted } });
        }
        break;
      }
      case "model.responded":
        out.push({
          kind: "model.used",
          actor,
          data: {
            run_id: runId,
            agent: s.agent,
            model: e.data.model,
            location: model?.location ?? null,
            run_classification: s.classification,
            input_tokens: e.data.usage.input_tokens,
            output_tokens: e.data.usage.output_tokens,
            cost_usd: e.data.cost_usd,
          },
        });
        break;
      case "context.compacted":
        // A model call too (it wrote the summary), on the run's data.
        out.push({
          kind: "model.used",
          actor,
          data: {
            run_id: runId,
            agent: s.agent,
            model: e.data.model,
            location: model?.location ?? null,
            run_classification: s.classification,
            input_tokens: e.data.usage.input_tokens,
            output_tokens: e.data.usage.output_tokens,
            cost_usd: e.data.cost_usd,
            purpose: "compaction",
          },
        });
        break;
      case "memory.recalled":
        // Which remembered items the agent was shown (ids and versions: the text stays in memory, erasable).
        out.push({
          kind: "memory.recalled",
          actor,
          data: { run_id: runId, agent: s.agent, scopes: e.data.scopes, items: e.data.items.map((i) => `${i.id}@${i.version}`) },
        });
        break;
      case "run.failed":
        if (e.data.error.code === "budget_exceeded") {
          out.push({ kind: "budget.blocked", actor, data: { run_id: runId, agent: s.agent, message: e.data.error.message } });
        }
        break;
      default:
        break;
    }
  }
  return out;
}
