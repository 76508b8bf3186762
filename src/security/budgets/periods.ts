/** Budget periods in UTC: the counter a moment falls into, and when the next one starts. */
import type { BudgetCap } from "../../definitions/types.js";

export type BudgetPeriod = BudgetCap["period"];

const pad = (n: number) => String(n).padStart(2, "0");

/** `day:2026-11-26`, `month:2026-11` or `total`: the budget_counters.period of `now`. */
export function periodKey(period: BudgetPeriod, now: number): string {
  if (period === "total") return "total";
  const d = new Date(now);
  const month = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
  return period === "month" ? `month:${month}` : `day:${month}-${pad(d.getUTCDate())}`;
}

/** Start of the period after the one holding `now` (epoch ms); null for total, which never renews. */
export function nextPeriodStart(period: BudgetPeriod, now: number): number | null {
  if (period === "total") return null;
  const d = new Date(now);
  return period === "month"
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}
