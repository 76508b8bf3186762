/**
 * Schedules on PostgreSQL with two processes sharing the database, under simulated time: for each occurrence both
 * tick at once, and exactly one run starts — 20 occurrences, 20 runs, none doubled, none missed.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ScheduleDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { project } from "../runtime/fixtures.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_triggers");

describe.skipIf(!db.reachable)("schedules on PostgreSQL, two processes", () => {
  const open: Outpost[] = [];
  afterAll(async () => {
    await Promise.all(open.map((o) => o.close()));
    await db.drop();
  });

  it("fires each occurrence once when both processes tick at the same moment", async () => {
    const now = { t: Date.parse("2026-12-07T09:03:00Z") };
    const schedule: ScheduleDefinition = {
      name: "every-ten",
      cron: "*/10 * * * *",
      timezone: "UTC",
      input: "Check stock.",
      missed: "skip",
    };
    const p = project([]);
    (p.agents.get("clerk") as { schedules?: ScheduleDefinition[] }).schedules = [schedule];
    const model = createScriptedClient("m", () => "Checked.");
    for (let i = 0; i < 2; i++) {
      open.push(
        await startOutpost({
          project: p,
          dataDir: mkdtempSync(join(tmpdir(), "outpost-pg-triggers-")),
          databaseUrl: db.url,
          modelFor: () => model,
          clock: () => now.t,
          triggerTicks: false,
          pollMs: 100,
        }),
      );
    }
    const [a, b] = open;
    await Promise.all([a.triggers.tick(), b.triggers.tick()]);
    for (let i = 1; i <= 20; i++) {
      now.t = Date.parse("2026-12-07T09:00:00Z") + i * 600_000 + 500;
      await Promise.all([a.triggers.tick(), b.triggers.tick()]);
    }
    const runs = (await a.listRuns({ agent: "clerk", limit: 200 })).items;
    expect(runs).toHaveLength(20);
    const firings = await b.triggers.firings("schedule:clerk.every-ten", 100);
    expect(firings).toHaveLength(20);
    expect(new Set(firings.map((f) => f.key)).size).toBe(20);
    expect(firings.every((f) => f.status === "started")).toBe(true);
    expect(new Set(firings.map((f) => f.run_id))).toEqual(new Set(runs.map((r) => r.id)));
  });
});
