/**
 * Budgets on PostgreSQL: the shared contract (test/security/budgets-contract.ts), and reservations
 * from two Store instances — two pools, as two worker processes would have — racing for one cap.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Budgets } from "../../src/security/budgets/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { budgetsContract, NOON, request, reservationsOf, ws } from "../security/budgets-contract.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_budgets");

describe.skipIf(!db.reachable)("budgets on PostgreSQL", () => {
  let one: Store;
  let two: Store;
  beforeAll(async () => {
    one = await openStore({ dataDir: "unused", databaseUrl: db.url });
    two = await openStore({ dataDir: "unused", databaseUrl: db.url });
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await db.drop();
  });

  budgetsContract(() => one);

  it("two processes reserving against the same caps: exactly what fits is granted, and no deadlock", async () => {
    // Counters are created on first use by whoever comes first: both processes start on a fresh period.
    const caps = [
      { scope: "workspace", period: "day" as const, tokens: 100_000, onExceed: "fail" as const },
      { scope: "team:t", period: "day" as const, usd: 50, onExceed: "fail" as const },
      { scope: "agent:a", period: "day" as const, usd: 1, tokens: 2000, onExceed: "fail" as const },
    ];
    const a = new Budgets(one.domain, caps);
    const b = new Budgets(two.domain, caps);
    const w = ws();
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).reserve(request(w, "a", ["t"], 0.05, 100))),
    );
    const granted = results.flatMap((r) => (r.ok ? [r.reservation] : []));
    expect(granted).toHaveLength(20); // 2000 tokens / 100 (and $1 / $0.05)
    for (const u of await a.usage(w, NOON)) {
      expect(u.tokens_reserved).toBe(2000);
      expect(u.usd_reserved).toBeCloseTo(1, 9);
    }

    // Settles from both processes, interleaved with more reservations (which find the cap full).
    const more = await Promise.all([
      ...granted.map((r, i) => (i % 2 === 0 ? b : a).settle(r.id, { usd: 0.01, tokens: 30 }, NOON)),
      ...Array.from({ length: 20 }, () => a.reserve(request(w, "a", ["t"], 0.9, 1500))),
    ]);
    expect(more.slice(0, granted.length).every((x) => x === true)).toBe(true);
    const extra = more.slice(granted.length).filter((r) => typeof r === "object" && r.ok);
    // A 1500-token call never fits: before the settles the cap is full, after them 2000 − 20×30 = 1400 is left.
    expect(extra).toHaveLength(0);
    const usage = await b.usage(w, NOON);
    for (const u of usage) {
      expect(u.tokens_spent).toBe(600);
      expect(u.tokens_reserved).toBe(0);
      expect(u.usd_spent).toBeCloseTo(0.2, 9);
    }
    expect(await reservationsOf(one, w)).toBe(0);
  });

  it("two processes in a reserve/settle loop on a cap shared by several agents stay consistent", async () => {
    const caps = [
      { scope: "workspace", period: "month" as const, tokens: 20_000, onExceed: "fail" as const },
      { scope: "team:t", period: "day" as const, tokens: 20_000, onExceed: "fail" as const },
    ];
    const stores = [new Budgets(one.domain, caps), new Budgets(two.domain, caps)];
    const w = ws();
    let spent = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, worker) => {
        const budgets = stores[worker % 2];
        for (let i = 0; i < 15; i++) {
          const r = await budgets.reserve(request(w, `agent${worker % 4}`, ["t"], 0, 200));
          if (!r.ok) continue;
          if (await budgets.settle(r.reservation.id, { usd: 0, tokens: 90 }, NOON)) spent += 90;
        }
      }),
    );
    // 240 calls would spend 21 600 of 20 000: some were refused, none let through past the cap.
    expect(spent).toBeLessThanOrEqual(20_000);
    expect(spent).toBeGreaterThan(15_000);
    for (const u of await stores[0].usage(w, NOON)) {
      expect(u.tokens_reserved).toBe(0);
      expect(u.tokens_spent).toBe(spent);
    }
  });
});
