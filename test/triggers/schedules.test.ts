/**
 * Schedules: which occurrences fall due (pure), and, in the real runtime on SQLite under simulated time, that each
 * occurrence starts exactly one run — no doubling on a repeated tick, none missed or doubled across a restart, the
 * missed-firing policy after downtime (skip, catch up), and a firing whose run a crash left unstarted is started once.
 * (Several processes racing for one occurrence: test/pg/triggers.test.ts.)
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ScheduleDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import type { Outpost } from "../../src/runtime/index.js";
import { CATCH_UP_LIMIT, GRACE_MS, plan } from "../../src/triggers/index.js";
import { finish, newDataDir, outposts, project, start } from "../runtime/fixtures.js";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const nightly: ScheduleDefinition = { name: "n", cron: "0 2 * * *", timezone: "Europe/Berlin", input: "x", missed: "skip" };

describe("schedules: what falls due", () => {
  it("reads the expression in its time zone, daylight saving included", () => {
    const p = plan(nightly, at("2026-12-06T12:00:00Z"), at("2026-12-07T01:00:30Z"));
    expect(p.fire.map(iso)).toEqual(["2026-12-07T01:00:00.000Z"]); // 02:00 in Berlin in winter
    const summer = plan(nightly, at("2026-07-01T12:00:00Z"), at("2026-07-02T00:00:10Z"));
    expect(summer.fire.map(iso)).toEqual(["2026-07-02T00:00:00.000Z"]); // 02:00 CEST
    // Nothing due yet: the cursor stays.
    expect(plan(nightly, at("2026-12-07T01:00:00Z"), at("2026-12-07T23:00:00Z"))).toEqual({
      fire: [],
      skip: [],
      cursor: at("2026-12-07T01:00:00Z"),
    });
  });

  it("after downtime, skips what was missed (missed: skip) but still runs one that is only a little late", () => {
    const p = plan(nightly, at("2026-12-03T02:00:00Z"), at("2026-12-07T01:03:00Z"));
    expect(p.fire.map(iso)).toEqual(["2026-12-07T01:00:00.000Z"]); // 3 minutes late: within the grace
    expect(p.skip.map((s) => iso(s.at))).toEqual(["2026-12-04T01:00:00.000Z", "2026-12-05T01:00:00.000Z", "2026-12-06T01:00:00.000Z"]);
    expect(p.skip[0].why).toMatch(/missed while Outpost was down/);
    expect(p.cursor).toBe(at("2026-12-07T01:00:00Z"));
    const late = plan(nightly, at("2026-12-06T02:00:00Z"), at("2026-12-07T01:00:00Z") + GRACE_MS + 1);
    expect(late.fire).toEqual([]);
    expect(late.skip).toHaveLength(1);
  });

  it("catches up on each missed occurrence (missed: catch_up), the latest 100 at most", () => {
    const p = plan({ ...nightly, missed: "catch_up" }, at("2026-12-03T02:00:00Z"), at("2026-12-07T09:00:00Z"));
    expect(p.fire.map(iso)).toEqual([
      "2026-12-04T01:00:00.000Z",
      "2026-12-05T01:00:00.000Z",
      "2026-12-06T01:00:00.000Z",
      "2026-12-07T01:00:00.000Z",
    ]);
    const everyMinute = { ...nightly, cron: "* * * * *", missed: "catch_up" as const };
    const many = plan(everyMinute, at("2026-12-07T00:00:00Z"), at("2026-12-07T05:00:00Z"));
    expect(many.fire).toHaveLength(CATCH_UP_LIMIT);
    expect(many.skip).toHaveLength(300 - CATCH_UP_LIMIT);
    expect(iso(many.fire.at(-1) as number)).toBe("2026-12-07T05:00:00.000Z");
  });
});

describe("schedules in the runtime (SQLite, simulated time)", () => {
  afterEach(async () => {
    await Promise.all(outposts.splice(0).map((o) => o.close()));
  });

  const everyTen: ScheduleDefinition = {
    name: "every-ten",
    cron: "*/10 * * * *",
    timezone: "UTC",
    input: "Check the stock levels.",
    missed: "skip",
  };

  async function open(schedule: ScheduleDefinition, now: { t: number }, dataDir = newDataDir()) {
    const p = project([]);
    (p.agents.get("clerk") as { schedules?: ScheduleDefinition[] }).schedules = [schedule];
    const o = await start(
      p,
      createScriptedClient("m", () => "Stock checked."),
      { dataDir, clock: () => now.t, triggerTicks: false },
    );
    return { o, dataDir };
  }

  const scheduled = async (o: Outpost) => {
    const runs = (await o.listRuns({ agent: "clerk" })).items;
    return Promise.all(runs.map(async (r) => ({ run: r, by: (await o.getEvents(r.id))[0].data.by as string }))).then((rs) =>
      rs.sort((a, b) => a.run.created_at.localeCompare(b.run.created_at)),
    );
  };

  it("starts one run per occurrence, never two for one, and shows each firing with its run", async () => {
    const now = { t: at("2026-12-07T09:03:00Z") };
    const { o } = await open(everyTen, now);
    expect(await o.triggers.tick()).toBe(0); // a new schedule starts from now
    now.t = at("2026-12-07T09:09:59Z");
    expect(await o.triggers.tick()).toBe(0);
    now.t = at("2026-12-07T09:10:00.200Z");
    expect(await o.triggers.tick()).toBe(1);
    expect(await o.triggers.tick()).toBe(0);
    const runs = await scheduled(o);
    expect(runs).toHaveLength(1);
    expect(runs[0].by).toBe("schedule:clerk.every-ten");
    expect(runs[0].run.input).toBe("Check the stock levels.");
    expect((await finish(o, runs[0].run.id))?.status).toBe("completed");

    const [view] = await o.triggers.list();
    expect(view).toMatchObject({
      id: "schedule:clerk.every-ten",
      kind: "schedule",
      agent: "clerk",
      cron: "*/10 * * * *",
      timezone: "UTC",
      next_at: "2026-12-07T09:20:00.000Z",
      last_firing: { key: "2026-12-07T09:10:00.000Z", status: "started", run_id: runs[0].run.id },
    });
  });

  it("across a restart: skips what fell due while down, runs the one still on time, and never fires one twice", async () => {
    const now = { t: at("2026-12-07T09:03:00Z") };
    let { o, dataDir } = await open(everyTen, now);
    await o.triggers.tick();
    now.t = at("2026-12-07T09:10:01Z");
    expect(await o.triggers.tick()).toBe(1);
    await o.close();
    outposts.splice(outposts.indexOf(o), 1);

    // Down from 09:10 to 09:41: 09:20 and 09:30 are missed, 09:40 is a minute late.
    now.t = at("2026-12-07T09:41:00Z");
    ({ o } = await open(everyTen, now, dataDir));
    expect(await o.triggers.tick()).toBe(1);
    const firings = await o.triggers.firings("schedule:clerk.every-ten");
    expect(firings.map((f) => [f.key.slice(11, 16), f.status])).toEqual([
      ["09:40", "started"],
      ["09:30", "skipped"],
      ["09:20", "skipped"],
      ["09:10", "started"],
    ]);
    expect(firings[1].detail).toMatch(/missed while Outpost was down \(missed: skip\)/);
    expect((await scheduled(o)).map((r) => r.run.id).sort()).toEqual(
      firings
        .filter((f) => f.status === "started")
        .map((f) => f.run_id)
        .sort(),
    );
  });

  it("catches up on each occurrence missed while down (missed: catch_up)", async () => {
    const now = { t: at("2026-12-07T09:03:00Z") };
    const schedule = { ...everyTen, missed: "catch_up" as const };
    let { o, dataDir } = await open(schedule, now);
    await o.triggers.tick();
    await o.close();
    outposts.splice(outposts.indexOf(o), 1);
    now.t = at("2026-12-07T09:45:00Z");
    ({ o } = await open(schedule, now, dataDir));
    expect(await o.triggers.tick()).toBe(4); // 09:10, 09:20, 09:30, 09:40
    expect(await o.triggers.tick()).toBe(0);
    expect(await scheduled(o)).toHaveLength(4);
  });

  it("fires every schedule that falls due in the same tick, more than one batch of them", async () => {
    const now = { t: at("2026-12-07T09:03:00Z") };
    const p = project([]);
    const clerk = p.agents.get("clerk") as NonNullable<ReturnType<typeof p.agents.get>>;
    for (let i = 0; i < 450; i++) p.agents.set(`clerk-${i}`, { ...clerk, name: `clerk-${i}`, schedules: [{ ...everyTen, name: "ten" }] });
    const o = await start(
      p,
      createScriptedClient("m", () => "ok"),
      { clock: () => now.t, triggerTicks: false, concurrency: 0 },
    );
    await o.triggers.tick();
    now.t = at("2026-12-07T09:10:01Z");
    expect(await o.triggers.tick()).toBe(450);
    expect(await o.triggers.tick()).toBe(0);
    expect((await o.listRuns({ limit: 200 })).items).toHaveLength(200);
  });

  it("starts, once, the run of a firing a crash left pending", async () => {
    const now = { t: at("2026-12-07T09:03:00Z") };
    const { o } = await open(everyTen, now);
    await o.triggers.tick();
    // As a process leaves it when it dies between committing the firing and creating its run.
    await o.store.domain.write((trx) =>
      trx
        .insertInto("trigger_firings")
        .values({
          workspace: "test",
          trigger: "schedule:clerk.every-ten",
          firing_key: "2026-12-07T09:00:00.000Z",
          fire_at: at("2026-12-07T09:00:00Z"),
          status: "pending",
          run_id: null,
          detail: null,
          created_at: now.t,
        })
        .execute(),
    );
    now.t += 31_000;
    expect(await o.triggers.tick()).toBe(1);
    now.t += 31_000;
    expect(await o.triggers.tick()).toBe(0);
    const runs = await scheduled(o);
    expect(runs).toHaveLength(1);
    const [firing] = await o.triggers.firings("schedule:clerk.every-ten");
    expect(firing).toMatchObject({ key: "2026-12-07T09:00:00.000Z", status: "started", run_id: runs[0].run.id });
  });
});
