/**
 * Embedded store: better-sqlite3 in WAL mode. The commit path bypasses the
 * query builder: commits requested in the same turn of the event loop are
 * written in one transaction (group commit), each caller awaiting its own.
 */
import BetterSqlite3 from "better-sqlite3";
import { Kysely, type Selectable, SqliteDialect, sql, type Transaction } from "kysely";
import type { RunEvent } from "../core/events.js";
import { EVENT_SCHEMA_VERSION } from "../core/events.js";
import { newId } from "../core/ids.js";
import { type Checkpointer, startCheckpointer } from "./checkpointer.js";
import { type ClaimCandidate, type ClaimCaps, hasCaps, pickFair, type RunningCount, saturated } from "./fair-claim.js";
import type { Database, RunsTable } from "./schema.js";
import {
  approvalColumns,
  newLeaseToken,
  newRunRow,
  SqlStore,
  sameRequestOrConflict,
  sessionNotFound,
  startedEvent,
  toRunEvent,
  toRunRecord,
} from "./sql-store.js";
import { type ClaimedRun, CommitConflict, type CommitRequest, type CommitResult, type CreateRunInput, type RunRecord } from "./types.js";

interface Pending {
  request: CommitRequest;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

type Outcome = CommitResult | CommitConflict | { failed: unknown };

/** A promise chain: SQLite has one connection, so async transactions must not interleave with commits. */
class WriteLock {
  private tail: Promise<unknown> = Promise.resolve();
  private held = false;
  get busy() {
    return this.held;
  }
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(async () => {
      this.held = true;
      try {
        return await fn();
      } finally {
        this.held = false;
      }
    });
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export class SqliteStore extends SqlStore {
  readonly kind = "sqlite" as const;
  private readonly lock = new WriteLock();
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly stmts;
  /** One transaction for a whole batch (made once: better-sqlite3 transaction wrappers are not free). */
  private readonly writeAll: (batch: Pending[], at: number, outcomes: Outcome[]) => void;

  constructor(
    private readonly raw: BetterSqlite3.Database,
    db: Kysely<Database>,
    private readonly checkpointer: Checkpointer | null,
  ) {
    super(db);
    this.writeAll = raw.transaction((batch: Pending[], at: number, outcomes: Outcome[]) => {
      for (let i = 0; i < batch.length; i++) outcomes[i] = this.applyOne(batch[i].request, at);
    });
    this.stmts = {
      advance: raw.prepare(
        `UPDATE runs SET last_seq = ?, status = ?, steps = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?,
           output = ?, error_code = ?, error_message = ?, waiting_for = ?, wake_at = ?, updated_at = ?, completed_at = ?,
           lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END,
           lease_token = CASE WHEN ? THEN NULL ELSE lease_token END,
           lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END
         WHERE id = ? AND last_seq = ? AND lease_token = ?
         RETURNING cancel_requested`,
      ),
      progress: raw.prepare(
        `UPDATE runs SET last_seq = ?, steps = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, updated_at = ?
         WHERE id = ? AND last_seq = ? AND lease_token = ?
         RETURNING cancel_requested`,
      ),
      probe: raw.prepare("SELECT last_seq, lease_token FROM runs WHERE id = ?"),
      runByKey: raw.prepare("SELECT * FROM runs WHERE workspace = ? AND idempotency_key = ?"),
      bumpSession: raw.prepare(
        "UPDATE sessions SET next_seq = next_seq + 1, updated_at = ? WHERE id = ? AND workspace = ? RETURNING next_seq",
      ),
      insertSession: raw.prepare("INSERT INTO sessions (id, workspace, agent, created_at, updated_at, next_seq) VALUES (?, ?, ?, ?, ?, 2)"),
      insertRun: raw.prepare(
        `INSERT INTO runs (id, workspace, agent, session_id, session_seq, status, input, input_tokens, output_tokens, cost_usd,
           steps, last_seq, idempotency_key, created_at, updated_at, parent_run_id, parent_call_id, root_run_id, depth, parent_notified, started_by)
         VALUES (@id, @workspace, @agent, @session_id, @session_seq, @status, @input, 0, 0, 0, 0, @last_seq, @idempotency_key,
           @created_at, @updated_at, @parent_run_id, @parent_call_id, @root_run_id, @depth, @parent_notified, @started_by)`,
      ),
      // In-flight runs whose lease lapsed first, then due timers (queued runs: claimQueued).
      // Ids only: an empty claim (the common case) must cost microseconds, and rows are read for claimed runs alone.
      resumable: raw.prepare(
        `SELECT id FROM (SELECT id FROM runs WHERE status = 'running' AND lease_expires_at IS NULL LIMIT @limit)
         UNION ALL
         SELECT id FROM (SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < @now ORDER BY lease_expires_at LIMIT @limit)
         UNION ALL
         SELECT id FROM (SELECT id FROM runs WHERE status = 'waiting' AND wake_at <= @now ORDER BY wake_at LIMIT @limit)
         LIMIT @limit`,
      ),
      // The workspaces with queued runs, one probe of runs_queued_by_workspace each.
      queuedWorkspaces: raw.prepare(
        `WITH RECURSIVE ws(w) AS (
           SELECT min(workspace) FROM runs INDEXED BY runs_queued_by_workspace WHERE status = 'queued'
           UNION ALL
           SELECT (SELECT min(workspace) FROM runs INDEXED BY runs_queued_by_workspace WHERE status = 'queued' AND workspace > ws.w) FROM ws WHERE ws.w IS NOT NULL)
         SELECT w FROM ws WHERE w IS NOT NULL`,
      ),
      // A workspace's oldest queued runs that are first in their session, but for agents at their cap (@skip: JSON).
      queuedIn: raw.prepare(
        `SELECT r.id, r.workspace, r.agent FROM runs r INDEXED BY runs_queued_by_workspace WHERE r.workspace = @workspace AND r.status = 'queued'
           AND r.agent NOT IN (SELECT value FROM json_each(@skip))
           AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.session_id = r.session_id AND p.session_seq < r.session_seq
                           AND p.status IN ('queued', 'running', 'waiting'))
         ORDER BY r.id LIMIT @limit`,
      ),
      runningCounts: raw.prepare("SELECT workspace, agent, count(*) AS n FROM runs WHERE status = 'running' GROUP BY workspace, agent"),
      runById: raw.prepare("SELECT * FROM runs WHERE id = ?"),
      // Forced onto the small partial index: without statistics SQLite would walk every finished run by status.
      unnotified: raw.prepare(
        `SELECT * FROM runs INDEXED BY runs_notice
         WHERE parent_notified = 0 AND status IN ('completed', 'failed', 'cancelled') AND parent_run_id IS NOT NULL
         ORDER BY id LIMIT ?`,
      ),
      claim: raw.prepare(
        "UPDATE runs SET status = 'running', lease_owner = ?, lease_token = ?, lease_expires_at = ?, updated_at = ? WHERE id = ?",
      ),
      events: raw.prepare("SELECT seq, type, data, at, v FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"),
      insertEvent: raw.prepare("INSERT INTO events (run_id, seq, type, data, at, v, lease) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      insertApproval: raw.prepare(
        `INSERT INTO approvals (id, workspace, run_id, call_id, agent, tool, arguments, status, created_at,
           call_key, action_hash, expires_at, requested_by, approver_role, approver_group, policies)
         SELECT @id, workspace, id, @call_id, COALESCE(@agent, agent), @tool, @arguments, 'pending', @at,
           @call_key, @action_hash, @expires_at, @requested_by, @approver_role, @approver_group, @policies
         FROM runs WHERE id = @run_id`,
      ),
      insertAudit: raw.prepare(
        "INSERT INTO audit_outbox (id, workspace, at, kind, actor, run_id, data) SELECT ?, workspace, ?, ?, ?, id, ? FROM runs WHERE id = ?",
      ),
      insertUsage: raw.prepare(
        `INSERT INTO model_usage (workspace, run_id, seq, agent, model, purpose, at, input_tokens, output_tokens, cost_usd)
         SELECT workspace, id, ?, ?, ?, ?, ?, ?, ?, ? FROM runs WHERE id = ?`,
      ),
    };
  }

  static async open(path: string): Promise<SqliteStore> {
    const raw = new BetterSqlite3(path);
    raw.pragma("journal_mode = WAL");
    raw.pragma("synchronous = NORMAL");
    raw.pragma("busy_timeout = 5000");
    raw.pragma("cache_size = -65536"); // 64 MiB: concurrent runs touch many pages per group commit
    raw.pragma("foreign_keys = ON");
    // Checkpoints run in a worker thread (checkpointer.ts); the writer's own, at ~80 MiB of WAL, is only a backstop.
    raw.pragma("wal_autocheckpoint = 20000");
    // Kysely prepares every query anew; caching statements by SQL text makes its queries several times cheaper.
    const statements = new Map<string, BetterSqlite3.Statement>();
    const database = {
      prepare(text: string) {
        let stmt = statements.get(text);
        if (!stmt) {
          stmt = raw.prepare(text);
          if (statements.size < 500) statements.set(text, stmt);
        }
        return stmt;
      },
      close: () => raw.close(),
    };
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    const { migrate } = await import("./migrate.js");
    await migrate(db);
    return new SqliteStore(raw, db, startCheckpointer(path));
  }

  /** A synchronous transaction on the raw connection, ordered after any async one in progress. */
  private syncWrite<T>(fn: () => T): Promise<T> {
    if (this.lock.busy) return this.lock.run(async () => this.raw.transaction(fn)());
    try {
      return Promise.resolve(this.raw.transaction(fn)());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // The per-run paths (create, read the log) skip the query builder: they run once per run and must cost microseconds.
  override createRun(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }> {
    return this.syncWrite(() => {
      if (input.idempotencyKey) {
        const existing = this.stmts.runByKey.get(input.workspace, input.idempotencyKey) as Selectable<RunsTable> | undefined;
        if (existing) return { run: sameRequestOrConflict(toRunRecord(existing), input), created: false };
      }
      const now = Date.now();
      let sessionId = input.sessionId;
      let sessionSeq = 1;
      if (sessionId) {
        const session = this.stmts.bumpSession.get(now, sessionId, input.workspace) as { next_seq: number } | undefined;
        if (!session) throw sessionNotFound(sessionId);
        sessionSeq = session.next_seq - 1;
      } else {
        sessionId = newId("ses", now);
        this.stmts.insertSession.run(sessionId, input.workspace, input.agent, now, now);
      }
      const row = newRunRow(input, sessionId, sessionSeq, now);
      this.stmts.insertRun.run(row);
      const started = startedEvent(row, input);
      this.stmts.insertEvent.run(row.id, 1, started.type, JSON.stringify(started.data), now, EVENT_SCHEMA_VERSION, null);
      return { run: toRunRecord(row), created: true };
    });
  }

  override async listUnnotifiedChildren(limit: number): Promise<RunRecord[]> {
    return (this.stmts.unnotified.all(limit) as Selectable<RunsTable>[]).map(toRunRecord);
  }

  override async getEvents(runId: string, afterSeq = 0): Promise<RunEvent[]> {
    return (this.stmts.events.all(runId, afterSeq) as { seq: number; type: string; data: string; at: number; v: number }[]).map(toRunEvent);
  }

  protected write<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.lock.run(() => this.db.transaction().execute(fn));
  }

  protected async lockRun(trx: Transaction<Database>, runId: string): Promise<Selectable<RunsTable> | undefined> {
    return trx.selectFrom("runs").selectAll().where("id", "=", runId).executeTakeFirst();
  }

  commit(request: CommitRequest): Promise<CommitResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    if (this.lock.busy) {
      // An async transaction holds the connection; write the batch right after it.
      void this.lock.run(async () => this.writeBatch());
      return;
    }
    this.writeBatch();
  };

  private writeBatch(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    const at = Date.now();
    const outcomes: Outcome[] = new Array(batch.length);
    try {
      this.writeAll(batch, at, outcomes);
    } catch {
      // One commit broke the batch, which rolled back whole: write each alone, so only the broken one fails.
      for (let i = 0; i < batch.length; i++) {
        const one: Outcome[] = [];
        try {
          this.writeAll([batch[i]], at, one);
          outcomes[i] = one[0];
        } catch (err) {
          outcomes[i] = { failed: err };
        }
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const o = outcomes[i];
      if (o instanceof CommitConflict) batch[i].reject(o);
      else if ("failed" in o) batch[i].reject(o.failed);
      else batch[i].resolve(o);
    }
  }

  private applyOne(r: CommitRequest, at: number): CommitResult | CommitConflict {
    const p = r.patch;
    const lastSeq = r.expectedSeq + r.events.length;
    const terminal = p.status === "completed" || p.status === "failed" || p.status === "cancelled";
    const release = p.release ? 1 : 0;
    // Most commits only move a running run forward: leave the indexed columns (status, wake, lease) out
    // of the statement, or SQLite rewrites their index entries on every step.
    const row = (
      p.status === "running" && !release
        ? this.stmts.progress.get(lastSeq, p.steps, p.inputTokens, p.outputTokens, p.costUsd, at, r.runId, r.expectedSeq, r.leaseToken)
        : this.advance(r, p, lastSeq, at, terminal, release)
    ) as { cancel_requested: string | null } | undefined;
    if (!row) {
      const current = this.stmts.probe.get(r.runId) as { last_seq: number; lease_token: string | null } | undefined;
      return new CommitConflict(current && current.lease_token === r.leaseToken ? "seq_conflict" : "lease_lost", r.runId);
    }
    for (let i = 0; i < r.events.length; i++) {
      const e = r.events[i];
      this.stmts.insertEvent.run(r.runId, r.expectedSeq + i + 1, e.type, JSON.stringify(e.data), at, EVENT_SCHEMA_VERSION, r.leaseToken);
    }
    if (r.approval) {
      const a = r.approval;
      this.stmts.insertApproval.run({ ...approvalColumns(a), at, run_id: r.runId });
    }
    if (r.audit) {
      for (const e of r.audit) this.stmts.insertAudit.run(newId("aud", at), at, e.kind, e.actor, JSON.stringify(e.data), r.runId);
    }
    if (r.usage) {
      for (const u of r.usage) {
        const seq = r.expectedSeq + u.event + 1;
        this.stmts.insertUsage.run(seq, u.agent, u.model, u.purpose, at, u.inputTokens, u.outputTokens, u.costUsd, r.runId);
      }
    }
    return { lastSeq, at, cancelRequested: row.cancel_requested };
  }

  private advance(r: CommitRequest, p: CommitRequest["patch"], lastSeq: number, at: number, terminal: boolean, release: number) {
    return this.stmts.advance.get(
      lastSeq,
      p.status,
      p.steps,
      p.inputTokens,
      p.outputTokens,
      p.costUsd,
      p.output ?? null,
      p.error?.code ?? null,
      p.error?.message ?? null,
      p.waitingFor ? JSON.stringify(p.waitingFor) : null,
      p.wakeAt ?? null,
      at,
      terminal ? at : null,
      release,
      release,
      release,
      r.runId,
      r.expectedSeq,
      r.leaseToken,
    );
  }

  async claimRuns(owner: string, limit: number, leaseMs: number, caps?: ClaimCaps): Promise<ClaimedRun[]> {
    return this.syncWrite(() => {
      const now = Date.now();
      const token = newLeaseToken();
      const ids = this.stmts.resumable.pluck().all({ now, limit }) as string[];
      if (ids.length < limit) ids.push(...this.claimQueued(limit - ids.length, caps ?? {}));
      return ids.map((id) => {
        const row = this.stmts.runById.get(id) as Selectable<RunsTable>; // as it was before the claim
        this.stmts.claim.run(owner, token, now + leaseMs, now, id);
        return { run: toRunRecord(row), leaseToken: token };
      });
    });
  }

  /** Queued runs first in their session, fairly across workspaces and within caps (fair-claim.ts). */
  private claimQueued(limit: number, caps: ClaimCaps): string[] {
    const workspaces = this.stmts.queuedWorkspaces.pluck().all() as string[];
    if (workspaces.length === 0) return [];
    const capped = hasCaps(caps);
    const running = capped || workspaces.length > 1 ? (this.stmts.runningCounts.all() as RunningCount[]) : [];
    const full = saturated(running, caps);
    const candidates = workspaces
      .filter((w) => !full.workspaces.has(w))
      .flatMap(
        (workspace) =>
          this.stmts.queuedIn.all({ workspace, skip: JSON.stringify(full.agents.get(workspace) ?? []), limit }) as ClaimCandidate[],
      );
    if (!capped && workspaces.length === 1) return candidates.map((c) => c.id);
    return pickFair(candidates, running, caps, limit).map((c) => c.id);
  }

  async close(): Promise<void> {
    await this.lock.run(async () => undefined);
    while (this.queue.length > 0 || this.scheduled) await new Promise((r) => setImmediate(r));
    await this.checkpointer?.stop();
    await this.db.destroy();
  }
}

export { sql };
