/**
 * Cost accounting on SQLite: the shared contract (costs-contract.ts; test/pg/costs.test.ts runs it on PostgreSQL),
 * summaries' calls in the ledger, the query's text as the API and CLI take it, and GET /v1/costs over real HTTP.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createClient } from "../../src/client/index.js";
import { ev } from "../../src/core/events.js";
import type { ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { startOutpost } from "../../src/runtime/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { parseCostQuery, parseTime } from "../../src/telemetry/costs.js";
import { usageEntries } from "../../src/telemetry/ledger.js";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";
import { finish, newDataDir, outposts, project, start } from "../runtime/fixtures.js";
import { http, type Stack, startStack } from "../server/helpers.js";
import { backfillContract, ledgerContract, modelFor, runtimeContract } from "./costs-contract.js";

describe("the cost ledger on SQLite", () => {
  let store: Store;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "outpost-costs-"));
    store = await openStore({ dataDir: dir });
  });
  afterAll(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });
  ledgerContract(() => store);
});

describe("the ledger's migration on SQLite", () => {
  backfillContract(() => new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(":memory:") }) }));
});

describe("runs on SQLite", () => {
  runtimeContract(async (p) => {
    const o = await startOutpost({ project: p, dataDir: newDataDir(), modelFor, pollMs: 50 });
    return o;
  });
  afterAll(async () => {
    await Promise.all(outposts.splice(0).map((o) => o.close()));
  });

  it("a summary's model call is in the ledger as a compaction, with what it cost", async () => {
    const booked: number[] = [];
    const counter: ToolDefinition = {
      name: "ledger.add",
      description: "Adds an amount to the ledger",
      input: z.object({ n: z.number().int() }),
      sideEffects: false,
      handler: ({ input }) => {
        booked.push(input.n);
        return { added: input.n, note: `entry ${input.n} booked against account 4711 for the month-end reconciliation` };
      },
    };
    const p = project([counter], { maxSteps: 100, maxTokens: 100_000_000, maxUsd: 1_000 });
    const clerk = p.agents.get("clerk");
    if (!clerk) throw new Error("no clerk");
    clerk.context = { compaction: "auto", keepRecent: 4 };
    const turns = Array.from({ length: 30 }, (_, i) => ({ tool_calls: [{ name: "ledger.add", args: { n: i + 1 } }] }));
    const model = createScriptedClient(
      "m",
      { dialogues: [{ turns: [...turns, { text: "Booked." }] }] },
      {
        contextWindow: 2_048,
        price: { inputPerMTok: 2, outputPerMTok: 8 },
      },
    );
    const o = await start(p, model);
    const r = await o.startRun({ agent: "clerk", input: "Book thirty entries." });
    const done = await finish(o, r.id, 60_000);
    expect(done.status).toBe("completed");
    const summaries = (await o.getEvents(r.id)).filter((e) => e.type === "context.compacted");
    expect(summaries.length).toBeGreaterThan(0);
    const byPurpose = await o.costs.report({ workspace: p.workspace, groupBy: ["purpose"] });
    const compaction = byPurpose.items.find((i) => i.purpose === "compaction");
    const sum = (key: "input_tokens" | "output_tokens") =>
      summaries.reduce((n, e) => n + (e.data as { usage: Record<string, number> }).usage[key], 0);
    expect(compaction).toMatchObject({
      runs: 1,
      calls: summaries.length,
      input_tokens: sum("input_tokens"),
      output_tokens: sum("output_tokens"),
    });
    expect(compaction?.cost_usd).toBeGreaterThan(0);
    // Steps and summaries together are what the run itself counts.
    expect(byPurpose.totals.input_tokens).toBe(done.usage.input_tokens);
    expect(byPurpose.totals.output_tokens).toBe(done.usage.output_tokens);
    expect(byPurpose.totals.cost_usd).toBeCloseTo(done.usage.cost_usd, 12);
  }, 60_000);
});

describe("which agent a call is charged to", () => {
  const resp = (model: string) =>
    ev("model.responded", {
      step: 1,
      text: "",
      tool_calls: [],
      usage: { input_tokens: 1, output_tokens: 2 },
      cost_usd: 0.5,
      model,
      finish_reason: "stop",
    });
  it("the agent acting when it was made: before a handoff in the same commit, the one handing off", () => {
    const batch = [
      resp("a"),
      ev("tool.called", { call_id: "c", tool: "handoff.b", arguments: {}, idempotency_key: "k" }),
      ev("run.handed_off", { call_id: "c", from: "front", to: "billing", reason: "money" }),
      resp("b"),
    ];
    expect(usageEntries(batch, "billing").map((u) => [u.event, u.agent, u.model, u.purpose])).toEqual([
      [0, "front", "a", "step"],
      [3, "billing", "b", "step"],
    ]);
    expect(usageEntries([ev("run.resumed", { reason: "x" })], "front")).toEqual([]);
  });
});

describe("the query's text", () => {
  const NOW = Date.UTC(2026, 11, 10, 12);
  it("reads dates, months, times and durations; a date or month as `to` includes it whole", () => {
    expect(parseTime("2026-12-01", "from", NOW)).toBe(Date.UTC(2026, 11, 1));
    expect(parseTime("2026-12-31", "to", NOW)).toBe(Date.UTC(2027, 0, 1));
    expect(parseTime("2026-12", "from", NOW)).toBe(Date.UTC(2026, 11, 1));
    expect(parseTime("2026-12", "to", NOW)).toBe(Date.UTC(2027, 0, 1));
    expect(parseTime("2026-12-01T09:30", "from", NOW)).toBe(Date.UTC(2026, 11, 1, 9, 30)); // UTC unless it says
    expect(parseTime("2026-12-01T09:30+02:00", "from", NOW)).toBe(Date.UTC(2026, 11, 1, 7, 30));
    expect(parseTime("7d", "from", NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseTime("12h", "to", NOW)).toBe(NOW - 12 * 3_600_000);
    for (const bad of ["yesterday", "2026-13-01", "2026-02-30", "2026-12-01Tnoon"]) {
      expect(() => parseTime(bad, "from", NOW), bad).toThrow(/^from: ".*" is (not a date|neither)/);
    }
  });

  it("takes lists as comma lists or repeated, and names the parameter of each mistake", () => {
    expect(parseCostQuery({ group_by: ["agent,model", "team"], agent: "a, b", model: ["m"], period: "week" }, NOW)).toEqual({
      groupBy: ["agent", "model", "team"],
      period: "week",
      from: null,
      to: null,
      agents: ["a", "b"],
      models: ["m"],
    });
    expect(() => parseCostQuery({ group_by: "day" })).toThrow('group_by: "day" is not something costs are grouped by');
    expect(() => parseCostQuery({ period: "year" })).toThrow('period: "year" is not a period');
    expect(() => parseCostQuery({ from: "2026-12-05", to: "2026-12-01" })).toThrow(/must be before to/);
    expect(() => parseCostQuery({ agent: "a\u0000" })).toThrow("agent: must not contain NUL characters");
  });
});

describe("GET /v1/costs", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
    const run = await http(stack.url, "POST", "/v1/runs", { body: { agent: "support", input: "Where is order 1042?" } });
    for await (const e of stack.outpost.streamEvents(run.body.id)) void e;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("answers the caller's workspace's spend, grouped as asked, the same as the ledger and the SDK client", async () => {
    const res = await http(stack.url, "GET", "/v1/costs?group_by=agent,model&period=day&from=30d");
    expect(res.status, res.text).toBe(200);
    const direct = await stack.outpost.costs.report({
      workspace: "acme",
      ...parseCostQuery({ group_by: "agent,model", period: "day", from: res.body.from }),
    });
    expect(res.body).toEqual(direct);
    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0]).toMatchObject({ agent: "support", model: "scripted", runs: 1 });
    expect(res.body.items[0].calls).toBeGreaterThan(0);
    expect(res.body.totals.calls).toBe(res.body.items[0].calls);
    const client = createClient(stack.url, { apiKey: TEST_ADMIN_KEY });
    expect(await client.getCosts({ group_by: ["agent", "model"], period: "day", from: res.body.from })).toEqual(res.body);
    // Repeated parameters are lists too.
    const repeated = await http(stack.url, "GET", "/v1/costs?group_by=agent&group_by=model&period=day&agent=support&agent=nobody");
    expect(repeated.body.items.map((i: { agent: string }) => i.agent)).toEqual(["support"]);
  });

  it("a viewer may read it", async () => {
    const key = await http(stack.url, "POST", "/v1/keys", { body: { name: "viewer", roles: ["viewer"] } });
    expect(key.status).toBe(201);
    const res = await http(stack.url, "GET", "/v1/costs", { headers: { authorization: `Bearer ${key.body.key}` } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.totals.runs).toBe(1);
  });

  it("answers 400 naming the parameter for a bad group_by, period, time, team or unknown parameter", async () => {
    const cases: [string, RegExp][] = [
      ["group_by=agent,colour", /^group_by: "colour" is not something costs are grouped by/],
      ["group_by=month", /^group_by: "month"/],
      ["period=year", /^query\.period: must be one of "day", "week", "month"/],
      ["from=last-tuesday", /^from: "last-tuesday" is neither/],
      ["from=2026-12-05&to=2026-12-01", /must be before to/],
      ["team=finance", /^team: no team "finance" in the project/],
      ["colour=red", /^query\.colour: unknown field/],
    ];
    for (const [query, message] of cases) {
      const res = await http(stack.url, "GET", `/v1/costs?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(res.body.error.message, query).toMatch(message);
    }
    const bad = await http(stack.url, "GET", "/v1/costs?group_by=month");
    expect(bad.body.error.hint).toBe("periods are asked apart: period=month");
  });
});
