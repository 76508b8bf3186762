/**
 * The one Kysely schema shared by every store driver. Times are epoch
 * milliseconds; JSON is stored as text so SQLite and PostgreSQL read it alike.
 */
export interface SessionsTable {
  id: string;
  workspace: string;
  agent: string;
  created_at: number;
  updated_at: number;
  /** Next position for a run in this session (runs in a session execute in this order). */
  next_seq: number;
}

export interface RunsTable {
  id: string;
  workspace: string;
  agent: string;
  session_id: string;
  session_seq: number;
  status: string;
  input: string;
  output: string | null;
  error_code: string | null;
  error_message: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  steps: number;
  /** JSON of WaitingFor while status = waiting. */
  waiting_for: string | null;
  /** A waiting run becomes runnable at this time (timers). */
  wake_at: number | null;
  lease_owner: string | null;
  /** Changes on every claim: a worker whose token no longer matches cannot commit (fencing). */
  lease_token: string | null;
  lease_expires_at: number | null;
  /** Sequence number of the last committed event; commits are conditional on it. */
  last_seq: number;
  /** Set when cancel is asked while a worker holds the run; the worker sees it at its next commit. */
  cancel_requested: string | null;
  idempotency_key: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
  /** Delegation: the run that started this one, the call that did, the top of the tree (null = itself), depth from it. */
  parent_run_id: string | null;
  parent_call_id: string | null;
  root_run_id: string | null;
  depth: number;
  /** 1 once this finished child's result is in its parent's log. */
  parent_notified: number;
}

export interface EventsTable {
  run_id: string;
  seq: number;
  type: string;
  data: string;
  at: number;
  /** Event schema version. */
  v: number;
}

export interface ApprovalsTable {
  id: string;
  workspace: string;
  run_id: string;
  call_id: string;
  agent: string;
  tool: string;
  arguments: string;
  status: string;
  reason: string | null;
  decided_by: string | null;
  created_at: number;
  decided_at: number | null;
}

export interface ArtifactsTable {
  id: string;
  workspace: string;
  run_id: string;
  root_run_id: string;
  call_id: string;
  tool: string;
  content: string;
  size: number;
  created_at: number;
}

export interface Database {
  sessions: SessionsTable;
  runs: RunsTable;
  events: EventsTable;
  approvals: ApprovalsTable;
  artifacts: ArtifactsTable;
}
