/**
 * The store contract. Every driver (SQLite, PostgreSQL) implements it and
 * passes the same conformance suite (test/store/conformance.ts).
 *
 * Two rules carry durability:
 *  - `commit` is conditional: it succeeds only while the caller still holds
 *    the run's lease (fencing) and its view of the log is current (`expectedSeq`).
 *  - Waking is a store operation: approvals, events and timers make a run
 *    runnable in the store; no process keeps anything for a waiting run.
 */
import type { Kysely, Transaction } from "kysely";
import type { ApprovalStatus, RunStatus, WaitingFor } from "../core/api.js";
import type { NewEvent, RunEvent } from "../core/events.js";
import type { ClaimCaps } from "./fair-claim.js";
import type { Database } from "./schema.js";

export interface RunRecord {
  id: string;
  workspace: string;
  agent: string;
  sessionId: string;
  sessionSeq: number;
  status: RunStatus;
  input: string;
  output: string | null;
  error: { code: string; message: string } | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  steps: number;
  waitingFor: WaitingFor | null;
  wakeAt: number | null;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  lastSeq: number;
  cancelRequested: string | null;
  idempotencyKey: string | null;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  parentRunId: string | null;
  parentCallId: string | null;
  /** The top of this run's delegation tree (its own id for a top-level run). */
  rootRunId: string;
  depth: number;
  /** Who the run acts on behalf of (`user:<id>` / `key:<id>`); null for runs started before identities. */
  startedBy: string | null;
}

export interface ArtifactRecord {
  id: string;
  workspace: string;
  runId: string;
  rootRunId: string;
  callId: string;
  tool: string;
  content: string;
  size: number;
  createdAt: number;
}

export interface ApprovalRecord {
  id: string;
  workspace: string;
  runId: string;
  callId: string;
  agent: string;
  tool: string;
  arguments: unknown;
  status: ApprovalStatus;
  reason: string | null;
  decidedBy: string | null;
  createdAt: number;
  decidedAt: number | null;
  callKey: string | null;
  /** SHA-256 of the exact action (security/approvals actionHash); null on approvals from before it existed. */
  actionHash: string | null;
  expiresAt: number | null;
  /** Who the run acts for: never its approver. */
  requestedBy: string | null;
  approverRole: string | null;
  approverGroup: string | null;
  policies: string[];
}

export interface SessionRecord {
  id: string;
  workspace: string;
  agent: string;
  createdAt: number;
  updatedAt: number;
}

export interface CreateRunInput {
  workspace: string;
  agent: string;
  input: string;
  /** Continue an existing session; omitted = a new session. */
  sessionId?: string;
  idempotencyKey?: string;
  /** Earlier turns sent by the caller; recorded in run.started. */
  context?: { role: "user" | "assistant"; content: string }[];
  /** A delegated run: who started it and where it sits in the tree (recorded in run.started). */
  parent?: { runId: string; callId: string; rootRunId: string; depth: number; chain: string[] };
  /** Who the run acts on behalf of; recorded in run.started (`by`). Children inherit their parent's. */
  startedBy?: string | null;
  /** What looked like injected instructions in `input` or `context` (security/guardrails); recorded in run.started. */
  tainted?: string[];
}

/** What a commit changes on the run row besides appending events. */
export interface RunPatch {
  status: RunStatus;
  steps: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  output?: string | null;
  error?: { code: string; message: string } | null;
  waitingFor?: WaitingFor | null;
  wakeAt?: number | null;
  /** Give up the lease (the run waits or ended). */
  release?: boolean;
}

export interface CommitRequest {
  runId: string;
  leaseToken: string;
  /** The last seq the caller has seen; the commit fails if the log moved on. */
  expectedSeq: number;
  events: NewEvent[];
  patch: RunPatch;
  /** Created in the same transaction (a run that starts waiting for approval). */
  approval?: ApprovalRequestInput;
  /** Audit entries for what this commit records (decisions, actions): written to the audit outbox in the same
   * transaction, so an action is never committed without its entry, then chained in order (security/audit). */
  audit?: AuditEntryInput[];
  /** The model calls among `events` (model.responded, context.compacted), for the cost ledger (model_usage): written
   * in the same transaction as their events, so the ledger never misses nor double-counts a call (telemetry/costs). */
  usage?: UsageEntryInput[];
}

/** One model call's spend, as the cost ledger records it: the event it was committed as, and who made it. */
export interface UsageEntryInput {
  /** Index in the commit's `events` of the call's event (its seq is `expectedSeq + event + 1`). */
  event: number;
  /** The agent acting when the call was made (after a handoff, the one handed to). */
  agent: string;
  model: string;
  /** `step`: an agent's model call (model.responded); `compaction`: a summary of older history (context.compacted). */
  purpose: "step" | "compaction";
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** An approval created by a commit, bound to the exact action it would allow. */
export interface ApprovalRequestInput {
  id: string;
  callId: string;
  /** The agent acting when it was requested (default: the run's agent). */
  agent?: string;
  callKey?: string;
  tool: string;
  arguments: unknown;
  actionHash?: string;
  expiresAt?: number;
  requestedBy?: string | null;
  approverRole?: string | null;
  approverGroup?: string | null;
  policies?: string[];
}

/** One audit entry before it is chained (the workspace and run come from where it is written). */
export interface AuditEntryInput {
  kind: string;
  /** Who acted: `agent:<name>`, `user:<id>`, `key:<id>`, `system`. */
  actor: string;
  data: Record<string, unknown>;
}

/**
 * Storage for the other domains (security, memory, …): typed access to the same database, and write
 * transactions that are safe alongside the run commit path (SQLite has one connection). Domain stores
 * (e.g. security/audit) are written once over this for both drivers; `kind` picks the few statements
 * whose SQL differs (row locks).
 */
export interface DomainStorage {
  readonly kind: "sqlite" | "postgres";
  readonly db: Kysely<Database>;
  write<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
}

export interface CommitResult {
  /** Seq of the last event written (= new lastSeq). */
  lastSeq: number;
  /** Commit time (epoch ms), the `at` of every event written. */
  at: number;
  /** A cancel asked for while the caller held the run. */
  cancelRequested: string | null;
}

/** The commit was refused: the run's lease was taken over, or the log moved on. */
export class CommitConflict extends Error {
  constructor(
    readonly reason: "lease_lost" | "seq_conflict",
    readonly runId: string,
  ) {
    super(reason === "lease_lost" ? `lease on run ${runId} was lost` : `run ${runId} log moved on`);
    this.name = "CommitConflict";
  }
}

export interface ClaimedRun {
  run: RunRecord;
  leaseToken: string;
}

export interface ListRunsFilter {
  workspace: string;
  agent?: string;
  status?: RunStatus;
  sessionId?: string;
  limit: number;
  /** Return runs with id < before (ids sort by creation time). */
  before?: string;
}

/** A finished child's result, for its parent's log. */
export interface ChildNotice {
  parentRunId: string;
  callId: string;
  /** The delegation call's idempotency key. */
  callKey?: string;
  childRunId: string;
  agent: string;
  status: "completed" | "failed" | "cancelled";
  output: string | null;
  error: { code: string; message: string } | null;
  /** The child took in what looked like injected instructions: its parent is tainted by its answer. */
  tainted?: string[];
}

export type ExternalInput =
  /** `expire`: nobody decided before `expires_at` (the run's worker records it; a denial). `rehash` recomputes the
   * record's action hash from its fields: a record altered since it was requested is denied, whatever was asked. */
  | {
      kind: "approval";
      approvalId: string;
      decision: "approve" | "deny" | "expire";
      reason: string | null;
      by: string | null;
      rehash?: (approval: ApprovalRecord) => string;
    }
  | { kind: "event"; runId: string; name: string; payload: unknown }
  | { kind: "cancel"; runId: string; reason: string }
  /** A child run ended: append its result to the parent's log (once), waking the parent when its wait is over. */
  | { kind: "child"; notice: ChildNotice };

export interface ExternalResult {
  run: RunRecord;
  approval?: ApprovalRecord;
  /** The run became runnable (a worker should be woken). */
  woke: boolean;
  /** The events this input appended to the run's log (none when it only flagged a cancel). */
  events: RunEvent[];
}

export interface Store {
  readonly kind: "sqlite" | "postgres";
  /** For domain stores built over the same database (see DomainStorage). */
  readonly domain: DomainStorage;

  createRun(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }>;
  getRun(workspace: string, id: string): Promise<RunRecord | null>;
  listRuns(filter: ListRunsFilter): Promise<RunRecord[]>;
  getEvents(runId: string, afterSeq?: number): Promise<RunEvent[]>;
  /** How many runs are queued, running and waiting, per workspace (metrics' gauges; every workspace: the caller
   * filters). */
  countActiveRuns(): Promise<{ workspace: string; status: "queued" | "running" | "waiting"; count: number }[]>;
  getSession(workspace: string, id: string): Promise<SessionRecord | null>;
  /** Runs of a session in execution order (the conversation). */
  listSessionRuns(sessionId: string): Promise<RunRecord[]>;
  getApproval(workspace: string, id: string): Promise<ApprovalRecord | null>;
  listApprovals(workspace: string, status?: ApprovalStatus): Promise<ApprovalRecord[]>;

  /** Claim up to `limit` runnable runs: running with an expired lease, waiting with a due timer, then queued (first
   * in their session) fairly across workspaces and within `caps` (fair-claim.ts). Each gets a fresh lease token. */
  claimRuns(owner: string, limit: number, leaseMs: number, caps?: ClaimCaps): Promise<ClaimedRun[]>;
  renewLeases(owner: string, runIds: string[], leaseMs: number): Promise<void>;
  /** Drop every lease (embedded mode at start, when this process owns the data folder exclusively). */
  releaseAllLeases(): Promise<number>;
  /** Hand a run back without changing it (worker shutdown). */
  releaseLease(runId: string, leaseToken: string): Promise<void>;
  /** Calls `listener` when another process may have made a run runnable (PostgreSQL: LISTEN/NOTIFY); absent where
   * one process owns the store (SQLite), which wakes itself. */
  onWork?(listener: () => void): void;
  /** Calls `listener` with the runs whose logs another process appended to (PostgreSQL: LISTEN/NOTIFY), so event
   * streams served here follow runs executed elsewhere at once; absent where one process owns the store. `"all"`:
   * notifications may have been missed (the listening connection just came up, or back): every stream re-reads. */
  onEvents?(listener: (runIds: string[] | "all") => void): void;
  /** Commits of concurrent runs are grouped into one transaction; each caller waits for its own. */
  commit(request: CommitRequest): Promise<CommitResult>;
  /** Approvals, external events, cancels and child results: appended under the run's lock, waking it where due. */
  applyExternal(workspace: string, input: ExternalInput): Promise<ExternalResult>;
  /** A run that ended (failed, cancelled) leaves no approval waiting: its pending ones are denied with `reason`.
   * Nothing for a run still going. Returns the ids denied. */
  withdrawApprovals(workspace: string, runId: string, reason: string): Promise<string[]>;

  /** Children (direct) of a run, in creation order. */
  listChildRuns(workspace: string, parentRunId: string): Promise<RunRecord[]>;
  /** Every run of a delegation tree (the root included), in creation order. */
  listRunTree(workspace: string, rootRunId: string): Promise<RunRecord[]>;
  /** Finished children whose result is not yet in their parent's log (a crash came between). */
  listUnnotifiedChildren(limit: number): Promise<RunRecord[]>;
  /** Runs still active whose parent has ended (a cancel cascade a crash cut short). */
  listOrphanedRuns(limit: number): Promise<RunRecord[]>;
  /** The agent now holding a session's conversation (after a handoff). */
  setSessionAgent(workspace: string, sessionId: string, agent: string): Promise<void>;
  /** Writes an artifact; writing the same id again replaces it (a retried tool call). */
  putArtifact(artifact: ArtifactRecord): Promise<void>;
  getArtifact(workspace: string, id: string): Promise<ArtifactRecord | null>;

  close(): Promise<void>;
}
