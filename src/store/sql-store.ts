/**
 * The store over Kysely, shared by both drivers. Reads and the rare
 * transactional writes (create a run, decide an approval, claim) are written
 * once here; each driver supplies its hot path (`commit`, group-committed)
 * and the few statements whose SQL differs (row locks, claiming).
 */
import { randomBytes } from "node:crypto";
import { type Kysely, type Selectable, sql, type Transaction } from "kysely";
import type { ApprovalStatus, RunStatus, WaitingFor } from "../core/api.js";
import { notFound, OutpostError } from "../core/errors.js";
import { EVENT_SCHEMA_VERSION, ev, type NewEvent, parseEvent, type RunEvent } from "../core/events.js";
import { newId } from "../core/ids.js";
import type { ApprovalsTable, ArtifactsTable, Database, RunsTable } from "./schema.js";
import type {
  ApprovalRecord,
  ApprovalRequestInput,
  ArtifactRecord,
  ClaimedRun,
  CommitRequest,
  CommitResult,
  CreateRunInput,
  DomainStorage,
  ExternalInput,
  ExternalResult,
  ListRunsFilter,
  RunRecord,
  SessionRecord,
  Store,
} from "./types.js";

export const ACTIVE_STATUSES: RunStatus[] = ["queued", "running", "waiting"];

export function toRunRecord(r: Selectable<RunsTable>): RunRecord {
  return {
    id: r.id,
    workspace: r.workspace,
    agent: r.agent,
    sessionId: r.session_id,
    sessionSeq: Number(r.session_seq),
    status: r.status as RunStatus,
    input: r.input,
    output: r.output,
    error: r.error_code ? { code: r.error_code, message: r.error_message ?? "" } : null,
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    costUsd: Number(r.cost_usd),
    steps: Number(r.steps),
    waitingFor: r.waiting_for ? (JSON.parse(r.waiting_for) as WaitingFor) : null,
    wakeAt: r.wake_at == null ? null : Number(r.wake_at),
    leaseOwner: r.lease_owner,
    leaseExpiresAt: r.lease_expires_at == null ? null : Number(r.lease_expires_at),
    lastSeq: Number(r.last_seq),
    cancelRequested: r.cancel_requested,
    idempotencyKey: r.idempotency_key,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    completedAt: r.completed_at == null ? null : Number(r.completed_at),
    parentRunId: r.parent_run_id ?? null,
    parentCallId: r.parent_call_id ?? null,
    rootRunId: r.root_run_id ?? r.id,
    depth: Number(r.depth ?? 0),
    startedBy: r.started_by ?? null,
  };
}

export function toArtifactRecord(a: Selectable<ArtifactsTable>): ArtifactRecord {
  return {
    id: a.id,
    workspace: a.workspace,
    runId: a.run_id,
    rootRunId: a.root_run_id,
    callId: a.call_id,
    tool: a.tool,
    content: a.content,
    size: Number(a.size),
    createdAt: Number(a.created_at),
  };
}

function toApprovalRecord(a: Selectable<ApprovalsTable>): ApprovalRecord {
  return {
    id: a.id,
    workspace: a.workspace,
    runId: a.run_id,
    callId: a.call_id,
    agent: a.agent,
    tool: a.tool,
    arguments: JSON.parse(a.arguments),
    status: a.status as ApprovalStatus,
    reason: a.reason,
    decidedBy: a.decided_by,
    createdAt: Number(a.created_at),
    decidedAt: a.decided_at == null ? null : Number(a.decided_at),
    callKey: a.call_key ?? null,
    actionHash: a.action_hash ?? null,
    expiresAt: a.expires_at == null ? null : Number(a.expires_at),
    requestedBy: a.requested_by ?? null,
    approverRole: a.approver_role ?? null,
    approverGroup: a.approver_group ?? null,
    policies: a.policies ? (JSON.parse(a.policies) as string[]) : [],
  };
}

/** The columns of a new approval, as both drivers insert it in their commit path. */
export function approvalColumns(a: ApprovalRequestInput) {
  return {
    id: a.id,
    call_id: a.callId,
    agent: a.agent ?? null,
    tool: a.tool,
    arguments: JSON.stringify(a.arguments ?? null),
    call_key: a.callKey ?? null,
    action_hash: a.actionHash ?? null,
    expires_at: a.expiresAt ?? null,
    requested_by: a.requestedBy ?? null,
    approver_role: a.approverRole ?? null,
    approver_group: a.approverGroup ?? null,
    policies: a.policies && a.policies.length > 0 ? JSON.stringify(a.policies) : null,
  };
}

/** A retried request with the same Idempotency-Key gets the same run; a different request with it is refused. */
export function sameRequestOrConflict(run: RunRecord, input: CreateRunInput): RunRecord {
  if (run.agent !== input.agent || run.input !== input.input || (input.sessionId !== undefined && input.sessionId !== run.sessionId)) {
    throw new OutpostError(
      "conflict",
      `Idempotency-Key "${input.idempotencyKey}" was already used for a different run (${run.id})`,
      "use a new key for a new request; reuse a key only to retry the very same request",
    );
  }
  return run;
}

export const sessionNotFound = (id: string) => notFound("session", id, "omit session_id to start a new session");

export function newRunRow(input: CreateRunInput, sessionId: string, sessionSeq: number, now: number): Selectable<RunsTable> {
  return {
    id: newId("run", now),
    workspace: input.workspace,
    agent: input.agent,
    session_id: sessionId,
    session_seq: sessionSeq,
    status: "queued",
    input: input.input,
    output: null,
    error_code: null,
    error_message: null,
    input_tokens: 0,
    output_tokens: 0,
    cost_usd: 0,
    steps: 0,
    waiting_for: null,
    wake_at: null,
    lease_owner: null,
    lease_token: null,
    lease_expires_at: null,
    last_seq: 1,
    cancel_requested: null,
    idempotency_key: input.idempotencyKey ?? null,
    created_at: now,
    updated_at: now,
    completed_at: null,
    parent_run_id: input.parent?.runId ?? null,
    parent_call_id: input.parent?.callId ?? null,
    root_run_id: input.parent?.rootRunId ?? null,
    depth: input.parent?.depth ?? 0,
    // Top-level runs have no parent to tell: 1 keeps them out of the index of children to (re)notify.
    parent_notified: input.parent ? 0 : 1,
    started_by: input.startedBy ?? null,
  };
}

export const startedEvent = (row: Selectable<RunsTable>, input: CreateRunInput) =>
  ev("run.started", {
    agent: row.agent,
    input: row.input,
    session_id: row.session_id,
    ...(input.context && input.context.length > 0 ? { context: input.context } : {}),
    ...(input.startedBy ? { by: input.startedBy } : {}),
    ...(input.tainted && input.tainted.length > 0 ? { tainted: input.tainted } : {}),
    ...(input.parent
      ? {
          parent: {
            run_id: input.parent.runId,
            call_id: input.parent.callId,
            root_run_id: input.parent.rootRunId,
            depth: input.parent.depth,
            chain: input.parent.chain,
          },
        }
      : {}),
  });

/** A unique-constraint violation, as PostgreSQL (23505) or SQLite reports it. */
export const isUniqueViolation = (err: unknown) => {
  const code = (err as { code?: string })?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
};

export const toRunEvent = (r: { seq: number; type: string; data: string; at: number; v: number }): RunEvent =>
  parseEvent({ seq: Number(r.seq), type: r.type, data: JSON.parse(r.data), at: Number(r.at), v: Number(r.v) });

export const newLeaseToken = () => randomBytes(9).toString("base64url");

export abstract class SqlStore implements Store {
  abstract readonly kind: "sqlite" | "postgres";

  readonly domain: DomainStorage;

  constructor(protected readonly db: Kysely<Database>) {
    const self = this;
    this.domain = {
      get kind() {
        return self.kind;
      },
      db,
      write: (fn) => this.write(fn),
    };
  }

  /** Run `fn` in a write transaction. SQLite serialises these with its commit path. */
  protected abstract write<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  /** Lock one run row for the rest of the transaction (no-op where the database serialises writers). */
  protected abstract lockRun(trx: Transaction<Database>, runId: string): Promise<Selectable<RunsTable> | undefined>;
  abstract commit(request: CommitRequest): Promise<CommitResult>;
  abstract claimRuns(owner: string, limit: number, leaseMs: number): Promise<ClaimedRun[]>;
  abstract close(): Promise<void>;

  async createRun(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }> {
    try {
      return await this.createRunOnce(input);
    } catch (err) {
      // Two retries of one request raced: the loser reads the winner's run.
      if (input.idempotencyKey && isUniqueViolation(err)) {
        const existing = await this.db
          .selectFrom("runs")
          .selectAll()
          .where("workspace", "=", input.workspace)
          .where("idempotency_key", "=", input.idempotencyKey)
          .executeTakeFirst();
        if (existing) return { run: sameRequestOrConflict(toRunRecord(existing), input), created: false };
      }
      throw err;
    }
  }

  private async createRunOnce(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }> {
    return this.write(async (trx) => {
      if (input.idempotencyKey) {
        const existing = await trx
          .selectFrom("runs")
          .selectAll()
          .where("workspace", "=", input.workspace)
          .where("idempotency_key", "=", input.idempotencyKey)
          .executeTakeFirst();
        if (existing) {
          const run = toRunRecord(existing);
          return { run: sameRequestOrConflict(run, input), created: false };
        }
      }
      const now = Date.now();
      let sessionId = input.sessionId;
      let sessionSeq: number;
      if (sessionId) {
        const session = await trx
          .updateTable("sessions")
          .set({ next_seq: sql`next_seq + 1`, updated_at: now })
          .where("id", "=", sessionId)
          .where("workspace", "=", input.workspace)
          .returning("next_seq")
          .executeTakeFirst();
        if (!session) throw sessionNotFound(sessionId);
        sessionSeq = Number(session.next_seq) - 1;
      } else {
        sessionId = newId("ses", now);
        sessionSeq = 1;
        await trx
          .insertInto("sessions")
          .values({ id: sessionId, workspace: input.workspace, agent: input.agent, created_at: now, updated_at: now, next_seq: 2 })
          .execute();
      }
      const row = newRunRow(input, sessionId, sessionSeq, now);
      await trx.insertInto("runs").values(row).execute();
      await this.insertEvents(trx, row.id, 0, now, [startedEvent(row, input)]);
      return { run: toRunRecord(row), created: true };
    });
  }

  protected async insertEvents(trx: Transaction<Database>, runId: string, afterSeq: number, at: number, events: NewEvent[]) {
    if (events.length === 0) return;
    await trx
      .insertInto("events")
      .values(
        events.map((e, i) => ({
          run_id: runId,
          seq: afterSeq + i + 1,
          type: e.type,
          data: JSON.stringify(e.data),
          at,
          v: EVENT_SCHEMA_VERSION,
        })),
      )
      .execute();
  }

  async getRun(workspace: string, id: string): Promise<RunRecord | null> {
    const row = await this.db.selectFrom("runs").selectAll().where("id", "=", id).where("workspace", "=", workspace).executeTakeFirst();
    return row ? toRunRecord(row) : null;
  }

  async listRuns(f: ListRunsFilter): Promise<RunRecord[]> {
    let q = this.db.selectFrom("runs").selectAll().where("workspace", "=", f.workspace);
    if (f.agent) q = q.where("agent", "=", f.agent);
    if (f.status) q = q.where("status", "=", f.status);
    if (f.sessionId) q = q.where("session_id", "=", f.sessionId);
    if (f.before) q = q.where("id", "<", f.before);
    const rows = await q.orderBy("id", "desc").limit(f.limit).execute();
    return rows.map(toRunRecord);
  }

  async countActiveRuns(): Promise<{ workspace: string; status: "queued" | "running" | "waiting"; count: number }[]> {
    const rows = await this.db
      .selectFrom("runs")
      .select(["workspace", "status", (eb) => eb.fn.countAll<string | number>().as("n")])
      .where("status", "in", ["queued", "running", "waiting"])
      .groupBy(["workspace", "status"])
      .execute();
    return rows.map((r) => ({ workspace: r.workspace, status: r.status as "queued" | "running" | "waiting", count: Number(r.n) }));
  }

  async getEvents(runId: string, afterSeq = 0): Promise<RunEvent[]> {
    const rows = await this.db
      .selectFrom("events")
      .selectAll()
      .where("run_id", "=", runId)
      .where("seq", ">", afterSeq)
      .orderBy("seq")
      .execute();
    return rows.map(toRunEvent);
  }

  async getSession(workspace: string, id: string): Promise<SessionRecord | null> {
    const s = await this.db.selectFrom("sessions").selectAll().where("id", "=", id).where("workspace", "=", workspace).executeTakeFirst();
    return s
      ? { id: s.id, workspace: s.workspace, agent: s.agent, createdAt: Number(s.created_at), updatedAt: Number(s.updated_at) }
      : null;
  }

  async listSessionRuns(sessionId: string): Promise<RunRecord[]> {
    const rows = await this.db.selectFrom("runs").selectAll().where("session_id", "=", sessionId).orderBy("session_seq").execute();
    return rows.map(toRunRecord);
  }

  async getApproval(workspace: string, id: string): Promise<ApprovalRecord | null> {
    const a = await this.db.selectFrom("approvals").selectAll().where("id", "=", id).where("workspace", "=", workspace).executeTakeFirst();
    return a ? toApprovalRecord(a) : null;
  }

  async listApprovals(workspace: string, status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    let q = this.db.selectFrom("approvals").selectAll().where("workspace", "=", workspace);
    if (status) q = q.where("status", "=", status);
    const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(500).execute();
    return rows.map(toApprovalRecord);
  }

  async listChildRuns(workspace: string, parentRunId: string): Promise<RunRecord[]> {
    const rows = await this.db
      .selectFrom("runs")
      .selectAll()
      .where("parent_run_id", "=", parentRunId)
      .where("workspace", "=", workspace)
      .orderBy("id")
      .execute();
    return rows.map(toRunRecord);
  }

  async listRunTree(workspace: string, rootRunId: string): Promise<RunRecord[]> {
    const rows = await this.db
      .selectFrom("runs")
      .selectAll()
      .where((eb) => eb.or([eb("id", "=", rootRunId), eb("root_run_id", "=", rootRunId)]))
      .where("workspace", "=", workspace)
      .orderBy("id")
      .limit(10_000)
      .execute();
    return rows.map(toRunRecord);
  }

  async listUnnotifiedChildren(limit: number): Promise<RunRecord[]> {
    const rows = await this.db
      .selectFrom("runs")
      .selectAll()
      .where("parent_notified", "=", sql.lit(0)) // a literal, so the partial index runs_notice applies
      .where("status", "in", ["completed", "failed", "cancelled"])
      .where("parent_run_id", "is not", null)
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map(toRunRecord);
  }

  async listOrphanedRuns(limit: number): Promise<RunRecord[]> {
    // CROSS JOIN keeps the active children as the outer loop (SQLite plans joins in that order): the
    // scan is bounded by the runs in flight, never by the history of finished ones.
    const { rows } = await sql<Selectable<RunsTable>>`
      SELECT c.* FROM runs c CROSS JOIN runs p
      WHERE p.id = c.parent_run_id AND c.status IN ('queued', 'running', 'waiting') AND c.parent_run_id IS NOT NULL
        AND p.status IN ('completed', 'failed', 'cancelled')
      ORDER BY c.id LIMIT ${limit}`.execute(this.db);
    return rows.map(toRunRecord);
  }

  async setSessionAgent(workspace: string, sessionId: string, agent: string): Promise<void> {
    await this.write((trx) =>
      trx
        .updateTable("sessions")
        .set({ agent, updated_at: Date.now() })
        .where("id", "=", sessionId)
        .where("workspace", "=", workspace)
        .execute(),
    );
  }

  async putArtifact(a: ArtifactRecord): Promise<void> {
    const row = {
      id: a.id,
      workspace: a.workspace,
      run_id: a.runId,
      root_run_id: a.rootRunId,
      call_id: a.callId,
      tool: a.tool,
      content: a.content,
      size: a.size,
      created_at: a.createdAt,
    };
    await this.write((trx) =>
      trx
        .insertInto("artifacts")
        .values(row)
        .onConflict((oc) => oc.column("id").doUpdateSet({ content: row.content, size: row.size, created_at: row.created_at }))
        .execute(),
    );
  }

  async getArtifact(workspace: string, id: string): Promise<ArtifactRecord | null> {
    const a = await this.db.selectFrom("artifacts").selectAll().where("id", "=", id).where("workspace", "=", workspace).executeTakeFirst();
    return a ? toArtifactRecord(a) : null;
  }

  async renewLeases(owner: string, runIds: string[], leaseMs: number): Promise<void> {
    if (runIds.length === 0) return;
    await this.write((trx) =>
      trx
        .updateTable("runs")
        .set({ lease_expires_at: Date.now() + leaseMs })
        .where("lease_owner", "=", owner)
        .where("id", "in", runIds)
        .execute(),
    );
  }

  async releaseAllLeases(): Promise<number> {
    const r = await this.write((trx) =>
      trx
        .updateTable("runs")
        .set({ lease_owner: null, lease_token: null, lease_expires_at: null })
        .where("lease_owner", "is not", null)
        .executeTakeFirst(),
    );
    return Number(r.numUpdatedRows);
  }

  async releaseLease(runId: string, leaseToken: string): Promise<void> {
    await this.write((trx) =>
      trx
        .updateTable("runs")
        .set({ lease_owner: null, lease_token: null, lease_expires_at: null })
        .where("id", "=", runId)
        .where("lease_token", "=", leaseToken)
        .execute(),
    );
  }

  async withdrawApprovals(workspace: string, runId: string, reason: string): Promise<string[]> {
    return this.write(async (trx) => {
      const run = await this.lockRun(trx, runId);
      if (!run || run.workspace !== workspace || !["completed", "failed", "cancelled"].includes(run.status)) return [];
      const pending = await trx.selectFrom("approvals").select("id").where("run_id", "=", runId).where("status", "=", "pending").execute();
      if (pending.length === 0) return [];
      await trx
        .updateTable("approvals")
        .set({ status: "denied", reason, decided_by: "outpost", decided_at: Date.now() })
        .where("run_id", "=", runId)
        .where("status", "=", "pending")
        .execute();
      return pending.map((p) => p.id);
    });
  }

  async applyExternal(workspace: string, input: ExternalInput): Promise<ExternalResult> {
    return this.write(async (trx) => {
      const now = Date.now();
      let approval: ApprovalRecord | undefined;
      let runId: string;
      if (input.kind === "approval") {
        const a = await trx
          .selectFrom("approvals")
          .selectAll()
          .where("id", "=", input.approvalId)
          .where("workspace", "=", workspace)
          .executeTakeFirst();
        if (!a) throw notFound("approval", input.approvalId, "list pending approvals with GET /v1/approvals?status=pending");
        runId = a.run_id;
        approval = toApprovalRecord(a);
      } else if (input.kind === "child") {
        runId = input.notice.parentRunId;
      } else {
        runId = input.runId;
      }
      const row = await this.lockRun(trx, runId);
      if (!row || row.workspace !== workspace) throw notFound("run", runId, "list runs with GET /v1/runs");
      const run = toRunRecord(row);
      const terminal = run.status === "completed" || run.status === "failed" || run.status === "cancelled";
      const events: NewEvent[] = [];
      const set: Partial<RunsTable> = {};
      let woke = false;

      if (input.kind === "approval") {
        // Fail closed: only a pending approval can be decided, exactly once; after its expiry, or when its record no
        // longer hashes to the action it was requested for, whatever was asked becomes a denial.
        const a = approval as ApprovalRecord;
        let decision = input.decision;
        let reason = input.reason;
        if (decision !== "expire" && a.expiresAt !== null && now >= a.expiresAt) {
          decision = "expire";
          reason = `expired at ${new Date(a.expiresAt).toISOString()} before it was decided`;
        } else if (a.actionHash !== null && input.rehash && input.rehash(a) !== a.actionHash) {
          decision = "deny";
          reason = "the approval record was altered after it was requested: denied";
        }
        const status = decision === "approve" ? "approved" : decision === "expire" ? "expired" : "denied";
        const updated = await trx
          .updateTable("approvals")
          .set({ status, reason, decided_by: decision === "expire" ? null : input.by, decided_at: now })
          .where("id", "=", input.approvalId)
          .where("status", "=", "pending")
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1 || terminal) {
          throw new OutpostError(
            "conflict",
            `approval ${input.approvalId} is no longer pending (it is ${approval?.status}${terminal ? `; run ${run.id} is ${run.status}` : ""})`,
            "only pending approvals can be decided; list them with GET /v1/approvals?status=pending",
          );
        }
        approval = { ...a, status, reason, decidedBy: decision === "expire" ? null : input.by, decidedAt: now };
        // The audit entry is written with the decision (security/audit chains it): approved, denied or expired.
        await trx
          .insertInto("audit_outbox")
          .values({
            id: newId("aud", now),
            workspace,
            at: now,
            kind: `approval.${status}`,
            actor: decision === "expire" ? "system" : (input.by ?? "local"),
            run_id: a.runId,
            data: JSON.stringify({
              approval_id: a.id,
              run_id: a.runId,
              agent: a.agent,
              tool: a.tool,
              action_hash: a.actionHash,
              approver: { role: a.approverRole ?? "operator", group: a.approverGroup },
              by: decision === "expire" ? null : input.by,
              reason,
            }),
          })
          .execute();
        events.push(
          ev("approval.decided", {
            approval_id: input.approvalId,
            decision,
            reason,
            by: decision === "expire" ? null : input.by,
            ...(a.actionHash !== null ? { action_hash: a.actionHash } : {}),
          }),
        );
        const w = run.waitingFor;
        const awaited =
          (w?.kind === "approval" && w.approval_id === input.approvalId) || (w?.kind === "any" && w.approvals.includes(input.approvalId));
        if (run.status === "waiting" && awaited) {
          events.push(ev("run.resumed", { reason: `approval ${status}` }));
          Object.assign(set, { status: "queued", waiting_for: null, wake_at: null });
          woke = true;
        }
      } else if (input.kind === "event") {
        if (terminal) {
          throw new OutpostError("conflict", `run ${run.id} is ${run.status}; events can only be delivered to active runs`);
        }
        events.push(ev("event.received", { name: input.name, payload: input.payload ?? null }));
        const w = run.waitingFor;
        const awaited = (w?.kind === "event" && w.event === input.name) || (w?.kind === "any" && w.events.includes(input.name));
        if (run.status === "waiting" && awaited) {
          events.push(ev("run.resumed", { reason: `event ${input.name}` }));
          Object.assign(set, { status: "queued", waiting_for: null, wake_at: null });
          woke = true;
        }
      } else if (input.kind === "child") {
        const n = input.notice;
        // Exactly once: the flag on the child and the parent's event are written in one transaction.
        const flagged = await trx
          .updateTable("runs")
          .set({ parent_notified: 1 })
          .where("id", "=", n.childRunId)
          .where("parent_run_id", "=", run.id)
          .where("parent_notified", "=", 0)
          .executeTakeFirst();
        if (Number(flagged.numUpdatedRows) !== 1 || terminal) return { run, woke: false, events: [] };
        events.push(
          ev("child.finished", {
            call_id: n.callId,
            ...(n.callKey !== undefined ? { call_key: n.callKey } : {}),
            child_run_id: n.childRunId,
            agent: n.agent,
            status: n.status,
            output: n.output,
            error: n.error,
            ...(n.tainted && n.tainted.length > 0 ? { tainted: n.tainted } : {}),
          }),
        );
        const w = run.waitingFor;
        if (run.status === "waiting" && w?.kind === "any" && w.run_ids.includes(n.childRunId)) {
          events.push(ev("run.resumed", { reason: `child ${n.childRunId} ${n.status}` }));
          Object.assign(set, { status: "queued", waiting_for: null, wake_at: null });
          woke = true;
        } else if (run.status === "waiting" && w?.kind === "children" && w.run_ids.includes(n.childRunId)) {
          const open = await trx
            .selectFrom("runs")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .where("id", "in", w.run_ids)
            .where("status", "in", ACTIVE_STATUSES)
            .executeTakeFirstOrThrow();
          if (Number(open.n) === 0 || (w.mode === "fail_fast" && n.status !== "completed")) {
            events.push(ev("run.resumed", { reason: Number(open.n) === 0 ? "children finished" : `child ${n.childRunId} ${n.status}` }));
            Object.assign(set, { status: "queued", waiting_for: null, wake_at: null });
            woke = true;
          }
        }
      } else {
        if (terminal) return { run, woke: false, events: [] };
        const leased = run.leaseOwner !== null && (run.leaseExpiresAt ?? 0) > now;
        if (leased) {
          set.cancel_requested = input.reason;
        } else {
          events.push(ev("run.cancelled", { reason: input.reason }));
          Object.assign(set, {
            status: "cancelled",
            error_code: "cancelled",
            error_message: input.reason,
            waiting_for: null,
            wake_at: null,
            completed_at: now,
            lease_owner: null,
            lease_token: null,
            lease_expires_at: null,
          });
          await trx
            .updateTable("approvals")
            .set({ status: "denied", reason: `run cancelled: ${input.reason}`, decided_by: "outpost", decided_at: now })
            .where("run_id", "=", run.id)
            .where("status", "=", "pending")
            .execute();
        }
      }

      await this.insertEvents(trx, run.id, run.lastSeq, now, events);
      const updated = await trx
        .updateTable("runs")
        .set({ ...set, last_seq: run.lastSeq + events.length, updated_at: now })
        .where("id", "=", run.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const appended = events.map((e, i) => ({ ...e, seq: run.lastSeq + i + 1, at: now }) as RunEvent);
      return { run: toRunRecord(updated), approval, woke, events: appended };
    });
  }
}
