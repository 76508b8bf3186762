/**
 * The one Kysely schema shared by every store driver. Times are epoch
 * milliseconds; JSON is stored as text so SQLite and PostgreSQL read it alike.
 */
import type { Generated } from "kysely";

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
  /** Who the run acts on behalf of (a person or key id); children inherit it. */
  started_by: string | null;
}

export interface EventsTable {
  run_id: string;
  seq: number;
  type: string;
  data: string;
  at: number;
  /** Event schema version. */
  v: number;
  /** The lease (one worker's claim of the run) the event was committed under; null for events a request appended.
   * Fencing makes a run's leases follow each other, never interleave: the log shows who held it when. */
  lease?: string | null;
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
  /** The call's idempotency key (run, step, call): part of what is approved. */
  call_key: string | null;
  /** SHA-256 of the exact action approved (agent, tool, arguments, run, call key): a changed action is a denial. */
  action_hash: string | null;
  expires_at: number | null;
  /** Who the run acts for: never allowed to approve it. */
  requested_by: string | null;
  /** The role and group (e.g. operator / finance) an approver must hold. */
  approver_role: string | null;
  approver_group: string | null;
  /** JSON array of the policy ids that required the approval. */
  policies: string | null;
  /** Set when the approved action was executed: an approval is used once. */
  used_at: number | null;
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

export interface WorkspacesTable {
  id: string;
  display_name: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  workspace: string;
  name: string;
  /** The first characters of the key, shown in listings to recognise it. */
  prefix: string;
  /** SHA-256 hex of the whole key: the key itself is never stored. */
  hash: string;
  /** JSON arrays. */
  roles: string;
  groups: string;
  created_by: string | null;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
  revoked_at: number | null;
}

/** Audit entries written with the change they record (same transaction), waiting to be chained in order. */
export interface AuditOutboxTable {
  id: string;
  workspace: string;
  at: number;
  kind: string;
  actor: string;
  run_id: string | null;
  data: string;
}

/** The per-workspace hash chain: hash = SHA-256(prev_hash ‖ RFC 8785 canonical JSON of the entry). */
export interface AuditLogTable {
  workspace: string;
  seq: number;
  at: number;
  kind: string;
  actor: string;
  run_id: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/** Ed25519 signatures over the chain head at `seq`. */
export interface AuditCheckpointsTable {
  workspace: string;
  seq: number;
  hash: string;
  signature: string;
  key_id: string;
  at: number;
}

/** AES-256-GCM ciphertexts (base64); the key lives outside the database. */
export interface SecretsTable {
  workspace: string;
  name: string;
  ciphertext: string;
  nonce: string;
  tag: string;
  key_id: string;
  created_at: number;
  updated_at: number;
  updated_by: string | null;
}

/** Spend per scope (workspace, team:x, agent:y) and period (day:2026-11-26, month:2026-11, total). */
export interface BudgetCountersTable {
  workspace: string;
  scope: string;
  period: string;
  usd_spent: number;
  usd_reserved: number;
  tokens_spent: number;
  tokens_reserved: number;
  updated_at: number;
}

/** Held before a model call, settled after it; an old one left by a crash is released by the sweeper. */
export interface BudgetReservationsTable {
  id: string;
  workspace: string;
  run_id: string;
  /** JSON array of [scope, period] pairs the reservation counts against. */
  counters: string;
  usd: number;
  tokens: number;
  created_at: number;
}

/** A remembered fact, a knowledge chunk or a cached context entity, in one scope (memory/). The current version. */
export interface MemoryItemsTable {
  /** Labels the item in the full-text (FTS5 rowid) and vector indexes. */
  num: Generated<number>;
  id: string;
  workspace: string;
  /** `workspace`, `team/<name>`, `agent/<name>`, `user/<id>`, `session/<id>`. */
  scope: string;
  /** `fact` | `knowledge`. */
  kind: string;
  /** What it is about, e.g. `customer:1042`; erasure works by it. */
  subject: string | null;
  /** With subject and scope: a new item with the same key supersedes this one. */
  key: string | null;
  text: string;
  /** JSON array. */
  tags: string;
  classification: string;
  /** JSON MemorySource: the run, step and tool, the person, or the file that wrote it. */
  source: string;
  author: string;
  version: number;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  write_key: string | null;
}

/** Earlier versions of memory items (the current one is in memory_items). */
export interface MemoryVersionsTable {
  item_id: string;
  version: number;
  workspace: string;
  scope: string;
  subject: string | null;
  key: string | null;
  text: string;
  tags: string;
  classification: string;
  source: string;
  author: string;
  written_at: number;
  expires_at: number | null;
  superseded_at: number;
  superseded_by: string;
  write_key: string | null;
}

/** One embedding per item (float32, unit length), tagged with the embedder that made it. */
export interface MemoryVectorsTable {
  num: number;
  workspace: string;
  embedder: string;
  vector: Uint8Array;
}

/** Business context (context/*.yaml): an entity fetched through its connector tool, cached with its source and age. */
export interface ContextEntitiesTable {
  workspace: string;
  type: string;
  entity_id: string;
  subject: string;
  /** The tool's answer (JSON text). */
  data: string;
  classification: string;
  /** JSON: the tool, and the run that fetched it. */
  source: string;
  fetched_at: number;
}

/** A trigger's state: a schedule's cursor, the last occurrence it has dealt with (fired or skipped). */
export interface TriggerStateTable {
  workspace: string;
  /** `schedule:<agent>/<name>`, `webhook:<name>`. */
  trigger: string;
  cursor: number;
  updated_at: number;
}

/** One firing of a trigger: unique by its key within the trigger (an occurrence, a delivery id). */
export interface TriggerFiringsTable {
  workspace: string;
  trigger: string;
  firing_key: string;
  fire_at: number;
  status: "pending" | "started" | "skipped";
  run_id: string | null;
  /** Why it was skipped, or what it carried. */
  detail: string | null;
  created_at: number;
}

/** The cost ledger: one row per model call (telemetry/costs), written with the event that records it (same run, seq
 * and time). */
export interface ModelUsageTable {
  workspace: string;
  run_id: string;
  /** The seq of the call's event (model.responded or context.compacted) in the run's log. */
  seq: number;
  /** The agent acting when the call was made. */
  agent: string;
  model: string;
  /** `step` (model.responded) or `compaction` (context.compacted). */
  purpose: string;
  at: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface Database {
  sessions: SessionsTable;
  runs: RunsTable;
  events: EventsTable;
  approvals: ApprovalsTable;
  artifacts: ArtifactsTable;
  workspaces: WorkspacesTable;
  api_keys: ApiKeysTable;
  audit_outbox: AuditOutboxTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointsTable;
  secrets: SecretsTable;
  budget_counters: BudgetCountersTable;
  budget_reservations: BudgetReservationsTable;
  memory_items: MemoryItemsTable;
  memory_versions: MemoryVersionsTable;
  memory_vectors: MemoryVectorsTable;
  context_entities: ContextEntitiesTable;
  trigger_state: TriggerStateTable;
  trigger_firings: TriggerFiringsTable;
  model_usage: ModelUsageTable;
}
