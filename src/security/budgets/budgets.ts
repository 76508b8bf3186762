/**
 * Spend caps with reservations. Before a model call its most possible cost is reserved against every
 * cap that applies (the workspace, each of the agent's teams, the agent); a call that would cross one
 * is not made. After the call the reservation is settled with what it really cost, or released.
 *
 * One counter row per (workspace, scope, period). Reserving is atomic across concurrent callers and
 * processes: on PostgreSQL the counter rows are created if missing and then locked with
 * SELECT … FOR UPDATE in (scope, period) order — every writer takes them in that order, so two never
 * deadlock; on SQLite `domain.write` serialises writers in the one process that owns the database.
 */
import { type Expression, type ExpressionBuilder, type SqlBool, sql, type Transaction } from "kysely";
import { newId } from "../../core/ids.js";
import type { BudgetCap } from "../../definitions/types.js";
import type { Database } from "../../store/schema.js";
import type { DomainStorage } from "../../store/types.js";
import { type BudgetPeriod, nextPeriodStart, periodKey } from "./periods.js";

/** Sums of USD are floats: a cap filled exactly (10 × $0.10 of $1) must not read as crossed. */
const USD_EPSILON = 1e-9;

export interface ReserveRequest {
  workspace: string;
  runId: string;
  agent: string;
  /** The teams the agent belongs to (see `teamsOf`). */
  teams: readonly string[];
  /** The most the call can cost (see `estimate`). */
  usd: number;
  tokens: number;
  /** Defaults to the clock; tests pass it to cross periods. */
  now?: number;
}

/** [scope, period key], e.g. ["agent:refunds", "day:2026-11-26"]. */
export type CounterKey = [scope: string, period: string];

export interface Reservation {
  id: string;
  workspace: string;
  runId: string;
  usd: number;
  tokens: number;
  /** The counters it holds; empty when no cap applies (settling it then does nothing). */
  counters: CounterKey[];
}

/** The cap a call would have crossed, with the figures that crossed it. */
export interface ExceededCap {
  scope: string;
  period: BudgetPeriod;
  /** The counter, e.g. `day:2026-11-26`. */
  periodKey: string;
  /** The cap's limits as configured. */
  usd?: number;
  tokens?: number;
  /** Which of them the call would cross, and the figures in that unit. */
  unit: "usd" | "tokens";
  limit: number;
  spent: number;
  reserved: number;
  requested: number;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation }
  | {
      ok: false;
      cap: ExceededCap;
      /** `wait` only when the cap says so and the call fits in a fresh period; else `fail`. */
      onExceed: "fail" | "wait";
      /** Start of the cap's next period (epoch ms); null for total. */
      retryAt: number | null;
      /** For the run's failure and the operator, e.g. "budget agent:refunds per day: spent $4.9800 …". */
      message: string;
    };

/** One cap against its counter for the current period (`GET /v1/budgets`, `outpost budgets`). */
export interface BudgetUsage {
  scope: string;
  period: BudgetPeriod;
  period_key: string;
  usd_limit: number | null;
  tokens_limit: number | null;
  usd_spent: number;
  usd_reserved: number;
  tokens_spent: number;
  tokens_reserved: number;
  on_exceed: "fail" | "wait";
  /** ISO time the counter starts again from zero; null for total. */
  resets_at: string | null;
}

export interface CounterRow {
  scope: string;
  period: string;
  usd_spent: number;
  usd_reserved: number;
  tokens_spent: number;
  tokens_reserved: number;
}

/** Teams an agent belongs to (as a member or lead): the team caps that apply to it. */
export function teamsOf(teams: Iterable<{ name: string; lead: string; members: readonly string[] }>, agent: string): string[] {
  const out: string[] = [];
  for (const t of teams) if (t.lead === agent || t.members.includes(agent)) out.push(t.name);
  return out;
}

/** Each cap against its counter for the period holding `now` (counters missing from `rows` are at zero). */
export function capUsage(caps: readonly BudgetCap[], rows: readonly CounterRow[], now = Date.now()): BudgetUsage[] {
  const byKey = new Map(rows.map((r) => [`${r.scope} ${r.period}`, r]));
  return caps.map((cap) => {
    const key = periodKey(cap.period, now);
    const r = byKey.get(`${cap.scope} ${key}`);
    const resets = nextPeriodStart(cap.period, now);
    return {
      scope: cap.scope,
      period: cap.period,
      period_key: key,
      usd_limit: cap.usd ?? null,
      tokens_limit: cap.tokens ?? null,
      usd_spent: Number(r?.usd_spent ?? 0),
      usd_reserved: Number(r?.usd_reserved ?? 0),
      tokens_spent: Number(r?.tokens_spent ?? 0),
      tokens_reserved: Number(r?.tokens_reserved ?? 0),
      on_exceed: cap.onExceed,
      resets_at: resets === null ? null : new Date(resets).toISOString(),
    };
  });
}

export class Budgets {
  constructor(
    private readonly domain: DomainStorage,
    readonly caps: readonly BudgetCap[],
  ) {}

  /** Holds `usd`/`tokens` against every applicable cap, or says which cap the call would cross. */
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    checkAmount("usd", request.usd);
    checkAmount("tokens", request.tokens);
    const now = request.now ?? Date.now();
    const caps = this.capsFor(request.agent, request.teams);
    const reservation: Reservation = {
      id: newId("bres", now),
      workspace: request.workspace,
      runId: request.runId,
      usd: request.usd,
      tokens: request.tokens,
      counters: sortedKeys(caps.map((c) => [c.scope, periodKey(c.period, now)])),
    };
    if (caps.length === 0) return { ok: true, reservation };

    return this.domain.write(async (trx) => {
      const rows = await this.lockCounters(trx, request.workspace, reservation.counters, now);
      const refusal = refuse(caps, rows, request, now);
      if (refusal) return refusal;
      await trx
        .updateTable("budget_counters")
        .set({
          usd_reserved: sql`usd_reserved + ${request.usd}`,
          tokens_reserved: sql`tokens_reserved + ${request.tokens}`,
          updated_at: now,
        })
        .where("workspace", "=", request.workspace)
        .where((eb) => matchKeys(eb, reservation.counters))
        .execute();
      await trx
        .insertInto("budget_reservations")
        .values({
          id: reservation.id,
          workspace: request.workspace,
          run_id: request.runId,
          counters: JSON.stringify(reservation.counters),
          usd: request.usd,
          tokens: request.tokens,
          created_at: now,
        })
        .execute();
      return { ok: true as const, reservation };
    });
  }

  /**
   * Moves a reservation from reserved to spent with what the call really cost. Idempotent: a reservation
   * already settled or released is left alone (returns false). The spend counts in the period the
   * reservation was made in.
   */
  async settle(reservationId: string, actual: { usd: number; tokens: number }, now = Date.now()): Promise<boolean> {
    checkAmount("usd", actual.usd);
    checkAmount("tokens", actual.tokens);
    return this.domain.write(async (trx) => {
      // Deleting first makes settling once a race only one caller wins (PostgreSQL re-checks the row).
      const row = await trx.deleteFrom("budget_reservations").where("id", "=", reservationId).returningAll().executeTakeFirst();
      if (!row) return false;
      const keys = JSON.parse(row.counters) as CounterKey[];
      if (keys.length === 0) return true;
      await this.lockCounters(trx, row.workspace, keys, now, { create: false });
      const floor = this.domain.kind === "postgres" ? "GREATEST" : "MAX";
      await trx
        .updateTable("budget_counters")
        .set({
          usd_spent: sql`usd_spent + ${actual.usd}`,
          usd_reserved: sql`${sql.raw(floor)}(usd_reserved - ${Number(row.usd)}, 0)`,
          tokens_spent: sql`tokens_spent + ${actual.tokens}`,
          tokens_reserved: sql`${sql.raw(floor)}(tokens_reserved - ${Number(row.tokens)}, 0)`,
          updated_at: now,
        })
        .where("workspace", "=", row.workspace)
        .where((eb) => matchKeys(eb, keys))
        .execute();
      return true;
    });
  }

  /** The call failed before it cost anything: give the reservation back. Idempotent like settle. */
  release(reservationId: string, now = Date.now()): Promise<boolean> {
    return this.settle(reservationId, { usd: 0, tokens: 0 }, now);
  }

  /**
   * Releases reservations older than `olderThanMs` — left by a process that died between reserve and
   * settle (the resumed run reserves again for its retried call). Pick an age well above the longest a
   * model call can take with its retries. Returns how many were released.
   */
  async releaseStale(olderThanMs: number, now = Date.now()): Promise<number> {
    const stale = await this.domain.db
      .selectFrom("budget_reservations")
      .select("id")
      .where("created_at", "<", now - olderThanMs)
      .orderBy("created_at")
      .limit(1000)
      .execute();
    let released = 0;
    for (const { id } of stale) if (await this.release(id, now)) released++;
    return released;
  }

  /** Every cap against its counter for the period holding `now`. */
  async usage(workspace: string, now = Date.now()): Promise<BudgetUsage[]> {
    if (this.caps.length === 0) return [];
    const keys = sortedKeys(this.caps.map((c) => [c.scope, periodKey(c.period, now)]));
    const rows = await this.domain.db
      .selectFrom("budget_counters")
      .select(["scope", "period", "usd_spent", "usd_reserved", "tokens_spent", "tokens_reserved"])
      .where("workspace", "=", workspace)
      .where((eb) => matchKeys(eb, keys))
      .execute();
    return capUsage(this.caps, rows, now);
  }

  private capsFor(agent: string, teams: readonly string[]): BudgetCap[] {
    return this.caps.filter(
      (c) => c.scope === "workspace" || c.scope === `agent:${agent}` || (c.scope.startsWith("team:") && teams.includes(c.scope.slice(5))),
    );
  }

  /**
   * The counter rows of `keys`, created at zero where missing and, on PostgreSQL, locked until the
   * transaction ends. Rows are created and locked in key order (every caller sorts them the same way).
   */
  private async lockCounters(
    trx: Transaction<Database>,
    workspace: string,
    keys: CounterKey[],
    now: number,
    options: { create: boolean } = { create: true },
  ): Promise<Map<string, CounterRow>> {
    if (options.create) {
      await trx
        .insertInto("budget_counters")
        .values(
          keys.map(([scope, period]) => ({
            workspace,
            scope,
            period,
            usd_spent: 0,
            usd_reserved: 0,
            tokens_spent: 0,
            tokens_reserved: 0,
            updated_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(["workspace", "scope", "period"]).doNothing())
        .execute();
    }
    let query = trx
      .selectFrom("budget_counters")
      .select(["scope", "period", "usd_spent", "usd_reserved", "tokens_spent", "tokens_reserved"])
      .where("workspace", "=", workspace)
      .where((eb) => matchKeys(eb, keys))
      .orderBy("scope")
      .orderBy("period");
    if (this.domain.kind === "postgres") query = query.forUpdate();
    const rows = await query.execute();
    return new Map(rows.map((r) => [`${r.scope} ${r.period}`, r]));
  }
}

function refuse(
  caps: BudgetCap[],
  rows: Map<string, CounterRow>,
  request: ReserveRequest,
  now: number,
): Extract<ReserveResult, { ok: false }> | null {
  let chosen: Extract<ReserveResult, { ok: false }> | null = null;
  for (const cap of caps) {
    const key = periodKey(cap.period, now);
    const row = rows.get(`${cap.scope} ${key}`);
    if (!row) throw new Error(`budget counter ${cap.scope} ${key} missing after upsert`);
    const crossed = crossedUnit(cap, row, request);
    if (!crossed) continue;
    const retryAt = nextPeriodStart(cap.period, now);
    // Waiting helps only if the call fits in a fresh period at all.
    const onExceed: "fail" | "wait" = cap.onExceed === "wait" && retryAt !== null && crossed.requested <= crossed.limit ? "wait" : "fail";
    const exceeded: ExceededCap = {
      scope: cap.scope,
      period: cap.period,
      periodKey: key,
      ...(cap.usd !== undefined ? { usd: cap.usd } : {}),
      ...(cap.tokens !== undefined ? { tokens: cap.tokens } : {}),
      ...crossed,
    };
    const refusal = {
      ok: false as const,
      cap: exceeded,
      onExceed,
      retryAt: onExceed === "wait" ? retryAt : null,
      message: describe(exceeded),
    };
    // A cap that fails the run decides; among caps to wait for, the one that renews last.
    if (!chosen || (chosen.onExceed === "wait" && (onExceed === "fail" || (refusal.retryAt ?? 0) > (chosen.retryAt ?? 0)))) {
      chosen = refusal;
    }
  }
  return chosen;
}

function crossedUnit(
  cap: BudgetCap,
  row: CounterRow,
  request: ReserveRequest,
): Pick<ExceededCap, "unit" | "limit" | "spent" | "reserved" | "requested"> | null {
  if (cap.usd !== undefined) {
    const spent = Number(row.usd_spent);
    const reserved = Number(row.usd_reserved);
    if (spent + reserved + request.usd > cap.usd + USD_EPSILON) {
      return { unit: "usd", limit: cap.usd, spent, reserved, requested: request.usd };
    }
  }
  if (cap.tokens !== undefined) {
    const spent = Number(row.tokens_spent);
    const reserved = Number(row.tokens_reserved);
    if (spent + reserved + request.tokens > cap.tokens) {
      return { unit: "tokens", limit: cap.tokens, spent, reserved, requested: request.tokens };
    }
  }
  return null;
}

const PER: Record<BudgetPeriod, string> = { day: "per day", month: "per month", total: "in total" };

/** Named like the per-run caps (`limit max_usd: $1`): the scope, the period and the figures. */
export function describe(cap: ExceededCap): string {
  const f = cap.unit === "usd" ? (n: number) => `$${n.toFixed(4)}` : (n: number) => `${Math.round(n)} tokens`;
  const limit = cap.unit === "usd" ? `$${cap.limit}` : `${cap.limit} tokens`;
  return (
    `budget ${cap.scope} ${PER[cap.period]} would be exceeded: spent ${f(cap.spent)}, reserved ${f(cap.reserved)}, ` +
    `this call up to ${f(cap.requested)} (limit ${cap.unit}: ${limit} ${PER[cap.period]}, ${cap.periodKey})`
  );
}

function checkAmount(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`budget ${name} must be a finite number ≥ 0, got ${value}`);
}

function sortedKeys(keys: CounterKey[]): CounterKey[] {
  const unique = new Map(keys.map((k) => [`${k[0]} ${k[1]}`, k]));
  return [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, k]) => k);
}

function matchKeys(eb: ExpressionBuilder<Database, "budget_counters">, keys: CounterKey[]): Expression<SqlBool> {
  return eb.or(keys.map(([scope, period]) => eb.and([eb("scope", "=", scope), eb("period", "=", period)])));
}
