/**
 * The audit chain on PostgreSQL: tampering detected as on SQLite, and several chainers (each with its own
 * connection pool, as separate processes have) extending one workspace's chain at once produce one valid chain.
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { AuditLog, verifyAudit } from "../../src/security/audit/index.js";
import { openStore } from "../../src/store/index.js";
import { describeAuditTampering, testKey } from "../security/audit-tampering.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_audit");
afterAll(() => db.drop());

async function truncate(): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query("TRUNCATE audit_outbox, audit_log, audit_checkpoints");
  } finally {
    await c.end();
  }
}

describe.skipIf(!db.reachable)("audit on PostgreSQL", () => {
  describeAuditTampering("postgres", async () => {
    const store = await openStore({ dataDir: "unused", databaseUrl: db.url });
    await truncate();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    return {
      store,
      exec: async (text, params = []) => (await client.query(text, params)).rows,
      close: async () => {
        await client.end();
        await store.close();
      },
    };
  });

  it("concurrent chainers on separate pools produce one valid chain per workspace, every entry once", async () => {
    const first = await openStore({ dataDir: "unused", databaseUrl: db.url, poolSize: 4 });
    await truncate();
    const second = await openStore({ dataDir: "unused", databaseUrl: db.url, poolSize: 4 });
    const key = testKey();
    const logs = [
      new AuditLog(first, key, { batch: 7, checkpointEvery: 25 }),
      new AuditLog(second, key, { batch: 7, checkpointEvery: 25 }),
    ];
    try {
      const writers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 25; i++) {
          const log = logs[(w + i) % 2];
          await log.record(w % 2 ? "acme" : "globex", [{ kind: "tool.executed", actor: `agent:w${w}`, data: { w, i } }]);
          if (i % 3 === 0) await log.flush();
        }
      });
      // Both chainers drain in a loop while the writers write.
      let writing = true;
      const drainers = logs.map(async (log) => {
        while (writing) await log.flush();
      });
      await Promise.all(writers);
      writing = false;
      await Promise.all(drainers);
      await Promise.all(logs.map((l) => l.close()));

      for (const ws of ["acme", "globex"]) {
        const v = await verifyAudit(first, ws, { publicKey: key.publicKey });
        expect(v, JSON.stringify(v.problem)).toMatchObject({ ok: true, entries: 100, lastSeq: 100 });
        expect(v.lastCheckpoint?.seq).toBe(100);
        const entries = await logs[0].list(ws, { limit: 1000 });
        const seen = new Set(entries.map((e) => `${e.data.w}/${e.data.i}`));
        expect(seen.size).toBe(100);
      }
      expect(await logs[0].pending("acme")).toBe(0);
    } finally {
      await first.close();
      await second.close();
    }
  }, 60_000);
});
