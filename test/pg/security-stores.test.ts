/**
 * The identity store (workspaces, API keys) and the vault on PostgreSQL: the same code path as on SQLite
 * (test/security/auth.test.ts, vault.test.ts), checked against the real server — keys and their audit rows commit
 * together, another workspace's key is "no such key", a secret row moved to another workspace fails to decrypt,
 * and two Store instances (two pools, as two processes have) creating keys for one new workspace at once both succeed.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey, IdentityStore } from "../../src/security/identity/index.js";
import { keyId, Vault, type VaultKey } from "../../src/security/vault/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_secstores");

const VALUE = "tok_live_9f8e7d6c5b4a";
let n = 0;
/** A fresh workspace per test: the tests share one database. */
const ws = () => `ws${++n}_${randomBytes(3).toString("hex")}`;
const vaultKey = (): VaultKey => {
  const key = randomBytes(32);
  return { key, id: keyId(key), source: "test" };
};

const errorOf = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a failure");
};

describe.skipIf(!db.reachable)("identity store and vault on PostgreSQL", () => {
  let one: Store;
  let two: Store;
  let sql: pg.Client;
  beforeAll(async () => {
    one = await openStore({ dataDir: "unused", databaseUrl: db.url });
    two = await openStore({ dataDir: "unused", databaseUrl: db.url });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await one?.close();
    await two?.close();
    await db.drop();
  });

  const outbox = async (workspace: string) =>
    (await sql.query("SELECT kind, actor, data FROM audit_outbox WHERE workspace = $1 ORDER BY at, id", [workspace])).rows.map(
      (r: { kind: string; actor: string; data: string }) => ({ kind: r.kind, actor: r.actor, data: JSON.parse(r.data) }),
    );

  /** Makes every audit_outbox insert fail while `fn` runs: a change committed without its audit row shows up. */
  async function withOutboxBroken(fn: () => Promise<void>): Promise<void> {
    await sql.query(`CREATE OR REPLACE FUNCTION test_refuse_outbox() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'audit_outbox refused by the test'; END $$ LANGUAGE plpgsql`);
    await sql.query("CREATE TRIGGER test_refuse_outbox BEFORE INSERT ON audit_outbox FOR EACH ROW EXECUTE FUNCTION test_refuse_outbox()");
    try {
      await fn();
    } finally {
      await sql.query("DROP TRIGGER test_refuse_outbox ON audit_outbox");
    }
  }

  describe("IdentityStore", () => {
    it("ensureWorkspace creates once, then finds it", async () => {
      const ids = new IdentityStore(one.domain);
      const w = ws();
      const first = await ids.ensureWorkspace(w, "Acme Inc");
      expect(first.created).toBe(true);
      expect(first.workspace).toMatchObject({ id: w, displayName: "Acme Inc" });
      const again = await new IdentityStore(two.domain).ensureWorkspace(w, "Another name");
      expect(again.created).toBe(false);
      expect(again.workspace).toEqual(first.workspace);
      expect(await ids.getWorkspace(ws())).toBeNull();
    });

    it("creates, lists, authenticates and revokes keys, with key.created / key.revoked in the outbox", async () => {
      const ids = new IdentityStore(one.domain);
      const w = ws();
      const a = await ids.createKey({
        workspace: w,
        name: "ci-deploy",
        roles: ["builder", "builder"],
        groups: ["eng"],
        createdBy: "local",
      });
      const b = await ids.createKey({ workspace: w, name: "auditor", roles: ["auditor"], createdBy: "key:x" });
      expect(a.record).toMatchObject({ workspace: w, name: "ci-deploy", roles: ["builder"], groups: ["eng"], revokedAt: null });
      expect(a.key.startsWith(a.record.prefix)).toBe(true);
      const stored = await one.domain.db.selectFrom("api_keys").selectAll().where("id", "=", a.record.id).executeTakeFirstOrThrow();
      expect(JSON.stringify(stored)).not.toContain(a.key);

      expect((await ids.listKeys(w)).map((k) => k.id).sort()).toEqual([a.record.id, b.record.id].sort());
      expect(await ids.countActiveKeys(w)).toBe(2);
      // The workspace was created with its first key.
      expect(await ids.getWorkspace(w)).toMatchObject({ id: w });

      const caller = await new IdentityStore(two.domain).authenticateKey(a.key);
      expect(caller).toMatchObject({ workspace: w, id: `key:${a.record.id}`, roles: ["builder"], groups: ["eng"], via: "api_key" });
      expect((await ids.listKeys(w)).find((k) => k.id === a.record.id)?.lastUsedAt).not.toBeNull();

      const revoked = await ids.revokeKey(w, a.record.id, "key:admin");
      expect(revoked?.revokedAt).not.toBeNull();
      // Revoking again changes nothing and writes no second audit row.
      expect((await ids.revokeKey(w, a.record.id, "key:admin"))?.revokedAt).toBe(revoked?.revokedAt);
      expect(await ids.verifyKey(a.key)).toEqual({ rejected: "revoked" });
      expect(await ids.authenticateKey(a.key)).toBeNull();
      expect(await ids.countActiveKeys(w)).toBe(1);
      expect(await ids.verifyKey(generateKey())).toEqual({ rejected: "unknown_key" });
      expect(await ids.verifyKey("opk_short")).toEqual({ rejected: "malformed" });

      expect(await outbox(w)).toEqual([
        {
          kind: "key.created",
          actor: "local",
          data: { key_id: a.record.id, name: "ci-deploy", roles: ["builder"], groups: ["eng"], prefix: a.record.prefix },
        },
        {
          kind: "key.created",
          actor: "key:x",
          data: { key_id: b.record.id, name: "auditor", roles: ["auditor"], groups: [], prefix: b.record.prefix },
        },
        { kind: "key.revoked", actor: "key:admin", data: { key_id: a.record.id } },
      ]);
    });

    it("refuses an expired key", async () => {
      let now = Date.now();
      const ids = new IdentityStore(one.domain, () => now);
      const w = ws();
      const { key } = await ids.createKey({ workspace: w, name: "short-lived", roles: ["viewer"], createdBy: null, expiresAt: now + 1000 });
      expect(await ids.verifyKey(key)).toHaveProperty("caller");
      now += 1000;
      expect(await ids.verifyKey(key)).toEqual({ rejected: "expired" });
      expect(await ids.countActiveKeys(w)).toBe(0);
    });

    it("another workspace's key id is no such key: not revoked, not listed", async () => {
      const ids = new IdentityStore(one.domain);
      const mine = ws();
      const theirs = ws();
      const { key, record } = await ids.createKey({ workspace: theirs, name: "theirs", roles: ["admin"], createdBy: null });
      await ids.ensureWorkspace(mine);
      expect(await ids.revokeKey(mine, record.id, "key:intruder")).toBeNull();
      expect(await ids.listKeys(mine)).toEqual([]);
      expect(await ids.authenticateKey(key)).toMatchObject({ workspace: theirs });
      expect(await outbox(mine)).toEqual([]);
      expect((await outbox(theirs)).map((e) => e.kind)).toEqual(["key.created"]);
    });

    it("adoptKey is idempotent in its workspace and refused in another", async () => {
      const ids = new IdentityStore(one.domain);
      const w = ws();
      const key = generateKey();
      const first = await ids.adoptKey(w, key, { name: "admin", roles: ["admin"], createdBy: null });
      const again = await new IdentityStore(two.domain).adoptKey(w, key, { name: "renamed", roles: ["viewer"], createdBy: null });
      expect(again).toEqual(first);
      expect(await ids.listKeys(w)).toHaveLength(1);
      expect((await outbox(w)).map((e) => e.kind)).toEqual(["key.created"]);
      const err = await errorOf(ids.adoptKey(ws(), key, { name: "admin", roles: ["admin"], createdBy: null }));
      expect(err.message).toMatch(/another workspace/);
      expect(err.message).not.toContain(key);
    });

    it("a key is not created when its audit row cannot be written (one transaction)", async () => {
      const ids = new IdentityStore(one.domain);
      const w = ws();
      const { record } = await ids.createKey({ workspace: w, name: "kept", roles: ["viewer"], createdBy: null });
      await withOutboxBroken(async () => {
        await expect(ids.createKey({ workspace: w, name: "lost", roles: ["viewer"], createdBy: null })).rejects.toThrow(
          /refused by the test/,
        );
        await expect(ids.revokeKey(w, record.id)).rejects.toThrow(/refused by the test/);
      });
      const keys = await ids.listKeys(w);
      expect(keys.map((k) => k.name)).toEqual(["kept"]);
      expect(keys[0].revokedAt).toBeNull();
      expect((await outbox(w)).map((e) => e.kind)).toEqual(["key.created"]);
    });

    it("two processes creating keys for one new workspace at once all succeed", async () => {
      const stores = [new IdentityStore(one.domain), new IdentityStore(two.domain)];
      for (let round = 0; round < 5; round++) {
        const w = ws();
        const created = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            stores[i % 2].createKey({ workspace: w, name: `worker-${i}`, roles: ["operator"], createdBy: null }),
          ),
        );
        expect(new Set(created.map((c) => c.record.id)).size).toBe(12);
        expect(await stores[0].listKeys(w)).toHaveLength(12);
        expect(await stores[1].countActiveKeys(w)).toBe(12);
        expect((await outbox(w)).filter((e) => e.kind === "key.created")).toHaveLength(12);
        expect((await sql.query("SELECT count(*)::int AS n FROM workspaces WHERE id = $1", [w])).rows[0].n).toBe(1);
      }
      // ensureWorkspace racing the same way: exactly one reports it created the workspace.
      const w = ws();
      const ensured = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % 2].ensureWorkspace(w)));
      expect(ensured.filter((e) => e.created)).toHaveLength(1);
    });
  });

  describe("Vault", () => {
    it("round-trips set/get/list/delete, encrypted at rest, with secret.changed in the outbox", async () => {
      const changes: unknown[] = [];
      const key = vaultKey();
      const v = new Vault(one.domain, key, { onChanged: (c) => changes.push(c) });
      const w = ws();
      expect(await v.set(w, "ledger_token", VALUE, "key:k1")).toEqual({ created: true });
      expect(await v.set(w, "acme.helpdesk-key", "hk_123456789", null)).toEqual({ created: true });
      // Another process with the same key reads it.
      expect(await new Vault(two.domain, key).get(w, "ledger_token")).toBe(VALUE);
      const row = await one.domain.db
        .selectFrom("secrets")
        .selectAll()
        .where("workspace", "=", w)
        .where("name", "=", "ledger_token")
        .executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(VALUE);
      expect(row.key_id).toBe(key.id);

      const listed = await v.list(w);
      expect(listed.map((s) => s.name)).toEqual(["acme.helpdesk-key", "ledger_token"]);
      expect(listed[1]).toMatchObject({ updatedBy: "key:k1" });
      expect(JSON.stringify(listed)).not.toContain(VALUE);
      expect(await v.list(ws())).toEqual([]);
      expect(await v.get(ws(), "ledger_token")).toBeNull();

      expect(await v.delete(w, "ledger_token", "key:k2")).toBe(true);
      expect(await v.delete(w, "ledger_token", "key:k2")).toBe(false);
      expect(await v.get(w, "ledger_token")).toBeNull();
      expect((await v.list(w)).map((s) => s.name)).toEqual(["acme.helpdesk-key"]);

      const audit = await outbox(w);
      expect(audit).toEqual([
        { kind: "secret.changed", actor: "key:k1", data: { name: "ledger_token", change: "set" } },
        { kind: "secret.changed", actor: "local", data: { name: "acme.helpdesk-key", change: "set" } },
        { kind: "secret.changed", actor: "key:k2", data: { name: "ledger_token", change: "deleted" } },
      ]);
      expect(JSON.stringify(audit)).not.toContain(VALUE);
      expect(changes).toEqual([
        { workspace: w, name: "ledger_token", change: "set", by: "key:k1" },
        { workspace: w, name: "acme.helpdesk-key", change: "set", by: null },
        { workspace: w, name: "ledger_token", change: "deleted", by: "key:k2" },
      ]);
    });

    it("an update replaces the value and keeps created_at", async () => {
      const v = new Vault(one.domain, vaultKey());
      const w = ws();
      await v.set(w, "token", "first_value_123", "key:a");
      // Backdate the row, so an update that rewrote created_at would show.
      await sql.query("UPDATE secrets SET created_at = 1000, updated_at = 1000 WHERE workspace = $1", [w]);
      const before = await one.domain.db.selectFrom("secrets").selectAll().where("workspace", "=", w).executeTakeFirstOrThrow();
      expect(await v.set(w, "token", "second_value_456", "key:b")).toEqual({ created: false });
      expect(await v.get(w, "token")).toBe("second_value_456");
      const [info] = await v.list(w);
      expect(info).toMatchObject({ name: "token", createdAt: 1000, updatedBy: "key:b" });
      expect(info.updatedAt).toBeGreaterThan(1000);
      const after = await one.domain.db.selectFrom("secrets").selectAll().where("workspace", "=", w).executeTakeFirstOrThrow();
      expect(after.nonce).not.toBe(before.nonce);
      expect((await outbox(w)).map((e) => e.data)).toEqual([
        { name: "token", change: "set" },
        { name: "token", change: "set" },
      ]);
    });

    it("a row moved to another workspace fails to decrypt, naming the secret but not its value", async () => {
      const v = new Vault(one.domain, vaultKey());
      const from = ws();
      const to = ws();
      await v.set(from, "ledger_token", VALUE, null);
      await sql.query("UPDATE secrets SET workspace = $2 WHERE workspace = $1", [from, to]);
      const err = await errorOf(v.get(to, "ledger_token"));
      expect(err.message).toMatch(/ledger_token.*fails its integrity check/);
      expect(err.message).not.toContain(VALUE);
      expect(await v.get(from, "ledger_token")).toBeNull();
    });

    it("a row written under another vault key is named as such", async () => {
      const w = ws();
      await new Vault(one.domain, vaultKey()).set(w, "token", VALUE, null);
      const err = await errorOf(new Vault(two.domain, vaultKey()).get(w, "token"));
      expect(err.message).toMatch(/stored under vault key/);
      expect(err.message).not.toContain(VALUE);
    });

    it("a secret is not changed when its audit row cannot be written (one transaction)", async () => {
      const v = new Vault(one.domain, vaultKey());
      const w = ws();
      await v.set(w, "token", "original_value", null);
      await withOutboxBroken(async () => {
        await expect(v.set(w, "token", "replaced_value", null)).rejects.toThrow(/refused by the test/);
        await expect(v.set(w, "fresh", "fresh_value", null)).rejects.toThrow(/refused by the test/);
        await expect(v.delete(w, "token")).rejects.toThrow(/refused by the test/);
      });
      expect(await v.get(w, "token")).toBe("original_value");
      expect((await v.list(w)).map((s) => s.name)).toEqual(["token"]);
      expect(await outbox(w)).toHaveLength(1);
    });
  });
});
