/**
 * The audit log of a store: entries arrive in `audit_outbox` (with the run commit they record, or through
 * `record`), and one chainer per workspace moves them, oldest first, onto the workspace's hash chain in
 * `audit_log`, signing a checkpoint of the head every so often. On PostgreSQL several processes may chain at
 * once: a transaction-scoped advisory lock per workspace lets exactly one of them extend a chain at a time.
 */
import type { KeyObject } from "node:crypto";
import { type Kysely, sql, type Transaction } from "kysely";
import type { Database } from "../../store/schema.js";
import type { Store } from "../../store/types.js";
import { canonicalJson, entryHash, GENESIS_HASH } from "./chain.js";
import { type AuditSigningKey, signCheckpoint } from "./keys.js";
import { type AuditRecordInput, appendToOutbox } from "./outbox.js";

/** An entry written outside a run commit (auth failures, key changes, secret use, definitions loaded). */
export type { AuditRecordInput } from "./outbox.js";

/** A chained entry as read back. */
export interface AuditEntry {
  workspace: string;
  seq: number;
  at: number;
  kind: string;
  actor: string;
  runId: string | null;
  data: Record<string, unknown>;
  hash: string;
}

export interface AuditLogOptions {
  /** Sign a checkpoint once this many entries are unsigned (default 1000)… */
  checkpointEvery?: number;
  /** …or once this long has passed since the last one, when entries were added (default 60 000 ms). */
  checkpointMs?: number;
  /** Outbox rows chained per transaction (default 1000). */
  batch?: number;
  /** Background drain failures (the next tick tries again). */
  onError?: (err: unknown) => void;
}

/** Advisory lock class of the audit chainer (the second key is the workspace's hashtext). */
const LOCK_CLASS = 0x0a0d17;
/** Rows per INSERT: 9 parameters each stays far below either database's parameter limit. */
const INSERT_CHUNK = 500;

export class AuditLog {
  private readonly every: number;
  private readonly everyMs: number;
  private readonly batch: number;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<unknown> = Promise.resolve();
  /** Workspaces this process chained entries for that no checkpoint covers yet. */
  private readonly unsigned = new Set<string>();
  private closed = false;

  constructor(
    /** The store the chain lives in (verification and reports read it). */
    readonly store: Store,
    private readonly key: AuditSigningKey,
    private readonly options: AuditLogOptions = {},
  ) {
    this.every = options.checkpointEvery ?? 1000;
    this.everyMs = options.checkpointMs ?? 60_000;
    this.batch = options.batch ?? 1000;
  }

  get keyId(): string {
    return this.key.keyId;
  }

  /** The key checkpoints verify against (also in the data folder's audit-signing.pub). */
  get publicKey(): KeyObject {
    return this.key.publicKey;
  }

  /** Entries that come without a run commit: into the outbox now, chained by the next drain. */
  async record(workspace: string, entries: AuditRecordInput[]): Promise<void> {
    if (entries.length === 0) return;
    await this.store.domain.write((trx) => appendToOutbox(trx, workspace, entries));
  }

  /** Drains in the background every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs = 1000): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => {
      this.flush().catch((err) => this.options.onError?.(err));
    }, intervalMs);
    this.timer.unref();
  }

  /**
   * Chains everything now in the outbox; `checkpoint: true` also signs every head this process left unsigned
   * (tests, the CLI and shutdown use it). Calls in one process run one after another.
   */
  flush(options: { checkpoint?: boolean } = {}): Promise<{ chained: number; checkpoints: number }> {
    const next = this.draining.then(() => this.drain(options.checkpoint === true));
    this.draining = next.catch(() => undefined);
    return next;
  }

  /** Stops the timer, chains what is left and signs the heads (call before closing the store). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.closed) return;
    this.closed = true;
    await this.flush({ checkpoint: true });
  }

  /** Chained entries, newest first (see listAudit). */
  list(workspace: string, filter: AuditListFilter = {}): Promise<AuditEntry[]> {
    return listAudit(this.store, workspace, filter);
  }

  /** Entries waiting in the outbox of a workspace (not yet chained). */
  pending(workspace: string): Promise<number> {
    return pendingAudit(this.store, workspace);
  }

  private async drain(force: boolean): Promise<{ chained: number; checkpoints: number }> {
    const db = this.store.domain.db;
    const workspaces = (await db.selectFrom("audit_outbox").select("workspace").distinct().execute()).map((r) => r.workspace);
    let chained = 0;
    for (const ws of workspaces) {
      for (;;) {
        const n = await this.chainBatch(ws);
        chained += n;
        if (n > 0) this.unsigned.add(ws);
        if (n < this.batch) break;
      }
    }
    let checkpoints = 0;
    for (const ws of [...this.unsigned]) {
      const { signed, covered } = await this.checkpoint(ws, force);
      if (signed) checkpoints++;
      if (covered) this.unsigned.delete(ws);
    }
    return { chained, checkpoints };
  }

  /** Holds the workspace's chain for the rest of the transaction (PostgreSQL; SQLite serialises writers). */
  private async lockChain(trx: Transaction<Database>, workspace: string): Promise<void> {
    if (this.store.domain.kind === "postgres")
      await sql`SELECT pg_advisory_xact_lock(${LOCK_CLASS}::int, hashtext(${workspace}))`.execute(trx);
  }

  private chainBatch(workspace: string): Promise<number> {
    return this.store.domain.write(async (trx) => {
      await this.lockChain(trx, workspace);
      // Read after the lock: rows another chainer took are gone from this statement's snapshot.
      const rows = await trx
        .selectFrom("audit_outbox")
        .selectAll()
        .where("workspace", "=", workspace)
        .orderBy("at")
        .orderBy("id")
        .limit(this.batch)
        .execute();
      if (rows.length === 0) return 0;
      const head = await chainHead(trx, workspace);
      let seq = head?.seq ?? 0;
      let prev = head?.hash ?? GENESIS_HASH;
      const values = rows.map((r) => {
        const data = canonicalJson(parseData(r.data));
        const fields = { workspace, seq: ++seq, at: Number(r.at), kind: r.kind, actor: r.actor, run_id: r.run_id };
        const hash = entryHash(prev, fields, data);
        const row = { ...fields, data, prev_hash: prev, hash };
        prev = hash;
        return row;
      });
      for (let i = 0; i < values.length; i += INSERT_CHUNK)
        await trx
          .insertInto("audit_log")
          .values(values.slice(i, i + INSERT_CHUNK))
          .execute();
      const ids = rows.map((r) => r.id);
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        await trx
          .deleteFrom("audit_outbox")
          .where("id", "in", ids.slice(i, i + INSERT_CHUNK))
          .execute();
      }
      return rows.length;
    });
  }

  /** Signs the head when a checkpoint is due (or `force`); `covered`: the head is signed afterwards. */
  private checkpoint(workspace: string, force: boolean): Promise<{ signed: boolean; covered: boolean }> {
    return this.store.domain.write(async (trx) => {
      await this.lockChain(trx, workspace);
      const head = await chainHead(trx, workspace);
      if (!head) return { signed: false, covered: true };
      const last = await trx
        .selectFrom("audit_checkpoints")
        .select(["seq", "at"])
        .where("workspace", "=", workspace)
        .orderBy("seq", "desc")
        .limit(1)
        .executeTakeFirst();
      if (last && Number(last.seq) >= head.seq) return { signed: false, covered: true };
      const now = Date.now();
      const due = force || !last || head.seq - Number(last.seq) >= this.every || now - Number(last.at) >= this.everyMs;
      if (!due) return { signed: false, covered: false };
      await trx
        .insertInto("audit_checkpoints")
        .values({
          workspace,
          seq: head.seq,
          hash: head.hash,
          signature: signCheckpoint(this.key, workspace, head.seq, head.hash),
          key_id: this.key.keyId,
          at: now,
        })
        .execute();
      return { signed: true, covered: true };
    });
  }
}

async function chainHead(db: Kysely<Database> | Transaction<Database>, workspace: string): Promise<{ seq: number; hash: string } | null> {
  const row = await db
    .selectFrom("audit_log")
    .select(["seq", "hash"])
    .where("workspace", "=", workspace)
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
  return row ? { seq: Number(row.seq), hash: row.hash } : null;
}

/** Outbox data is JSON written by Outpost; text that is not (a bug) is kept, not dropped or allowed to stall the chain. */
function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
}

export interface AuditListFilter {
  kind?: string;
  runId?: string;
  limit?: number;
  /** A seq cursor: entries before it (the next page). */
  before?: number;
}

/** Chained entries of a workspace, newest first. */
export async function listAudit(store: Store, workspace: string, filter: AuditListFilter = {}): Promise<AuditEntry[]> {
  let q = store.domain.db
    .selectFrom("audit_log")
    .select(["workspace", "seq", "at", "kind", "actor", "run_id", "data", "hash"])
    .where("workspace", "=", workspace);
  if (filter.kind) q = q.where("kind", "=", filter.kind);
  if (filter.runId) q = q.where("run_id", "=", filter.runId);
  if (filter.before !== undefined) q = q.where("seq", "<", filter.before);
  const rows = await q
    .orderBy("seq", "desc")
    .limit(filter.limit ?? 100)
    .execute();
  return rows.map((r) => ({
    workspace: r.workspace,
    seq: Number(r.seq),
    at: Number(r.at),
    kind: r.kind,
    actor: r.actor,
    runId: r.run_id,
    data: JSON.parse(r.data) as Record<string, unknown>,
    hash: r.hash,
  }));
}

/** Entries of a workspace waiting in the outbox (not yet chained). */
export async function pendingAudit(store: Store, workspace: string): Promise<number> {
  const row = await store.domain.db
    .selectFrom("audit_outbox")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("workspace", "=", workspace)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
