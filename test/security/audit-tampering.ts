/**
 * Tampering with the audit log directly in the database (as someone with write access to it would), on any
 * driver: each change must be detected by verifyAudit, naming the first bad entry and what was done.
 */
import { generateKeyPairSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog, type AuditSigningKey, entryHash, keyIdOf, verifyAudit } from "../../src/security/audit/index.js";
import type { Store } from "../../src/store/types.js";

/** Runs SQL on the store's database outside Outpost; `$1`-style placeholders. */
export type Exec = (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

export interface TamperTarget {
  store: Store;
  exec: Exec;
  close(): Promise<void>;
}

export function testKey(): AuditSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), publicKeyPem: publicKey.export({ format: "pem", type: "spki" }) as string };
}

const N = 30;

export function describeAuditTampering(name: string, open: () => Promise<TamperTarget>): void {
  describe(`audit tampering: ${name}`, () => {
    let t: TamperTarget;
    let key: AuditSigningKey;
    const W = "acme";

    beforeEach(async () => {
      t = await open();
      key = testKey();
      // 30 entries, a checkpoint every 10: at 1 (the first drain), 11, 21 and 30 (the head, at close).
      const log = new AuditLog(t.store, key, { checkpointEvery: 10, batch: 10 });
      for (let i = 1; i <= N; i++) {
        await log.record(W, [
          { kind: "tool.executed", actor: "agent:refunds", runId: `run_${i}`, data: { i, tool: "ledger.refund", amount: i * 10 } },
        ]);
        await log.flush();
      }
      await log.close();
      const ok = await verifyAudit(t.store, W, { publicKey: key.publicKey });
      expect(ok).toMatchObject({ ok: true, entries: N, checkpoints: 4, lastSeq: N });
    });
    afterEach(async () => {
      await t?.close();
    });

    const verify = () => verifyAudit(t.store, W, { publicKey: key.publicKey });
    const row = async (seq: number) =>
      (await t.exec("SELECT * FROM audit_log WHERE workspace = $1 AND seq = $2", [W, seq]))[0] as Record<string, string | number | null>;
    const expectProblem = async (seq: number, kind: string) => {
      const v = await verify();
      expect(v.ok, JSON.stringify(v)).toBe(false);
      expect(v.problem?.kind, v.problem?.message).toBe(kind);
      expect(v.problem?.seq, v.problem?.message).toBe(seq);
      expect(v.problem?.message).toBeTruthy();
      return v;
    };

    it("an edited data field", async () => {
      await t.exec("UPDATE audit_log SET data = $1 WHERE workspace = $2 AND seq = 7", [
        JSON.stringify({ amount: 9000, i: 7, tool: "ledger.refund" }),
        W,
      ]);
      const v = await expectProblem(7, "edited");
      expect(v.entries).toBe(6);
    });

    it("an edited hash", async () => {
      await t.exec("UPDATE audit_log SET hash = $1 WHERE workspace = $2 AND seq = 13", ["f".repeat(64), W]);
      await expectProblem(13, "edited");
    });

    it("an edited actor, recomputed into a self-consistent row, still breaks the next link", async () => {
      const r = await row(4);
      const fields = {
        workspace: W,
        seq: 4,
        at: Number(r.at),
        kind: String(r.kind),
        actor: "agent:someone-else",
        run_id: r.run_id as string,
      };
      await t.exec("UPDATE audit_log SET actor = $1, hash = $2 WHERE workspace = $3 AND seq = 4", [
        fields.actor,
        entryHash(String(r.prev_hash), fields, String(r.data)),
        W,
      ]);
      // Row 4 is consistent in itself; row 5 no longer links to it. The first entry that cannot be trusted is 4.
      await expectProblem(4, "edited");
    });

    it("a deleted middle entry", async () => {
      await t.exec("DELETE FROM audit_log WHERE workspace = $1 AND seq = 7", [W]);
      await expectProblem(7, "deleted");
    });

    it("a deleted middle entry with the later ones renumbered", async () => {
      await t.exec("DELETE FROM audit_log WHERE workspace = $1 AND seq = 7", [W]);
      await t.exec("UPDATE audit_log SET seq = -seq WHERE workspace = $1 AND seq > 7", [W]);
      await t.exec("UPDATE audit_log SET seq = -seq - 1 WHERE workspace = $1 AND seq < 0", [W]);
      await expectProblem(7, "deleted");
    });

    it("the last entries deleted, back below a checkpoint", async () => {
      await t.exec("DELETE FROM audit_log WHERE workspace = $1 AND seq > 25", [W]);
      const v = await expectProblem(26, "truncated");
      expect(v.lastSeq).toBe(25);
    });

    const shiftFrom = async (seq: number) => {
      await t.exec("UPDATE audit_log SET seq = -seq WHERE workspace = $1 AND seq >= $2", [W, seq]);
      await t.exec("UPDATE audit_log SET seq = 1 - seq WHERE workspace = $1 AND seq < 0", [W]);
    };

    it("an inserted entry", async () => {
      await shiftFrom(7);
      await t.exec(
        "INSERT INTO audit_log (workspace, seq, at, kind, actor, run_id, data, prev_hash, hash) VALUES ($1, 7, 1, 'tool.executed', 'agent:refunds', NULL, '{}', $2, $3)",
        [W, "a".repeat(64), "b".repeat(64)],
      );
      await expectProblem(7, "inserted");
    });

    it("an inserted entry with correct links and hash (forged by someone who knows the algorithm)", async () => {
      const before = await row(6);
      await shiftFrom(7);
      const fields = { workspace: W, seq: 7, at: Number(before.at), kind: "tool.executed", actor: "agent:refunds", run_id: null };
      const data = JSON.stringify({ amount: 9000, tool: "ledger.refund" });
      await t.exec(
        "INSERT INTO audit_log (workspace, seq, at, kind, actor, run_id, data, prev_hash, hash) VALUES ($1, 7, $2, $3, $4, NULL, $5, $6, $7)",
        [W, fields.at, fields.kind, fields.actor, data, before.hash, entryHash(String(before.hash), fields, data)],
      );
      await expectProblem(7, "inserted");
    });

    it("two entries' contents swapped (reordered)", async () => {
      const a = await row(5);
      const b = await row(12);
      const set =
        "UPDATE audit_log SET at = $1, kind = $2, actor = $3, run_id = $4, data = $5, prev_hash = $6, hash = $7 WHERE workspace = $8 AND seq = $9";
      await t.exec(set, [b.at, b.kind, b.actor, b.run_id, b.data, b.prev_hash, b.hash, W, 5]);
      await t.exec(set, [a.at, a.kind, a.actor, a.run_id, a.data, a.prev_hash, a.hash, W, 12]);
      await expectProblem(5, "reordered");
    });

    it("two neighbours swapped (reordered)", async () => {
      const a = await row(8);
      const b = await row(9);
      const set =
        "UPDATE audit_log SET at = $1, kind = $2, actor = $3, run_id = $4, data = $5, prev_hash = $6, hash = $7 WHERE workspace = $8 AND seq = $9";
      await t.exec(set, [b.at, b.kind, b.actor, b.run_id, b.data, b.prev_hash, b.hash, W, 8]);
      await t.exec(set, [a.at, a.kind, a.actor, a.run_id, a.data, a.prev_hash, a.hash, W, 9]);
      await expectProblem(8, "reordered");
    });

    it("a forged checkpoint signature", async () => {
      const forger = testKey();
      const cp = (await t.exec("SELECT * FROM audit_checkpoints WHERE workspace = $1 AND seq = 21", [W]))[0];
      const { signCheckpoint } = await import("../../src/security/audit/keys.js");
      await t.exec("UPDATE audit_checkpoints SET signature = $1 WHERE workspace = $2 AND seq = 21", [
        signCheckpoint(forger, W, 21, String(cp.hash)),
        W,
      ]);
      const v = await expectProblem(21, "bad_checkpoint");
      expect(v.checkpoints).toBe(2);
    });

    it("a checkpoint signed by another key", async () => {
      await t.exec("UPDATE audit_checkpoints SET key_id = $1 WHERE workspace = $2 AND seq = 11", ["0123456789abcdef", W]);
      await expectProblem(11, "bad_checkpoint");
    });

    it("an edit with every later hash recomputed is caught by the next checkpoint", async () => {
      const rows = await t.exec("SELECT * FROM audit_log WHERE workspace = $1 AND seq >= 15 ORDER BY seq", [W]);
      let prev = String((await row(14)).hash);
      for (const r of rows) {
        const seq = Number(r.seq);
        const data = seq === 15 ? JSON.stringify({ amount: 1, i: 15, tool: "ledger.refund" }) : String(r.data);
        const fields = {
          workspace: W,
          seq,
          at: Number(r.at),
          kind: String(r.kind),
          actor: String(r.actor),
          run_id: r.run_id as string | null,
        };
        const hash = entryHash(prev, fields, data);
        await t.exec("UPDATE audit_log SET data = $1, prev_hash = $2, hash = $3 WHERE workspace = $4 AND seq = $5", [
          data,
          prev,
          hash,
          W,
          seq,
        ]);
        prev = hash;
      }
      const v = await expectProblem(12, "edited");
      expect(v.problem?.message).toContain("rewritten");
    });

    it("another workspace's chain is untouched by this one's tampering", async () => {
      const log = new AuditLog(t.store, key);
      await log.record("globex", [{ kind: "auth.failed", actor: "system", data: { reason: "bad key" } }]);
      await log.close();
      await t.exec("DELETE FROM audit_log WHERE workspace = $1 AND seq = 3", [W]);
      expect((await verifyAudit(t.store, "globex", { publicKey: key.publicKey })).ok).toBe(true);
      await expectProblem(3, "deleted");
    });
  });
}
