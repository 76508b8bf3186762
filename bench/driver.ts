/**
 * Shared by the delegation and MCP benchmarks: an Outpost on a fresh embedded
 * store whose runs can be started and awaited one at a time, and the
 * statistics the tables report.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { EventView } from "../src/core/api.js";
import type { Project } from "../src/definitions/types.js";
import type { ModelClient } from "../src/models/index.js";
import { type Outpost, startOutpost } from "../src/runtime/index.js";

export const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `outpost-bench-${tag}-`));

export interface Driver {
  outpost: Outpost;
  dataDir: string;
  /** Starts a run of `agent` and resolves once it completed (rejects if it failed or was cancelled). */
  run(agent: string, input?: string): Promise<string>;
  /** Closes Outpost; then `query` reads its database. */
  close(): Promise<void>;
  query<T>(sql: string): T[];
  /** Removes the data folder. */
  remove(): void;
}

/** `observe` sees every event the Outpost publishes (after `run` has seen it). */
export async function openDriver(project: Project, model: ModelClient, observe?: (e: EventView) => void): Promise<Driver> {
  const dataDir = tempDir("data");
  const ended = new Map<string, EventView>();
  const waiting = new Map<string, (e: EventView) => void>();
  const onEvent = (e: EventView) => {
    if (e.type === "run.completed" || e.type === "run.failed" || e.type === "run.cancelled") {
      const w = waiting.get(e.run_id);
      if (w) {
        waiting.delete(e.run_id);
        w(e);
      } else ended.set(e.run_id, e);
    }
    observe?.(e);
  };
  const outpost = await startOutpost({ project, dataDir, modelFor: () => model, onEvent });
  const end = (id: string) =>
    new Promise<EventView>((resolve) => {
      const e = ended.get(id);
      if (e) {
        ended.delete(id);
        resolve(e);
      } else waiting.set(id, resolve);
    });
  return {
    outpost,
    dataDir,
    async run(agent, input = "go") {
      const run = await outpost.startRun({ agent, input });
      const e = await end(run.id);
      if (e.type !== "run.completed") throw new Error(`bench run ${run.id} (${agent}) ended ${e.type}: ${JSON.stringify(e.data)}`);
      return run.id;
    },
    close: () => outpost.close(),
    query<T>(sql: string) {
      const db = new BetterSqlite3(join(dataDir, "outpost.db"), { readonly: true });
      try {
        return db.prepare(sql).all() as T[];
      } finally {
        db.close();
      }
    },
    remove: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** The q-quantile (0…1) of some numbers, by nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (values: number[]) => quantile(values, 0.5);

/** "min–max" of some numbers, with `digits` decimals. */
export function spread(values: number[], digits = 0): string {
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}
