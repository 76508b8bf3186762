/**
 * Budgets: what reserve + settle adds to each model call on the embedded store, with three caps in force
 * (workspace, team, agent), one call at a time and 32 runs calling at once. Runs on its own too:
 *   npx tsx bench/budgets.ts [--quick]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BudgetCap } from "../src/definitions/types.js";
import { Budgets, estimate } from "../src/security/budgets/index.js";
import { openStore } from "../src/store/index.js";
import { median, quantile } from "./driver.js";

export interface BudgetsResult {
  calls: number;
  /** µs per reserve + settle, one call at a time: median and p99 of single calls. */
  serialP50: number;
  serialP99: number;
  /** Reserve + settle pairs per second with 32 concurrent callers (3 rounds). */
  concurrentPerSec: number[];
}

const CAPS: BudgetCap[] = [
  { scope: "workspace", period: "month", usd: 1e9, onExceed: "fail" },
  { scope: "team:finance", period: "day", usd: 1e9, tokens: 1e15, onExceed: "fail" },
  { scope: "agent:refunds", period: "day", usd: 1e9, onExceed: "wait" },
];
const PRICE = { inputPerMTok: 3, outputPerMTok: 15 };

export async function budgetsOverhead(quick: boolean): Promise<BudgetsResult> {
  const calls = quick ? 2_000 : 10_000;
  const dir = mkdtempSync(join(tmpdir(), "outpost-bench-budgets-"));
  const store = await openStore({ dataDir: dir });
  const budgets = new Budgets(store.domain, CAPS);
  const call = async (i: number) => {
    const cost = estimate(PRICE, 8_000, 1_024);
    const r = await budgets.reserve({ workspace: "acme", runId: `run_${i >> 3}`, agent: "refunds", teams: ["finance"], ...cost });
    if (!r.ok) throw new Error(`budgets bench: refused: ${r.message}`);
    await budgets.settle(r.reservation.id, { usd: cost.usd / 3, tokens: Math.round(cost.tokens / 3) });
  };
  try {
    for (let i = 0; i < 200; i++) await call(i); // warm-up
    const single: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t = process.hrtime.bigint();
      await call(i);
      single.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    const concurrentPerSec: number[] = [];
    for (let round = 0; round < 3; round++) {
      let next = 0;
      const t = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < calls) await call(next++);
        }),
      );
      concurrentPerSec.push(calls / (Number(process.hrtime.bigint() - t) / 1e9));
    }
    const left = await store.domain.db.selectFrom("budget_reservations").select("id").execute();
    if (left.length !== 0) throw new Error(`budgets bench: ${left.length} reservations left unsettled`);
    return { calls, serialP50: median(single), serialP99: quantile(single, 0.99), concurrentPerSec };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export function budgetsSection(r: BudgetsResult, record: (name: string, value: string, note?: string) => void): string {
  const concurrent = median(r.concurrentPerSec);
  record("budget reserve + settle per model call", `${fmt(r.serialP50)} µs`, `p99 ${fmt(r.serialP99)} µs; 3 caps`);
  record("budget reserve + settle, 32 callers", `${fmt(concurrent)}/s`);
  return `## Budgets

Reserve before a model call and settle after it, with three caps in force (workspace, team, agent), on the
embedded store: two write transactions per call.

| Measure | Value | Note |
| --- | ---: | --- |
| Reserve + settle, one call at a time | ${fmt(r.serialP50)} µs (p99 ${fmt(r.serialP99)} µs) | ${fmt(r.calls)} calls |
| Reserve + settle, 32 concurrent callers | ${fmt(concurrent)} calls/s | median of 3 rounds of ${fmt(r.calls)} |
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const r = await budgetsOverhead(process.argv.includes("--quick"));
  console.log(budgetsSection(r, (name, value, note) => console.log(`${name}: ${value}${note ? ` (${note})` : ""}`)));
}
