/**
 * PostgreSQL only: the heartbeat (renewLeases) and group commits lock the same run rows. Taken in
 * different orders they deadlock: a failed heartbeat lets leases lapse (the run is taken over mid-tool
 * by another worker), and a commit chosen as the victim stalls its whole group. Both lock in id order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ev } from "../../src/core/events.js";
import type { Store } from "../../src/store/index.js";
import { openStore } from "../../src/store/index.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_deadlock");
const url = db.url;

describe.skipIf(!db.reachable)("PostgreSQL: heartbeats and group commits", () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore({ dataDir: "unused", databaseUrl: url });
  });
  afterAll(async () => {
    await store?.close();
    await db.drop();
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
