/**
 * PostgreSQL only: the heartbeat (renewLeases) and group commits lock the same run rows in different
 * orders, so they deadlock. A failed heartbeat lets leases lapse (the run is taken over mid-tool by another
 * worker); a commit chosen as the victim fails the executor (batch of one) or stalls every run in the
 * group for deadlock_timeout (1 s) before the one-by-one retry.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ev } from "../../src/core/events.js";
import type { Store } from "../../src/store/index.js";
import { openStore } from "../../src/store/index.js";

const ADMIN_URL = process.env.OUTPOST_TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const DB = `outpost_deadlock_${randomBytes(5).toString("hex")}`;
const url = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB}`;
  return u.toString();
})();

async function admin(sqlText: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query(sqlText);
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const reachable = await admin(`CREATE DATABASE ${DB}`);

describe.skipIf(!reachable)("PostgreSQL: heartbeats and group commits", () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore({ dataDir: "unused", databaseUrl: url });
  });
  afterAll(async () => {
    await store?.close();
    await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  });

  it("heartbeats and group commits of the same worker never deadlock", async () => {
    for (let i = 0; i < 200; i++) await store.createRun({ workspace: "w", agent: "a", input: `run ${i}` });
    const claimed = await store.claimRuns("worker-1", 200, 60_000);
    expect(claimed).toHaveLength(200);
    const ids = claimed.map((c) => c.run.id);
    const errors: string[] = [];
    let stop = false;
    // The scheduler's heartbeat, renewing every run it executes (here back to back, to make the race likely).
    const heartbeat = (async () => {
      while (!stop) await store.renewLeases("worker-1", [...ids].reverse(), 60_000).catch((e: Error) => errors.push(`renew: ${e.message}`));
    })();
    // Commit steps for every run (as 200 executors would) until a problem shows, or 25 s of clean running.
    const deadline = Date.now() + 25_000;
    await Promise.all(
      claimed.map(async (c) => {
        let seq = c.run.lastSeq;
        for (let k = 0; errors.length === 0 && Date.now() < deadline; k++) {
          try {
            const r = await store.commit({
              runId: c.run.id,
              leaseToken: c.leaseToken,
              expectedSeq: seq,
              events: [ev("model.called", { step: k + 1, model: "m" })],
              patch: { status: "running", steps: k, inputTokens: 0, outputTokens: 0, costUsd: 0 },
            });
            seq = r.lastSeq;
          } catch (e) {
            errors.push(`commit: ${(e as Error).message}`);
            return;
          }
        }
      }),
    );
    stop = true;
    await heartbeat;
    // Once: "renew: deadlock detected" (tens of times).
    expect(errors).toEqual([]);
  }, 90_000);
});
