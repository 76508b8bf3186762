/**
 * The public face of a running Outpost, as plain JSON-shaped views.
 *
 * One interface, two implementations: the in-process runtime (embedded use,
 * the CLI on a local store) and the HTTP client (`--server URL`). The HTTP API
 * serves exactly these shapes, so the CLI, the SDK and the server agree by
 * construction.
 */

export type RunStatus = "queued" | "running" | "waiting" | "completed" | "failed" | "cancelled";
export const TERMINAL_STATUSES: readonly RunStatus[] = ["completed", "failed", "cancelled"];
export const isTerminal = (s: RunStatus) => s === "completed" || s === "failed" || s === "cancelled";

export interface UsageView {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export type WaitingFor =
  | { kind: "approval"; approval_id: string /** when it expires (a denial) unless decided */; expires_at?: string }
  | { kind: "timer"; until: string /** set when the run waits to retry this tool's call (its system was away) */; retry?: string }
  | { kind: "event"; event: string }
  | { kind: "children"; run_ids: string[]; mode: "all" | "fail_fast" }
  /** A workflow waiting on several steps at once: woken by the first. */
  | { kind: "any"; approvals: string[]; events: string[]; run_ids: string[]; until?: string };

export interface RunView {
  id: string;
  workspace: string;
  agent: string;
  session_id: string;
  status: RunStatus;
  input: string;
  output: string | null;
  error: { code: string; message: string } | null;
  usage: UsageView;
  steps: number;
  waiting_for: WaitingFor | null;
  /** Set on runs started by another run's delegation. */
  parent_run_id: string | null;
  /** The run at the top of this run's delegation tree (itself, for a top-level run). */
  root_run_id: string;
  /** 0 for a top-level run, 1 for its children, … */
  depth: number;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

export interface EventView {
  run_id: string;
  /** Position in the run's log, from 1. Live streams also carry transient events that are not
   * in the log (`model.delta`, streamed text): those have seq -1 and must not be used to resume. */
  seq: number;
  type: string;
  data: Record<string, unknown>;
  at: string;
}

/** A run and the runs it delegated to, recursively. */
export interface RunTreeView {
  run: RunView;
  children: RunTreeView[];
}

/** A large tool output kept aside; the model saw a preview and pages through the rest with `artifacts.read`. */
export interface ArtifactView {
  id: string;
  run_id: string;
  call_id: string;
  tool: string;
  size: number;
  offset: number;
  content: string;
  /** Offset of the next page, or null at the end. */
  next_offset: number | null;
  created_at: string;
}

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired";

export interface ApprovalView {
  id: string;
  run_id: string;
  agent: string;
  tool: string;
  arguments: unknown;
  status: ApprovalStatus;
  reason: string | null;
  decided_by: string | null;
  created_at: string;
  decided_at: string | null;
  /** After this the request is denied (expired) unless decided. */
  expires_at: string | null;
  /** Who may decide it: a role and, if set, a group (e.g. operator of finance). */
  approver: { role: string; group: string | null };
  /** Who the run acts for: they cannot approve it themselves. */
  requested_by: string | null;
  /** SHA-256 binding the approval to the exact action (agent, tool, arguments, run, step). */
  action_hash: string | null;
  policies: string[];
}

export interface SessionMessageView {
  role: "user" | "assistant";
  content: string;
  run_id: string;
  at: string;
}

export interface SessionView {
  id: string;
  workspace: string;
  agent: string;
  created_at: string;
  messages: SessionMessageView[];
}

export interface AgentView {
  name: string;
  description: string;
  model: string;
  instructions: string;
  /** The team the agent belongs to (its first, if several). */
  team: string | null;
  /** Reachable from other teams and through the open endpoints (MCP, A2A). */
  exposed: boolean;
  tools: { name: string; description: string; approval: "required" | "none" }[];
  limits: { max_steps: number; max_tokens: number; max_usd: number; max_wall_time_ms: number };
}

export interface StartRunRequest {
  /** Omitted when continuing a session: the agent now holding that conversation (after handoffs) answers. */
  agent?: string;
  input: string;
  session_id?: string;
  /** A retried request with the same key returns the same run. */
  idempotency_key?: string;
  /** Earlier turns of a conversation kept by the caller (OpenAI-style clients resend them each time):
   * the agent sees them before `input`. Recorded in the run's log. */
  context?: ContextMessage[];
}

export interface ContextMessage {
  role: "user" | "assistant";
  content: string;
}

export interface ListRunsRequest {
  agent?: string;
  status?: RunStatus;
  session_id?: string;
  limit?: number;
  /** Opaque cursor from a previous page (`next_cursor`). */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface OutpostApi {
  health(): Promise<{ status: "ok"; version: string; store: "sqlite" | "postgres" }>;
  listAgents(): Promise<AgentView[]>;
  getAgent(name: string): Promise<AgentView>;
  startRun(request: StartRunRequest): Promise<RunView>;
  getRun(id: string): Promise<RunView>;
  listRuns(request?: ListRunsRequest): Promise<Page<RunView>>;
  getEvents(runId: string, after?: number): Promise<EventView[]>;
  /** Every event after `after`, then live ones, ending once the run is terminal. */
  streamEvents(runId: string, options?: { after?: number; signal?: AbortSignal }): AsyncIterable<EventView>;
  cancelRun(id: string, reason?: string): Promise<RunView>;
  /** Deliver an external event to a run (wakes it if it waits for that event name). */
  sendEvent(runId: string, event: { name: string; payload?: unknown }): Promise<RunView>;
  listApprovals(request?: { status?: ApprovalStatus }): Promise<ApprovalView[]>;
  decideApproval(id: string, decision: { decision: "approve" | "deny"; reason?: string; by?: string }): Promise<ApprovalView>;
  getSession(id: string): Promise<SessionView>;
  /** The run with its delegated children, grandchildren, … */
  getRunTree(id: string): Promise<RunTreeView>;
  getArtifact(id: string, page?: { offset?: number; limit?: number }): Promise<ArtifactView>;
}
