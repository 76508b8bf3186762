/**
 * Child of the security section: the steps workload, sequential, in the source tree given as argument (this checkout,
 * or the runtime as it was before governance, extracted from git). Prints one JSON line:
 * {usPerStep, eventsPerRun, auditPerRun}.
 *
 *   node --import tsx bench/security-steps.ts <root> <runs> <warm-up runs>
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import type { EventView } from "../src/core/api.js";
import type * as Runtime from "../src/runtime/index.js";
import type * as Workload from "./workload.js";

const [root = ".", runsArg = "100", warmArg = "20"] = process.argv.slice(2);
const runtime = (await import(pathToFileURL(join(root, "src/runtime/index.ts")).href)) as typeof Runtime;
const workload = (await import(pathToFileURL(join(root, "bench/workload.ts")).href)) as typeof Workload;
const { mkdtempSync } = await import("node:fs");
const { tmpdir } = await import("node:os");

const dataDir = mkdtempSync(join(tmpdir(), "outpost-bench-security-"));
const waiting = new Map<string, () => void>();
const ended = new Set<string>();
let events = 0;
const onEvent = (e: EventView) => {
  if (e.seq > 0) events++;
  if (e.type === "run.completed" || e.type === "run.failed" || e.type === "run.cancelled") {
    if (e.type !== "run.completed") console.error(`run ${e.run_id} ended ${e.type}: ${JSON.stringify(e.data)}`);
    ended.add(e.run_id);
    waiting.get(e.run_id)?.();
  }
};
const model = workload.benchModel(0);
const outpost = await runtime.startOutpost({ project: workload.benchProject(), dataDir, modelFor: () => model, onEvent });
const one = async () => {
  const run = await outpost.startRun({ agent: "bench", input: "count" });
  if (!ended.has(run.id)) await new Promise<void>((r) => waiting.set(run.id, r));
};
const runs = Number(runsArg);
for (let i = 0; i < Number(warmArg); i++) await one();
events = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < runs; i++) await one();
const us = Number(process.hrtime.bigint() - t0) / 1000;
const eventsPerRun = events / runs;
await outpost.close();

const db = new BetterSqlite3(join(dataDir, "outpost.db"), { readonly: true });
const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
const count = (table: string) => (tables.has(table) ? (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n : 0);
const allRuns = count("runs");
const audit = count("audit_outbox") + count("audit_log");
db.close();
rmSync(dataDir, { recursive: true, force: true });
console.log(JSON.stringify({ usPerStep: us / (runs * workload.STEPS_PER_RUN), eventsPerRun, auditPerRun: allRuns ? audit / allRuns : 0 }));
