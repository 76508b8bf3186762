/**
 * Scale-out store: PostgreSQL through `pg`. Rows are locked per run
 * (`FOR UPDATE`), claims use `FOR UPDATE SKIP LOCKED`, and commits of
 * concurrent runs share a transaction while the previous one is in flight.
 */
import { Kysely, PostgresDialect, type Selectable, sql, type Transaction } from "kysely";
import pg from "pg";
import { EVENT_SCHEMA_VERSION } from "../core/events.js";
import { newId } from "../core/ids.js";
import { type ClaimCandidate, type ClaimCaps, hasCaps, pickFair, type RunningCount, saturated } from "./fair-claim.js";
import { migrate } from "./migrate.js";
import type { Database, RunsTable } from "./schema.js";
import { approvalColumns, newLeaseToken, SqlStore, toRunRecord } from "./sql-store.js";
import { type ClaimedRun, CommitConflict, type CommitRequest, type CommitResult } from "./types.js";

interface Pending {
  request: CommitRequest;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

const INT8 = 20;
/** Epoch-ms columns are bigint: read them as numbers (safe up to year 287,396). */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/** The channel a store NOTIFYs when a run became runnable, and idle workers LISTEN on. */
const WORK_CHANNEL = "outpost_work";
/** The channel commits NOTIFY with the ids of runs whose logs grew (comma-separated), for event streams elsewhere. */
const EVENTS_CHANNEL = "outpost_events";
/** Run ids per notification: a payload must stay under PostgreSQL's 8,000 bytes. */
const IDS_PER_NOTICE = 200;
/** Commit batches written at once (each holds a pooled connection for its transaction). */
const FLUSHERS = 2;
/** The advisory lock claims under caps take in turn (any constant: it names this lock in pg_locks). */
const CLAIM_LOCK = 7_700_001;
/** How long a lost LISTEN connection waits before it connects again. */
const RELISTEN_MS = 1_000;

export class PostgresStore extends SqlStore {
  readonly kind = "postgres" as const;
  private queue: Pending[] = [];
  /** Batches being collected or written now (flush). */
  private flushers = 0;
  private readonly workListeners: (() => void)[] = [];
  private readonly eventListeners: ((runIds: string[] | "all") => void)[] = [];
  private listener: pg.Client | null = null;
  private listening = false;
  /** The LISTEN connection is up and listens on channels(). */
  private listenerReady = false;
  private closed = false;

  constructor(
    db: Kysely<Database>,
    private readonly pool: pg.Pool,
    private readonly url?: string,
  ) {
    super(db);
  }

  static async open(url: string, options: { poolSize?: number } = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types });
    // A client losing its connection (a server restart, a failover) must not crash the process: idle, the pool drops
    // it; checked out (between a transaction's statements), the statement under way or the next one fails instead
    // — a transient error the executor retries — and the pool drops it on release.
    pool.on("error", () => undefined);
    pool.on("connect", (client) => client.on("error", () => undefined));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await migrate(db);
    return new PostgresStore(db, pool, url);
  }

  /**
   * Wakes `listener` whenever any process on this database made a run runnable (LISTEN/NOTIFY), so idle workers
   * claim at once instead of at their next poll. One connection per store, connected again after it is lost (a
   * restart, a failover); polling stays the fallback for due timers and dead workers' leases.
   */
  onWork(listener: () => void): void {
    this.workListeners.push(listener);
    if (this.workListeners.length === 1) this.startListening(WORK_CHANNEL);
  }

  /** Tells `listener` which runs' logs grew, whichever process committed: streams on any API node follow at once. */
  onEvents(listener: (runIds: string[] | "all") => void): void {
    this.eventListeners.push(listener);
    if (this.eventListeners.length === 1) this.startListening(EVENTS_CHANNEL);
  }

  /** The channels this process has listeners for (an API-only node does not listen for work). */
  private channels(): string[] {
    return [...(this.eventListeners.length > 0 ? [EVENTS_CHANNEL] : []), ...(this.workListeners.length > 0 ? [WORK_CHANNEL] : [])];
  }

  /** One connection, kept (listen() connects again after a loss); a channel added later is listened on it. */
  private startListening(channel: string): void {
    if (!this.listening) {
      this.listening = true;
      void this.listen();
    } else if (this.listenerReady && this.listener) {
      const client = this.listener;
      void client
        .query(`LISTEN ${channel}`)
        .then(() => {
          if (channel === EVENTS_CHANNEL) for (const l of this.eventListeners) l("all"); // commits before LISTEN took effect
        })
        .catch(() => undefined); // a failure here drops the connection: listen() again
    }
  }

  private async listen(): Promise<void> {
    if (this.closed || !this.url) return;
    const client = new pg.Client({ connectionString: this.url });
    const again = () => {
      if (this.listener !== client) return;
      this.listener = null;
      this.listenerReady = false;
      client.removeAllListeners();
      client.on("error", () => undefined); // a dying connection may report more than once
      void client.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.listen(), RELISTEN_MS).unref();
    };
    this.listener = client;
    client.on("error", again);
    client.on("end", again);
    client.on("notification", (n) => {
      if (n.channel === WORK_CHANNEL) for (const l of this.workListeners) l();
      else if (n.channel === EVENTS_CHANNEL && n.payload) {
        const ids = n.payload.split(",");
        for (const l of this.eventListeners) l(ids);
      }
    });
    try {
      await client.connect();
      const done = new Set<string>();
      for (let next = this.channels().find((c) => !done.has(c)); next; next = this.channels().find((c) => !done.has(c))) {
        await client.query(`LISTEN ${next}`); // channels added meanwhile are taken too
        done.add(next);
      }
      this.listenerReady = true;
      // What was committed while it was not listening went unheard: work is looked for once, and every stream
      // re-reads its run (a stream that read the log before LISTEN took effect would otherwise wait for its poll).
      for (const l of this.workListeners) l();
      for (const l of this.eventListeners) l("all");
    } catch {
      again();
    }
  }

  /** Tells every listening process that a run may be claimed (fire and forget: polling covers a lost one). */
  private signalWork(): void {
    if (this.closed) return;
    void sql`SELECT pg_notify(${WORK_CHANNEL}, '')`.execute(this.db).catch(() => undefined);
  }

  override async createRun(input: Parameters<SqlStore["createRun"]>[0]): ReturnType<SqlStore["createRun"]> {
    const r = await super.createRun(input);
    if (r.created) this.signalWork();
    return r;
  }

  override async applyExternal(...args: Parameters<SqlStore["applyExternal"]>): ReturnType<SqlStore["applyExternal"]> {
    const r = await super.applyExternal(...args);
    if (r.woke) this.signalWork();
    if (r.events.length > 0) void sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${r.run.id})`.execute(this.db).catch(() => undefined);
    return r;
  }

  override async releaseLease(runId: string, leaseToken: string): Promise<void> {
    await super.releaseLease(runId, leaseToken);
    this.signalWork(); // handed back on shutdown: another worker takes it now
  }

  protected write<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  protected async lockRun(trx: Transaction<Database>, runId: string): Promise<Selectable<RunsTable> | undefined> {
    return trx.selectFrom("runs").selectAll().where("id", "=", runId).forUpdate().executeTakeFirst();
  }

  commit(request: CommitRequest): Promise<CommitResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (this.flushers < FLUSHERS) void this.flush();
    });
  }

  /**
   * Up to FLUSHERS batches are written at once, each on its own connection: a commit that arrives while another
   * waits for its fsync goes at once instead of after it.
   */
  private async flush(): Promise<void> {
    this.flushers++;
    try {
      while (this.queue.length > 0) {
        await new Promise((r) => setImmediate(r)); // let commits of this turn join the batch
        // One commit per run in a batch (a run's next commit waits for its last; this only guards that): a later one
        // stays queued for the next round.
        const seen = new Set<string>();
        const batch: Pending[] = [];
        const later: Pending[] = [];
        for (const p of this.queue) {
          (seen.has(p.request.runId) ? later : batch).push(p);
          seen.add(p.request.runId);
        }
        this.queue = later;
        const at = Date.now();
        try {
          const outcomes = await this.writeAll(batch, at);
          for (let i = 0; i < batch.length; i++) {
            const o = outcomes[i];
            if (o instanceof CommitConflict) batch[i].reject(o);
            else batch[i].resolve(o);
          }
        } catch (err) {
          if (batch.length === 1) {
            batch[0].reject(err);
            continue;
          }
          // One commit broke the batch, which rolled back whole: write each alone, so only the broken one fails.
          for (const p of batch) {
            try {
              const [o] = await this.writeAll([p], at);
              if (o instanceof CommitConflict) p.reject(o);
              else p.resolve(o);
            } catch (e) {
              p.reject(e);
            }
          }
        }
      }
    } finally {
      this.flushers--;
    }
  }

  /**
   * The whole batch in one statement (a transaction with the approvals, when some commit asks for one): a round
   * trip per statement is what a step costs on PostgreSQL, so the runs' rows, events, audit entries, cost ledger rows and the
   * notification for streams elsewhere are written by data-modifying CTEs over arrays (unnest). Rows are locked in
   * id order first — here, in heartbeats and in claims alike — so writers never deadlock. A run moves only while it
   * still holds its lease and its log is where the commit expects (fencing); the others get their CommitConflict
   * and write nothing.
   */
  private async writeAll(batch: Pending[], at: number): Promise<(CommitResult | CommitConflict)[]> {
    const rs = batch.map((p) => p.request);
    const moved = await this.writeBatch(
      rs,
      at,
      rs.filter((r) => r.approval),
    );
    const missed = rs.filter((r) => !moved.has(r.runId)).map((r) => r.runId);
    const tokens = new Map<string, string | null>();
    if (missed.length > 0) {
      const current = await this.db.selectFrom("runs").select(["id", "lease_token"]).where("id", "in", missed).execute();
      for (const c of current) tokens.set(c.id, c.lease_token);
    }
    return rs.map((r): CommitResult | CommitConflict => {
      if (moved.has(r.runId)) return { lastSeq: r.expectedSeq + r.events.length, at, cancelRequested: moved.get(r.runId) ?? null };
      return new CommitConflict(tokens.get(r.runId) === r.leaseToken ? "seq_conflict" : "lease_lost", r.runId);
    });
  }

  /** The batch's one statement (COMMIT_BATCH, prepared once per connection); answers the runs that moved. */
  private async writeBatch(rs: CommitRequest[], at: number, approvals: CommitRequest[]): Promise<Map<string, string | null>> {
    const patches = rs.map((r) => {
      const p = r.patch;
      const terminal = p.status === "completed" || p.status === "failed" || p.status === "cancelled";
      // A running run moving forward keeps the indexed columns as they are (keeps updates HOT).
      return { r, p, terminal, moves: !(p.status === "running" && p.release !== true), release: p.release === true };
    });
    const events = rs.flatMap((r) => r.events.map((e, i) => ({ r, e, seq: r.expectedSeq + i + 1 })));
    const audit = rs.flatMap((r) => (r.audit ?? []).map((e) => ({ r, e })));
    const usage = rs.flatMap((r) => (r.usage ?? []).map((u) => ({ r, u })));
    const values = [
      patches.map((x) => x.r.runId),
      patches.map((x) => x.r.expectedSeq),
      patches.map((x) => x.r.leaseToken),
      patches.map((x) => x.r.expectedSeq + x.r.events.length),
      patches.map((x) => x.p.steps),
      patches.map((x) => x.p.inputTokens),
      patches.map((x) => x.p.outputTokens),
      patches.map((x) => x.p.costUsd),
      patches.map((x) => x.moves),
      patches.map((x) => x.release),
      patches.map((x) => x.p.status),
      patches.map((x) => x.p.output ?? null),
      patches.map((x) => x.p.error?.code ?? null),
      patches.map((x) => x.p.error?.message ?? null),
      patches.map((x) => (x.p.waitingFor ? JSON.stringify(x.p.waitingFor) : null)),
      patches.map((x) => x.p.wakeAt ?? null),
      patches.map((x) => (x.terminal ? at : null)),
      at,
      events.map((x) => x.r.runId),
      events.map((x) => x.seq),
      events.map((x) => x.e.type),
      events.map((x) => JSON.stringify(x.e.data)),
      events.map((x) => x.r.leaseToken),
      EVENT_SCHEMA_VERSION,
      audit.map(() => newId("aud", at)),
      audit.map((x) => x.e.kind),
      audit.map((x) => x.e.actor),
      audit.map((x) => JSON.stringify(x.e.data)),
      audit.map((x) => x.r.runId),
      [...new Set(events.map((x) => x.r.runId))],
      usage.map((x) => x.r.runId),
      usage.map((x) => x.r.expectedSeq + x.u.event + 1),
      usage.map((x) => x.u.agent),
      usage.map((x) => x.u.model),
      usage.map((x) => x.u.purpose),
      usage.map((x) => x.u.inputTokens),
      usage.map((x) => x.u.outputTokens),
      usage.map((x) => x.u.costUsd),
    ];
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      if (approvals.length > 0) await client.query("BEGIN");
      const { rows } = await client.query<{ id: string; cancel_requested: string | null }>({
        name: "outpost_commit_batch",
        text: COMMIT_BATCH,
        values,
      });
      const moved = new Map(rows.map((r) => [r.id, r.cancel_requested]));
      for (const r of approvals) if (moved.has(r.runId)) await insertApproval(client, r, at);
      if (approvals.length > 0) await client.query("COMMIT");
      return moved;
    } catch (err) {
      if (approvals.length > 0) await client.query("ROLLBACK").catch(() => undefined);
      broken = err as Error;
      throw err;
    } finally {
      // A connection that failed mid-statement is not handed out again.
      client.release(broken && isTransientPgError(broken) ? broken : undefined);
    }
  }

  override async renewLeases(owner: string, runIds: string[], leaseMs: number): Promise<void> {
    if (runIds.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      await sql`
        UPDATE runs SET lease_expires_at = ${Date.now() + leaseMs}
        WHERE id IN (SELECT id FROM runs WHERE lease_owner = ${owner} AND id = ANY(${runIds}) ORDER BY id FOR UPDATE)`.execute(trx);
    });
  }

  async claimRuns(owner: string, limit: number, leaseMs: number, caps?: ClaimCaps): Promise<ClaimedRun[]> {
    const now = Date.now();
    const token = newLeaseToken();
    return this.db.transaction().execute(async (trx) => {
      // Caps count what every worker runs: claims under caps take turns, so two cannot both fill the last slot.
      if (hasCaps(caps)) await sql`SELECT pg_advisory_xact_lock(${CLAIM_LOCK})`.execute(trx);
      // In-flight runs whose lease lapsed first, then due timers, each through its own index, rows other workers hold skipped.
      const resumed = (
        await sql<{ id: string }>`
          WITH lapsed AS (
            SELECT id FROM runs WHERE status = 'running' AND lease_expires_at IS NULL LIMIT ${limit} FOR UPDATE SKIP LOCKED),
          expired AS (
            SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < ${now}
            ORDER BY lease_expires_at LIMIT ${limit} FOR UPDATE SKIP LOCKED),
          due AS (
            SELECT id FROM runs WHERE status = 'waiting' AND wake_at <= ${now} ORDER BY wake_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          SELECT id FROM lapsed UNION ALL SELECT id FROM expired UNION ALL SELECT id FROM due LIMIT ${limit}`.execute(trx)
      ).rows.map((r) => r.id);
      const ids = [...resumed];
      if (ids.length < limit) ids.push(...(await this.claimQueued(trx, limit - ids.length, caps ?? {})));
      if (ids.length === 0) return [];
      // Rows as they were before the claim (the executor tells a resumed run from a fresh one by its status).
      const before = await trx.selectFrom("runs").selectAll().where("id", "in", ids).execute();
      await trx
        .updateTable("runs")
        .set({ status: "running", lease_owner: owner, lease_token: token, lease_expires_at: now + leaseMs, updated_at: now })
        .where("id", "in", ids)
        .execute();
      return before.sort((a, b) => (a.id < b.id ? -1 : 1)).map((row) => ({ run: toRunRecord(row), leaseToken: token }));
    });
  }

  /**
   * Queued runs first in their session, fairly across workspaces (fair-claim.ts): each workspace with queued runs
   * (found through runs_queued_by_workspace, one index probe each) offers its oldest that no cap holds back.
   */
  private async claimQueued(trx: Transaction<Database>, limit: number, caps: ClaimCaps): Promise<string[]> {
    const capped = hasCaps(caps);
    const running = capped ? await this.runningCounts(trx) : [];
    const full = saturated(running, caps);
    const skipAgents = [...full.agents].flatMap(([w, agents]) => agents.map((a) => ({ w, a })));
    const { rows } = await sql<ClaimCandidate>`
      WITH RECURSIVE ws(w) AS (
        (SELECT workspace FROM runs WHERE status = 'queued' ORDER BY workspace LIMIT 1)
        UNION ALL
        SELECT (SELECT workspace FROM runs WHERE status = 'queued' AND workspace > ws.w ORDER BY workspace LIMIT 1)
        FROM ws WHERE ws.w IS NOT NULL)
      SELECT q.id, q.workspace, q.agent FROM ws CROSS JOIN LATERAL (
        SELECT r.id, r.workspace, r.agent FROM runs r
        WHERE r.workspace = ws.w AND r.status = 'queued'
          AND r.workspace <> ALL(${[...full.workspaces]}::text[])
          AND NOT EXISTS (SELECT 1 FROM unnest(${skipAgents.map((s) => s.w)}::text[], ${skipAgents.map((s) => s.a)}::text[]) AS f(w, a)
                          WHERE f.w = r.workspace AND f.a = r.agent)
          AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.session_id = r.session_id AND p.session_seq < r.session_seq
                          AND p.status IN ('queued', 'running', 'waiting'))
        ORDER BY r.id LIMIT ${limit} FOR UPDATE OF r SKIP LOCKED) q
      WHERE ws.w IS NOT NULL`.execute(trx);
    if (rows.length === 0) return [];
    // One workspace and no caps (the common case): its oldest, without counting what runs.
    const several = rows.some((r) => r.workspace !== rows[0].workspace);
    if (!capped && !several) return rows.slice(0, limit).map((r) => r.id);
    return pickFair(rows, capped ? running : await this.runningCounts(trx), caps, limit).map((c) => c.id);
  }

  private async runningCounts(trx: Transaction<Database>): Promise<RunningCount[]> {
    const { rows } = await sql<RunningCount>`
      SELECT workspace, agent, count(*)::int AS n FROM runs WHERE status = 'running' GROUP BY workspace, agent`.execute(trx);
    return rows;
  }

  async close(): Promise<void> {
    while (this.flushers > 0 || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    const listener = this.listener;
    this.listener = null;
    if (listener) {
      listener.removeAllListeners();
      listener.on("error", () => undefined);
      await listener.end().catch(() => undefined);
    }
    await this.db.destroy();
  }
}

/** The approval a commit asks for, bound to its run (and workspace) in the same transaction. */
async function insertApproval(client: pg.PoolClient, r: CommitRequest, at: number): Promise<void> {
  const c = approvalColumns(r.approval as NonNullable<CommitRequest["approval"]>);
  await client.query(
    `INSERT INTO approvals (id, workspace, run_id, call_id, agent, tool, arguments, status, created_at,
       call_key, action_hash, expires_at, requested_by, approver_role, approver_group, policies)
     SELECT $1, workspace, id, $2, COALESCE($3, agent), $4, $5, 'pending', $6,
       $7, $8, $9::bigint, $10, $11, $12, $13
     FROM runs WHERE id = $14`,
    [
      c.id,
      c.call_id,
      c.agent,
      c.tool,
      c.arguments,
      at,
      c.call_key,
      c.action_hash,
      c.expires_at,
      c.requested_by,
      c.approver_role,
      c.approver_group,
      c.policies,
      r.runId,
    ],
  );
}

/** Connection-level failures: the client that saw one is dropped from the pool. */
function isTransientPgError(err: Error): boolean {
  const code = String((err as { code?: unknown }).code ?? "");
  return /^(08|57P)/.test(code) || /^E(CONN|PIPE|TIMEDOUT)/.test(code) || /Connection terminated/i.test(err.message);
}

/**
 * A batch of commits as one statement: $1–$17 one entry per run (id, expected seq, lease token, new last seq, steps,
 * tokens in and out, cost, whether the indexed columns move, release, status, output, error code and message,
 * waiting_for, wake_at, completed_at), $18 the commit time, $19–$23 one per event (run, seq, type, data, lease),
 * $24 the event schema version, $25–$29 one per audit entry (id, kind, actor, data, run), $30 the runs whose logs grew,
 * $31–$38 one per model call for the cost ledger (run, seq, agent, model, purpose, tokens in and out, cost).
 * Text, not a builder: it is prepared once per connection and only its arrays change.
 */
const COMMIT_BATCH = `
WITH v AS (
  SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::int[], $6::bigint[], $7::bigint[], $8::float8[],
                       $9::bool[], $10::bool[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[], $17::bigint[])
    AS v(id, expected, token, last_seq, steps, input_tokens, output_tokens, cost_usd, moves, release, status, output,
         error_code, error_message, waiting_for, wake_at, completed_at)),
locked AS (SELECT id FROM runs WHERE id IN (SELECT id FROM v) ORDER BY id FOR UPDATE),
moved AS (
  UPDATE runs SET
    last_seq = v.last_seq, steps = v.steps, input_tokens = v.input_tokens, output_tokens = v.output_tokens,
    cost_usd = v.cost_usd, updated_at = $18::bigint,
    status = CASE WHEN v.moves THEN v.status ELSE runs.status END,
    output = CASE WHEN v.moves THEN v.output ELSE runs.output END,
    error_code = CASE WHEN v.moves THEN v.error_code ELSE runs.error_code END,
    error_message = CASE WHEN v.moves THEN v.error_message ELSE runs.error_message END,
    waiting_for = CASE WHEN v.moves THEN v.waiting_for ELSE runs.waiting_for END,
    wake_at = CASE WHEN v.moves THEN v.wake_at ELSE runs.wake_at END,
    completed_at = CASE WHEN v.moves THEN v.completed_at ELSE runs.completed_at END,
    lease_owner = CASE WHEN v.release THEN NULL ELSE runs.lease_owner END,
    lease_token = CASE WHEN v.release THEN NULL ELSE runs.lease_token END,
    lease_expires_at = CASE WHEN v.release THEN NULL ELSE runs.lease_expires_at END
  FROM v JOIN locked ON locked.id = v.id
  WHERE runs.id = v.id AND runs.last_seq = v.expected AND runs.lease_token = v.token
  RETURNING runs.id, runs.cancel_requested, runs.workspace),
ev AS (
  INSERT INTO events (run_id, seq, type, data, at, v, lease)
  SELECT e.run_id, e.seq, e.type, e.data, $18::bigint, $24::int, e.lease
  FROM unnest($19::text[], $20::int[], $21::text[], $22::text[], $23::text[]) AS e(run_id, seq, type, data, lease)
  WHERE e.run_id IN (SELECT id FROM moved)),
au AS (
  INSERT INTO audit_outbox (id, workspace, at, kind, actor, run_id, data)
  SELECT e.id, moved.workspace, $18::bigint, e.kind, e.actor, moved.id, e.data
  FROM unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::text[]) AS e(id, kind, actor, data, run_id)
  JOIN moved ON moved.id = e.run_id),
us AS (
  INSERT INTO model_usage (workspace, run_id, seq, agent, model, purpose, at, input_tokens, output_tokens, cost_usd)
  SELECT moved.workspace, moved.id, u.seq, u.agent, u.model, u.purpose, $18::bigint, u.input_tokens, u.output_tokens, u.cost_usd
  FROM unnest($31::text[], $32::int[], $33::text[], $34::text[], $35::text[], $36::bigint[], $37::bigint[], $38::float8[])
    AS u(run_id, seq, agent, model, purpose, input_tokens, output_tokens, cost_usd)
  JOIN moved ON moved.id = u.run_id),
told AS (
  SELECT pg_notify('${EVENTS_CHANNEL}', string_agg(g.id, ',')) FROM (
    SELECT moved.id, (row_number() OVER (ORDER BY moved.id) - 1) / ${IDS_PER_NOTICE} AS chunk
    FROM moved WHERE moved.id = ANY($30::text[])) g
  GROUP BY g.chunk)
SELECT moved.id, moved.cancel_requested, (SELECT count(*) FROM told) AS told FROM moved`;
