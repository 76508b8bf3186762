/**
 * The scheduler's bookkeeping of executing runs (heartbeats, concurrency) must stay true when a
 * run is claimed again by the same process (its lease lapsed, e.g. after a missed heartbeat).
 */
import { describe, expect, it } from "vitest";
import { Scheduler } from "../../src/runtime/scheduler.js";
import type { ClaimedRun, RunRecord, Store } from "../../src/store/types.js";
import { sleep } from "./fixtures.js";

const runRecord = { id: "run_1", workspace: "test", agent: "clerk", sessionId: "ses_1", sessionSeq: 1, status: "running" } as RunRecord;

describe("scheduler", () => {
  it("a run re-claimed while an earlier execution of it is still unwinding stays tracked and heartbeated", async () => {
    let claims = 0;
    const renewed: string[][] = [];
    const store = {
      // The lease of run_1 lapsed once: the second claim hands it out again with a new token.
      claimRuns: async (): Promise<ClaimedRun[]> => {
        claims++;
        return claims <= 2 ? [{ run: runRecord, leaseToken: `t${claims}` }] : [];
      },
      renewLeases: async (_owner: string, ids: string[]) => {
        renewed.push(ids);
      },
    } as unknown as Store;
    const finishers = new Map<string, () => void>();
    const scheduler = new Scheduler(
      store,
      { owner: "w", concurrency: 10, leaseMs: 150, pollMs: 10, batch: 1 },
      (c) =>
        new Promise<void>((resolve) => {
          finishers.set(c.leaseToken, resolve);
        }),
      () => undefined,
    );
    scheduler.start();
    try {
      for (let i = 0; i < 100 && finishers.size < 2; i++) await sleep(10);
      expect(finishers.size).toBe(2);
      // The first (fenced-off) execution ends; the second one is still running the run.
      finishers.get("t1")?.();
      await sleep(20);
      expect(scheduler.isExecuting("run_1")).toBe(true);
      renewed.length = 0;
      await sleep(150);
      // Its lease must keep being renewed, or it lapses and the run is claimed a third time mid-tool.
      expect(renewed.some((ids) => ids.includes("run_1"))).toBe(true);
    } finally {
      finishers.get("t2")?.();
      await scheduler.stop();
    }
  });
});
