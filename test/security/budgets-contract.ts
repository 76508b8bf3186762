/**
 * The budgets contract, run against each store driver (budgets.test.ts on SQLite, test/pg/budgets.test.ts
 * on PostgreSQL). Each test works in its own workspace, so one database serves the whole suite.
 */
import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import type { BudgetCap } from "../../src/definitions/types.js";
import { Budgets, type ReserveRequest } from "../../src/security/budgets/index.js";
import type { Store } from "../../src/store/index.js";

/** 2026-11-26T15:00Z: mid-day, mid-month. */
export const NOON = Date.UTC(2026, 10, 26, 15);

export const ws = () => `ws_${randomBytes(4).toString("hex")}`;

export function request(workspace: string, agent: string, teams: string[], usd: number, tokens: number, now = NOON): ReserveRequest {
  return { workspace, runId: `run_${randomBytes(4).toString("hex")}`, agent, teams, usd, tokens, now };
}

export async function reservationsOf(store: Store, workspace: string): Promise<number> {
  const rows = await store.domain.db.selectFrom("budget_reservations").select("id").where("workspace", "=", workspace).execute();
  return rows.length;
}

export function budgetsContract(store: () => Store): void {
  it("a call counts against the workspace, each of the agent's teams and the agent, and is refused by the cap it would cross", async () => {
    const caps: BudgetCap[] = [
      { scope: "workspace", period: "month", usd: 5, onExceed: "fail" },
      { scope: "team:finance", period: "day", tokens: 1000, onExceed: "fail" },
      { scope: "agent:refunds", period: "day", usd: 1, onExceed: "fail" },
    ];
    const budgets = new Budgets(store().domain, caps);
    const w = ws();

    expect((await budgets.reserve(request(w, "refunds", ["finance"], 0.6, 100))).ok).toBe(true);
    const refused = await budgets.reserve(request(w, "refunds", ["finance"], 0.6, 100));
    expect(refused).toMatchObject({
      ok: false,
      onExceed: "fail",
      retryAt: null,
      cap: {
        scope: "agent:refunds",
        period: "day",
        periodKey: "day:2026-11-26",
        unit: "usd",
        limit: 1,
        spent: 0,
        reserved: 0.6,
        requested: 0.6,
      },
    });
    if (!refused.ok) expect(refused.message).toContain("budget agent:refunds per day would be exceeded");

    // Another member of the team is held by the team's token cap, not by refunds' own cap.
    expect((await budgets.reserve(request(w, "ledger", ["finance"], 0.1, 800))).ok).toBe(true);
    const team = await budgets.reserve(request(w, "ledger", ["finance"], 0.1, 200));
    expect(team).toMatchObject({
      ok: false,
      cap: { scope: "team:finance", unit: "tokens", limit: 1000, spent: 0, reserved: 900, requested: 200 },
    });
    // An agent in no team is not.
    expect((await budgets.reserve(request(w, "support", [], 3.5, 5000))).ok).toBe(true);
    // The workspace holds 0.6 + 0.1 + 3.5 = 4.2 of $5.
    const whole = await budgets.reserve(request(w, "support", [], 1, 1));
    expect(whole).toMatchObject({ ok: false, cap: { scope: "workspace", period: "month", unit: "usd", limit: 5 } });
    if (!whole.ok) expect(whole.cap.reserved).toBeCloseTo(4.2, 9);

    const usage = await budgets.usage(w, NOON);
    expect(usage.map((u) => [u.scope, u.period_key, u.usd_reserved, u.tokens_reserved])).toEqual([
      ["workspace", "month:2026-11", expect.closeTo(4.2, 9), 5900],
      ["team:finance", "day:2026-11-26", expect.closeTo(0.7, 9), 900],
      ["agent:refunds", "day:2026-11-26", 0.6, 100],
    ]);
    // Refusals hold nothing; another workspace starts from zero.
    expect(await reservationsOf(store(), w)).toBe(3);
    expect((await budgets.usage(ws(), NOON)).every((u) => u.usd_reserved === 0 && u.usd_spent === 0)).toBe(true);
  });

  it("days and months roll over at UTC midnight; a cap set to wait says when to retry", async () => {
    const budgets = new Budgets(store().domain, [
      { scope: "agent:refunds", period: "day", usd: 1, onExceed: "wait" },
      { scope: "workspace", period: "month", tokens: 1000, onExceed: "wait" },
    ]);
    const w = ws();
    const nextDay = Date.UTC(2026, 10, 27);
    const december = Date.UTC(2026, 11, 1);
    const ok = await budgets.reserve(request(w, "refunds", [], 0.8, 900));
    if (!ok.ok) throw new Error(ok.message);
    await budgets.settle(ok.reservation.id, { usd: 0.8, tokens: 900 }, NOON);

    // Only the day cap is crossed: retry at the next UTC midnight.
    const day = await budgets.reserve(request(w, "refunds", [], 0.5, 10));
    expect(day).toMatchObject({ ok: false, onExceed: "wait", retryAt: nextDay, cap: { scope: "agent:refunds", spent: 0.8 } });
    // Both are: wait for the one that renews last.
    const both = await budgets.reserve(request(w, "refunds", [], 0.5, 200));
    expect(both).toMatchObject({ ok: false, onExceed: "wait", retryAt: december });

    // The next day the day cap has room again, the month cap does not.
    expect((await budgets.reserve(request(w, "refunds", [], 0.5, 10, nextDay))).ok).toBe(true);
    expect(await budgets.reserve(request(w, "refunds", [], 0.1, 200, nextDay))).toMatchObject({ ok: false, cap: { scope: "workspace" } });
    // At 23:59:59.999 on 30 November it still is November; at retryAt both counters start again.
    expect((await budgets.reserve(request(w, "refunds", [], 0.1, 200, december - 1))).ok).toBe(false);
    expect((await budgets.reserve(request(w, "refunds", [], 0.5, 200, december))).ok).toBe(true);
    expect(
      (await budgets.usage(w, december)).map((u) => [u.period_key, u.usd_spent, u.usd_reserved, u.tokens_reserved, u.resets_at]),
    ).toEqual([
      ["day:2026-12-01", 0, 0.5, 200, "2026-12-02T00:00:00.000Z"],
      ["month:2026-12", 0, 0.5, 200, "2027-01-01T00:00:00.000Z"],
    ]);
    // Earlier figures stay under their own periods.
    expect((await budgets.usage(w, NOON)).map((u) => [u.period_key, u.usd_spent, u.tokens_spent, u.tokens_reserved])).toEqual([
      ["day:2026-11-26", 0.8, 900, 0],
      ["month:2026-11", 0.8, 900, 10],
    ]);
  });

  it("a call bigger than the whole cap fails even where the cap says wait (no period would fit it)", async () => {
    const budgets = new Budgets(store().domain, [{ scope: "workspace", period: "day", usd: 1, onExceed: "wait" }]);
    const r = await budgets.reserve(request(ws(), "a", [], 1.5, 1));
    expect(r).toMatchObject({ ok: false, onExceed: "fail", retryAt: null, cap: { requested: 1.5, limit: 1 } });
  });

  it("settle moves reserved to spent with the real figures, once; release gives it back", async () => {
    const budgets = new Budgets(store().domain, [{ scope: "agent:a", period: "total", usd: 10, tokens: 10_000, onExceed: "fail" }]);
    const w = ws();
    const one = await budgets.reserve(request(w, "a", [], 0.4, 1000));
    const two = await budgets.reserve(request(w, "a", [], 0.3, 500));
    if (!one.ok || !two.ok) throw new Error("expected both to fit");

    expect(await budgets.settle(one.reservation.id, { usd: 0.1, tokens: 240 })).toBe(true);
    expect(await budgets.settle(one.reservation.id, { usd: 0.1, tokens: 240 })).toBe(false);
    expect(await budgets.release(one.reservation.id)).toBe(false);
    expect(await budgets.release(two.reservation.id)).toBe(true);
    expect(await budgets.settle(two.reservation.id, { usd: 9, tokens: 9 })).toBe(false);
    expect(await budgets.release("bres_unknown")).toBe(false);

    const [u] = await budgets.usage(w);
    expect(u).toMatchObject({
      usd_spent: 0.1,
      usd_reserved: 0,
      tokens_spent: 240,
      tokens_reserved: 0,
      period_key: "total",
      resets_at: null,
    });
    expect(await reservationsOf(store(), w)).toBe(0);
  });

  it("with no cap that applies, reserving writes nothing and always succeeds", async () => {
    const budgets = new Budgets(store().domain, [{ scope: "agent:other", period: "day", usd: 0, onExceed: "fail" }]);
    const w = ws();
    const r = await budgets.reserve(request(w, "a", ["t"], 1e6, 1e9));
    expect(r).toMatchObject({ ok: true, reservation: { counters: [] } });
    if (r.ok) expect(await budgets.settle(r.reservation.id, { usd: 1, tokens: 1 })).toBe(false);
    expect(await reservationsOf(store(), w)).toBe(0);
  });

  it("releaseStale frees what a crashed process held, and only what is older than asked", async () => {
    const budgets = new Budgets(store().domain, [{ scope: "workspace", period: "month", usd: 1, onExceed: "fail" }]);
    const w = ws();
    const old = await budgets.reserve(request(w, "a", [], 0.7, 1, NOON - 20 * 60_000));
    const fresh = await budgets.reserve(request(w, "a", [], 0.2, 1, NOON - 60_000));
    expect(old.ok && fresh.ok).toBe(true);
    expect((await budgets.reserve(request(w, "a", [], 0.5, 1))).ok).toBe(false);

    expect(await budgets.releaseStale(10 * 60_000, NOON)).toBeGreaterThanOrEqual(1);
    const [u] = await budgets.usage(w, NOON);
    expect(u.usd_reserved).toBeCloseTo(0.2, 9);
    expect(await reservationsOf(store(), w)).toBe(1);
    expect((await budgets.reserve(request(w, "a", [], 0.5, 1))).ok).toBe(true);
    // The crashed call's settle, arriving late, does nothing.
    if (old.ok) expect(await budgets.settle(old.reservation.id, { usd: 0.7, tokens: 1 })).toBe(false);
  });

  it("rejects amounts that are negative or not numbers", async () => {
    const budgets = new Budgets(store().domain, [{ scope: "workspace", period: "day", usd: 1, onExceed: "fail" }]);
    await expect(budgets.reserve(request(ws(), "a", [], -1, 0))).rejects.toThrow(/usd must be a finite number/);
    await expect(budgets.reserve(request(ws(), "a", [], Number.NaN, 0))).rejects.toThrow(/usd must be a finite number/);
    await expect(budgets.settle("x", { usd: 0, tokens: Number.POSITIVE_INFINITY })).rejects.toThrow(/tokens/);
  });

  it("50 concurrent reservations against a cap that fits exactly 10: exactly 10 succeed, counters agree", async () => {
    const caps: BudgetCap[] = [
      { scope: "agent:a", period: "day", usd: 1, tokens: 1000, onExceed: "fail" },
      { scope: "team:t", period: "day", usd: 100, onExceed: "fail" },
      { scope: "workspace", period: "month", usd: 100, onExceed: "fail" },
    ];
    const budgets = new Budgets(store().domain, caps);
    const w = ws();
    const results = await Promise.all(Array.from({ length: 50 }, () => budgets.reserve(request(w, "a", ["t"], 0.1, 100))));
    const granted = results.flatMap((r) => (r.ok ? [r.reservation] : []));
    expect(granted).toHaveLength(10);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.cap.scope === "agent:a")).toBe(true);
    const held = await budgets.usage(w, NOON);
    expect(held.map((u) => [u.scope, u.usd_reserved, u.tokens_reserved])).toEqual([
      ["agent:a", expect.closeTo(1, 9), 1000],
      ["team:t", expect.closeTo(1, 9), 1000],
      ["workspace", expect.closeTo(1, 9), 1000],
    ]);

    await Promise.all(granted.map((r) => budgets.settle(r.id, { usd: 0.05, tokens: 40 }, NOON)));
    const after = await budgets.usage(w, NOON);
    for (const u of after) {
      expect(u.usd_spent).toBeCloseTo(0.5, 9);
      expect(u.tokens_spent).toBe(400);
      expect(u.usd_reserved).toBeCloseTo(0, 9);
      expect(u.tokens_reserved).toBe(0);
    }
    expect(await reservationsOf(store(), w)).toBe(0);
  });

  it("concurrent callers reserving and settling in a loop never overspend and leave nothing reserved", async () => {
    const budgets = new Budgets(store().domain, [
      { scope: "agent:a", period: "day", tokens: 5000, onExceed: "fail" },
      { scope: "team:t", period: "day", tokens: 5000, onExceed: "fail" },
    ]);
    const w = ws();
    let settled = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 10; i++) {
          const r = await budgets.reserve(request(w, "a", ["t"], 0, 100));
          if (!r.ok) continue;
          // Half the calls fail before costing anything; the rest cost 60 of the 100 reserved.
          if (i % 2 === 0) await budgets.release(r.reservation.id, NOON);
          else if (await budgets.settle(r.reservation.id, { usd: 0, tokens: 60 }, NOON)) settled++;
        }
      }),
    );
    const usage = await budgets.usage(w, NOON);
    for (const u of usage) {
      expect(u.tokens_reserved).toBe(0);
      expect(u.tokens_spent).toBe(settled * 60);
      expect(u.tokens_spent).toBeLessThanOrEqual(5000);
    }
  });
}
