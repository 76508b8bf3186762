/**
 * Verifies a workspace's audit chain: every hash recomputed, seqs continuous, each entry linked to the one
 * before it, each checkpoint signed by the given key and matching the entry at its seq. Streams the log in
 * pages (keyset on seq) and names the FIRST bad entry; the slow diagnosis (what kind of tampering) runs once.
 */
import type { KeyObject } from "node:crypto";
import { sql } from "kysely";
import type { Store } from "../../store/types.js";
import { type ChainedFields, entryHash, entryHashOf, GENESIS_HASH } from "./chain.js";
import { checkpointSignatureValid, keyIdOf } from "./keys.js";

export type AuditProblemKind = "edited" | "deleted" | "inserted" | "reordered" | "bad_checkpoint" | "truncated";

export interface AuditProblem {
  /** The first entry that cannot be trusted. */
  seq: number;
  kind: AuditProblemKind;
  message: string;
}

export interface VerifiedCheckpoint {
  seq: number;
  hash: string;
  at: number;
  keyId: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Entries verified (before the first bad one). */
  entries: number;
  /** Checkpoints verified (signature and hash). */
  checkpoints: number;
  /** Seq of the last entry in the log. */
  lastSeq: number;
  /** The last verified checkpoint: entries up to its seq are signed, later ones only chained. */
  lastCheckpoint: VerifiedCheckpoint | null;
  problem?: AuditProblem;
}

/** A stored entry that passed verification (data is the stored canonical JSON text). */
export interface VerifiedRow extends ChainedFields {
  data: string;
  hash: string;
}

export interface VerifyOptions {
  publicKey: KeyObject;
  /** Called for each entry that passed, in seq order (reports are built from these alone). */
  onEntry?: (row: VerifiedRow) => void;
  /** Rows read per query (default 5000). */
  pageSize?: number;
}

export async function verifyAudit(store: Store, workspace: string, options: VerifyOptions): Promise<AuditVerification> {
  const db = store.domain.db;
  const keyId = keyIdOf(options.publicKey);
  const pageSize = options.pageSize ?? 5000;
  const checkpoints = new Map<number, { hash: string; signature: string; key_id: string; at: number }>();
  for (const c of await db.selectFrom("audit_checkpoints").selectAll().where("workspace", "=", workspace).orderBy("seq").execute()) {
    checkpoints.set(Number(c.seq), { hash: c.hash, signature: c.signature, key_id: c.key_id, at: Number(c.at) });
  }

  let entries = 0;
  let verifiedCheckpoints = 0;
  let lastCheckpoint: VerifiedCheckpoint | null = null;
  let prev = GENESIS_HASH;
  let prevPrev: string | null = null;
  let expected = 1;
  const result = (problem?: AuditProblem): AuditVerification => ({
    ok: !problem,
    entries,
    checkpoints: verifiedCheckpoints,
    lastSeq: expected - 1,
    lastCheckpoint,
    ...(problem ? { problem } : {}),
  });
  const fail = async (problem: AuditProblem): Promise<AuditVerification> => {
    const last = await db
      .selectFrom("audit_log")
      .select((eb) => eb.fn.max("seq").as("seq"))
      .where("workspace", "=", workspace)
      .executeTakeFirst();
    return { ...result(problem), lastSeq: Number(last?.seq ?? 0) };
  };

  for (;;) {
    const page = await db
      .selectFrom("audit_log")
      .select(["seq", "at", "kind", "actor", "run_id", "data", "prev_hash", "hash"])
      .where("workspace", "=", workspace)
      .where("seq", ">=", expected)
      .orderBy("seq")
      .limit(pageSize)
      .execute();
    for (const r of page) {
      const seq = Number(r.seq);
      if (seq !== expected) {
        return fail({
          seq: expected,
          kind: "deleted",
          message: `entry ${expected} is missing: the log jumps from seq ${expected - 1} to ${seq}`,
        });
      }
      const row: VerifiedRow = {
        workspace,
        seq,
        at: Number(r.at),
        kind: r.kind,
        actor: r.actor,
        run_id: r.run_id,
        data: r.data,
        hash: r.hash,
      };
      if (r.prev_hash !== prev || hashOf(r.prev_hash, row) !== r.hash) {
        return fail(await diagnose(store, row, r.prev_hash, prev, prevPrev));
      }
      const cp = checkpoints.get(seq);
      if (cp) {
        if (cp.key_id !== keyId) {
          return fail({
            seq,
            kind: "bad_checkpoint",
            message: `the checkpoint at seq ${seq} names signing key ${cp.key_id}, not the key given (${keyId})`,
          });
        }
        if (!checkpointSignatureValid(options.publicKey, workspace, seq, cp.hash, cp.signature)) {
          return fail({ seq, kind: "bad_checkpoint", message: `the checkpoint at seq ${seq} has a signature that does not verify` });
        }
        if (cp.hash !== r.hash) {
          const from = (lastCheckpoint?.seq ?? 0) + 1;
          return fail({
            seq: from,
            kind: "edited",
            message: `entries ${from}–${seq} were rewritten: the checkpoint signed at seq ${seq} names hash ${cp.hash.slice(0, 16)}…, the log has ${r.hash.slice(0, 16)}…`,
          });
        }
        verifiedCheckpoints++;
        lastCheckpoint = { seq, hash: cp.hash, at: cp.at, keyId: cp.key_id };
      }
      options.onEntry?.(row);
      entries++;
      prevPrev = prev;
      prev = r.hash;
      expected++;
    }
    if (page.length < pageSize) break;
  }

  const lastSeq = expected - 1;
  const beyond = [...checkpoints.keys()].filter((s) => s > lastSeq);
  if (beyond.length > 0) {
    const signed = Math.max(...beyond);
    return result({
      seq: lastSeq + 1,
      kind: "truncated",
      message: `the log ends at seq ${lastSeq} but a checkpoint was signed at seq ${signed}: entries ${lastSeq + 1}–${signed} were removed`,
    });
  }
  return result();
}

/** The stored data is canonical text; where it is not (re-encoded but equal), the specification's form decides. */
function hashOf(prevHash: string, row: VerifiedRow): string {
  const fast = entryHash(prevHash, row, row.data);
  if (fast === row.hash) return fast;
  try {
    return entryHashOf(prevHash, row, JSON.parse(row.data));
  } catch {
    return fast;
  }
}

/** What was done to the entry at `row.seq`, whose link or hash failed (`prev` is the verified hash before it). */
async function diagnose(store: Store, row: VerifiedRow, storedPrev: string, prev: string, prevPrev: string | null): Promise<AuditProblem> {
  const { seq } = row;
  const db = store.domain.db;
  const where = `entry ${seq} (${row.kind})`;
  // The entry that really follows seq-1 (its prev_hash names it), if it sits elsewhere now.
  const successor = await db
    .selectFrom("audit_log")
    .select("seq")
    .where("workspace", "=", row.workspace)
    .where("prev_hash", "=", prev)
    .where("seq", "<>", seq)
    .orderBy("seq")
    .limit(1)
    .executeTakeFirst();
  const linksToChain =
    storedPrev !== prev &&
    (await db
      .selectFrom("audit_log")
      .select(sql<number>`1`.as("one"))
      .where("workspace", "=", row.workspace)
      .where("hash", "=", storedPrev)
      .executeTakeFirst()) !== undefined;
  if (successor) {
    const at = Number(successor.seq);
    if (linksToChain) {
      return {
        seq,
        kind: "reordered",
        message: `${where} is out of place: it belongs elsewhere in the chain, and the entry that follows seq ${seq - 1} is at seq ${at}`,
      };
    }
    return { seq, kind: "inserted", message: `${where} was inserted: the entry that follows seq ${seq - 1} is at seq ${at}` };
  }
  if (storedPrev === prev) return { seq, kind: "edited", message: `${where} does not match its hash: its content or hash was changed` };
  if (hashOf(prev, row) === row.hash) return { seq, kind: "edited", message: `${where} has a changed prev_hash` };
  if (prevPrev !== null && storedPrev === prevPrev) {
    return { seq: seq - 1, kind: "inserted", message: `entry ${seq - 1} was inserted: entry ${seq} links to seq ${seq - 2}` };
  }
  if (!linksToChain && hashOf(storedPrev, row) === row.hash) {
    return {
      seq: seq - 1,
      kind: "edited",
      message: `entry ${seq - 1} was replaced: entry ${seq} is intact but links to a different entry ${seq - 1}`,
    };
  }
  if (linksToChain) return { seq, kind: "reordered", message: `${where} is out of place: it links to an entry other than seq ${seq - 1}` };
  return { seq, kind: "deleted", message: `the entry that followed seq ${seq - 1} is gone (later entries were renumbered)` };
}
