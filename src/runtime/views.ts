/** Records from the store as the JSON-shaped views of the public API (src/core/api.ts). */
import type { ApprovalView, ArtifactView, EventView, RunTreeView, RunView } from "../core/api.js";
import type { ApprovalRecord, ArtifactRecord, RunRecord } from "../store/index.js";

export const iso = (ms: number) => new Date(ms).toISOString();

export function runView(r: RunRecord): RunView {
  return {
    id: r.id,
    workspace: r.workspace,
    agent: r.agent,
    session_id: r.sessionId,
    status: r.status,
    input: r.input,
    output: r.output,
    error: r.error,
    usage: { input_tokens: r.inputTokens, output_tokens: r.outputTokens, cost_usd: r.costUsd },
    steps: r.steps,
    waiting_for: r.status === "waiting" ? r.waitingFor : null,
    parent_run_id: r.parentRunId,
    root_run_id: r.rootRunId,
    depth: r.depth,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
    completed_at: r.completedAt === null ? null : iso(r.completedAt),
  };
}

export function eventView(runId: string, e: { seq: number; type: string; data: unknown; at: number }): EventView {
  return { run_id: runId, seq: e.seq, type: e.type, data: e.data as Record<string, unknown>, at: iso(e.at) };
}

export function approvalView(a: ApprovalRecord): ApprovalView {
  return {
    id: a.id,
    run_id: a.runId,
    agent: a.agent,
    tool: a.tool,
    arguments: a.arguments,
    status: a.status,
    reason: a.reason,
    decided_by: a.decidedBy,
    created_at: iso(a.createdAt),
    decided_at: a.decidedAt === null ? null : iso(a.decidedAt),
    expires_at: a.expiresAt === null ? null : iso(a.expiresAt),
    approver: { role: a.approverRole ?? "operator", group: a.approverGroup },
    requested_by: a.requestedBy,
    action_hash: a.actionHash,
    policies: a.policies,
  };
}

/** Nests a tree's runs (in creation order) under `rootId`. */
export function treeView(rootId: string, runs: RunRecord[]): RunTreeView {
  const nodes = new Map<string, RunTreeView>();
  for (const r of runs) nodes.set(r.id, { run: runView(r), children: [] });
  for (const r of runs) {
    if (r.id !== rootId && r.parentRunId) nodes.get(r.parentRunId)?.children.push(nodes.get(r.id) as RunTreeView);
  }
  return nodes.get(rootId) as RunTreeView;
}

export function artifactView(a: ArtifactRecord, offset: number, limit: number): ArtifactView {
  const start = Math.min(Math.max(offset, 0), a.content.length);
  const end = Math.min(start + limit, a.content.length);
  return {
    id: a.id,
    run_id: a.runId,
    call_id: a.callId,
    tool: a.tool,
    size: a.size,
    offset: start,
    content: a.content.slice(start, end),
    next_offset: end < a.content.length ? end : null,
    created_at: iso(a.createdAt),
  };
}
