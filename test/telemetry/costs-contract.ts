/**
 * The cost accounting contract, run against each store driver (costs.test.ts on SQLite, test/pg/costs.test.ts on
 * PostgreSQL): the ledger written with the commit, and only with it; the report's groups, periods, bounds and
 * filters; and, end to end, runs of agents in teams on priced scripted models summed to the call.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Kysely, Migrator } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventView } from "../../src/core/api.js";
import { ev, type NewEvent } from "../../src/core/events.js";
import { handoffToolName } from "../../src/definitions/index.js";
import type { AgentDefinition, Project, TeamDefinition } from "../../src/definitions/types.js";
import { createScriptedClient, type ModelClient, type ModelPrice, type ModelRequest } from "../../src/models/index.js";
import type { ScriptReply } from "../../src/models/scripted/client.js";
import type { Outpost } from "../../src/runtime/index.js";
import { CommitConflict, type RunPatch, type Store, type UsageEntryInput } from "../../src/store/index.js";
import { migrationProvider } from "../../src/store/migrations/index.js";
import type { Database } from "../../src/store/schema.js";
import { CostLedger, type CostRow, NO_TEAM, type TeamMembers } from "../../src/telemetry/costs.js";
import { defaultLimits } from "../runtime/fixtures.js";

export const ws = () => `ws_${randomBytes(4).toString("hex")}`;

const patch = (over: Partial<RunPatch> = {}): RunPatch => ({
  status: "running",
  steps: 1,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: 0,
  ...over,
});

const responded = (model: string, input: number, output: number, cost: number): NewEvent =>
  ev("model.responded", {
    step: 1,
    text: "ok",
    tool_calls: [],
    usage: { input_tokens: input, output_tokens: output },
    cost_usd: cost,
    model,
    finish_reason: "stop",
  });

const entry = (event: number, agent: string, model: string, input: number, output: number, cost: number): UsageEntryInput => ({
  event,
  agent,
  model,
  purpose: "step",
  inputTokens: input,
  outputTokens: output,
  costUsd: cost,
});

async function ledgerOf(store: Store, runId: string) {
  const rows = await store.domain.db.selectFrom("model_usage").selectAll().where("run_id", "=", runId).orderBy("seq").execute();
  return rows.map((r) => ({
    ...r,
    seq: Number(r.seq),
    at: Number(r.at),
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
  }));
}

/** Ledger rows written as the commit path writes them, at chosen times (for periods and bounds). */
async function plant(
  store: Store,
  workspace: string,
  rows: { run: string; agent: string; model: string; at: number; input?: number; output?: number; usd: number; purpose?: string }[],
) {
  await store.domain.write((trx) =>
    trx
      .insertInto("model_usage")
      .values(
        rows.map((r, i) => ({
          workspace,
          run_id: `${workspace}_${r.run}`,
          seq: i + 2,
          agent: r.agent,
          model: r.model,
          purpose: r.purpose ?? "step",
          at: r.at,
          input_tokens: r.input ?? 100,
          output_tokens: r.output ?? 10,
          cost_usd: r.usd,
        })),
      )
      .execute(),
  );
}

/** The store half: `store()` is a database no runtime works on (every claimable run is the test's). */
export function ledgerContract(store: () => Store): void {
  /** A fresh run, claimed. */
  const claimed = async (workspace = ws()) => {
    const { run } = await store().createRun({ workspace, agent: "support", input: "hello" });
    const [c] = await store().claimRuns("w1", 10, 30_000);
    expect(c.run.id).toBe(run.id);
    return c;
  };

  it("writes one ledger row per model call with the commit: the event's seq and time, the run's workspace", async () => {
    const c = await claimed();
    const events = [ev("model.called", { step: 1, model: "large" }), responded("large", 1200, 80, 0.0048)];
    const result = await store().commit({
      runId: c.run.id,
      leaseToken: c.leaseToken,
      expectedSeq: 1,
      events,
      patch: patch({ inputTokens: 1200, outputTokens: 80, costUsd: 0.0048 }),
      usage: [entry(1, "refunds", "large", 1200, 80, 0.0048)],
    });
    const rows = await ledgerOf(store(), c.run.id);
    expect(rows).toEqual([
      {
        workspace: c.run.workspace,
        run_id: c.run.id,
        seq: 3,
        agent: "refunds",
        model: "large",
        purpose: "step",
        at: result.at,
        input_tokens: 1200,
        output_tokens: 80,
        cost_usd: 0.0048,
      },
    ]);
    const logged = (await store().getEvents(c.run.id)).find((e) => e.seq === 3);
    expect(logged).toMatchObject({ type: "model.responded", at: result.at });
  });

  it("a refused commit writes no ledger row: a lost lease, a log that moved on", async () => {
    const c = await claimed();
    const request = {
      runId: c.run.id,
      expectedSeq: 1,
      events: [responded("large", 10, 1, 0.01)],
      patch: patch(),
      usage: [entry(0, "support", "large", 10, 1, 0.01)],
    };
    await expect(store().commit({ ...request, leaseToken: "not-the-lease" })).rejects.toBeInstanceOf(CommitConflict);
    await expect(store().commit({ ...request, leaseToken: c.leaseToken, expectedSeq: 5 })).rejects.toMatchObject({
      reason: "seq_conflict",
    });
    expect(await ledgerOf(store(), c.run.id)).toEqual([]);
    // And the same commit, current, writes its row once.
    await store().commit({ ...request, leaseToken: c.leaseToken });
    expect((await ledgerOf(store(), c.run.id)).map((r) => r.seq)).toEqual([2]);
  });

  it("commits grouped in one batch write the rows of the runs that moved, and only those", async () => {
    const workspace = ws();
    for (const input of ["a", "b", "c"]) await store().createRun({ workspace, agent: "support", input });
    const claims = await store().claimRuns("w1", 10, 30_000);
    expect(claims).toHaveLength(3);
    const results = await Promise.allSettled(
      claims.map((c, i) =>
        store().commit({
          runId: c.run.id,
          leaseToken: i === 1 ? "stale" : c.leaseToken,
          expectedSeq: 1,
          events: [responded("small", 100 * (i + 1), 10, 0.001 * (i + 1)), responded("large", 5, 5, 0.5)],
          patch: patch(),
          usage: [entry(0, "support", "small", 100 * (i + 1), 10, 0.001 * (i + 1)), entry(1, "support", "large", 5, 5, 0.5)],
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await ledgerOf(store(), claims[0].run.id)).map((r) => [r.seq, r.model, r.input_tokens])).toEqual([
      [2, "small", 100],
      [3, "large", 5],
    ]);
    expect(await ledgerOf(store(), claims[1].run.id)).toEqual([]);
    expect((await ledgerOf(store(), claims[2].run.id)).map((r) => [r.seq, r.model, r.input_tokens])).toEqual([
      [2, "small", 300],
      [3, "large", 5],
    ]);
    const report = await new CostLedger(store().domain, () => []).report({ workspace });
    expect(report.totals).toEqual({ runs: 2, calls: 4, input_tokens: 410, output_tokens: 30, cost_usd: 1.004 });
  });

  const TEAMS: TeamMembers[] = [
    { name: "service", lead: "triage", members: ["triage", "refunds"] },
    { name: "finance", lead: "refunds", members: ["refunds"] },
  ];
  const ledger = () => new CostLedger(store().domain, () => TEAMS);
  // Sunday 2026-11-29 23:59:59.999, then Monday 2026-11-30 (a new ISO week), then Tuesday 2026-12-01 (a new month).
  const SUN = Date.UTC(2026, 10, 29, 23, 59, 59, 999);
  const MON = Date.UTC(2026, 10, 30, 0, 0, 0, 0);
  const TUE = Date.UTC(2026, 11, 1, 12);
  const JAN = Date.UTC(2027, 0, 15);
  const planted = async () => {
    const w = ws();
    await plant(store(), w, [
      { run: "r1", agent: "triage", model: "small", at: SUN, usd: 0.25 },
      { run: "r1", agent: "refunds", model: "large", at: SUN, usd: 1.5 },
      { run: "r2", agent: "triage", model: "small", at: MON, usd: 0.125 },
      { run: "r3", agent: "clerk", model: "small", at: TUE, usd: 0.0625, purpose: "compaction" },
      { run: "r4", agent: "refunds", model: "large", at: JAN, usd: 2 },
    ]);
    return w;
  };
  const pick = (items: CostRow[]) =>
    items.map(({ runs, calls, cost_usd, input_tokens, output_tokens, ...keys }) => ({ ...keys, runs, calls, cost_usd }));

  it("groups by UTC day, ISO week (labelled by its Monday) and calendar month, at the boundaries", async () => {
    const w = await planted();
    const days = await ledger().report({ workspace: w, period: "day" });
    expect(pick(days.items)).toEqual([
      { period: "2026-11-29", runs: 1, calls: 2, cost_usd: 1.75 },
      { period: "2026-11-30", runs: 1, calls: 1, cost_usd: 0.125 },
      { period: "2026-12-01", runs: 1, calls: 1, cost_usd: 0.0625 },
      { period: "2027-01-15", runs: 1, calls: 1, cost_usd: 2 },
    ]);
    const weeks = await ledger().report({ workspace: w, period: "week" });
    expect(pick(weeks.items)).toEqual([
      { period: "2026-11-23", runs: 1, calls: 2, cost_usd: 1.75 },
      { period: "2026-11-30", runs: 2, calls: 2, cost_usd: 0.1875 },
      { period: "2027-01-11", runs: 1, calls: 1, cost_usd: 2 },
    ]);
    const months = await ledger().report({ workspace: w, period: "month", groupBy: ["model"] });
    expect(pick(months.items)).toEqual([
      { period: "2026-11", model: "large", runs: 1, calls: 1, cost_usd: 1.5 },
      { period: "2026-11", model: "small", runs: 2, calls: 2, cost_usd: 0.375 },
      { period: "2026-12", model: "small", runs: 1, calls: 1, cost_usd: 0.0625 },
      { period: "2027-01", model: "large", runs: 1, calls: 1, cost_usd: 2 },
    ]);
    expect(months.totals).toEqual({ runs: 4, calls: 5, input_tokens: 500, output_tokens: 50, cost_usd: 3.9375 });
  });

  it("bounds: from inclusive, to exclusive; a month with no calls between two that have some is left out", async () => {
    const w = await planted();
    const r = await ledger().report({ workspace: w, from: MON, to: JAN, period: "month" });
    expect(pick(r.items)).toEqual([
      { period: "2026-11", runs: 1, calls: 1, cost_usd: 0.125 },
      { period: "2026-12", runs: 1, calls: 1, cost_usd: 0.0625 },
    ]);
    expect(r).toMatchObject({ from: "2026-11-30T00:00:00.000Z", to: "2027-01-15T00:00:00.000Z", period: "month" });
    expect((await ledger().report({ workspace: w, to: MON })).totals.calls).toBe(2); // SUN's last millisecond is in
    expect((await ledger().report({ workspace: w, from: JAN + 1 })).items).toEqual([]);
  });

  it("teams as defined now: an agent in two teams counts in both, one in none under (none); totals count each call once", async () => {
    const w = await planted();
    const byTeam = await ledger().report({ workspace: w, groupBy: ["team"] });
    expect(pick(byTeam.items)).toEqual([
      { team: "service", runs: 3, calls: 4, cost_usd: 3.875 },
      { team: "finance", runs: 2, calls: 2, cost_usd: 3.5 },
      { team: NO_TEAM, runs: 1, calls: 1, cost_usd: 0.0625 },
    ]);
    expect(byTeam.totals.cost_usd).toBe(3.9375);
    // A team filter keeps its agents' calls (each once) — or, grouped by team, that team's rows.
    expect((await ledger().report({ workspace: w, teams: ["finance"] })).totals).toMatchObject({ calls: 2, cost_usd: 3.5 });
    expect((await ledger().report({ workspace: w, teams: ["service"] })).totals).toMatchObject({ calls: 4, cost_usd: 3.875 });
    expect((await ledger().report({ workspace: w, teams: [NO_TEAM] })).totals).toMatchObject({ calls: 1, cost_usd: 0.0625 });
    const one = await ledger().report({ workspace: w, teams: ["finance"], groupBy: ["team", "agent"] });
    expect(pick(one.items)).toEqual([{ agent: "refunds", team: "finance", runs: 2, calls: 2, cost_usd: 3.5 }]);
    await expect(ledger().report({ workspace: w, teams: ["financ"] })).rejects.toMatchObject({
      code: "invalid_request",
      hint: "known teams: finance, service (or (none))",
    });
    // Without teams, everyone is in none.
    const none = await new CostLedger(store().domain, () => []).report({ workspace: w, groupBy: ["team"] });
    expect(pick(none.items)).toEqual([{ team: NO_TEAM, runs: 4, calls: 5, cost_usd: 3.9375 }]);
  });

  it("filters by agent and model, groups by purpose, and never reaches another workspace", async () => {
    const w = await planted();
    const other = await planted();
    const r = await ledger().report({ workspace: w, agents: ["triage", "clerk"], models: ["small"], groupBy: ["agent", "purpose"] });
    expect(pick(r.items)).toEqual([
      { agent: "triage", purpose: "step", runs: 2, calls: 2, cost_usd: 0.375 },
      { agent: "clerk", purpose: "compaction", runs: 1, calls: 1, cost_usd: 0.0625 },
    ]);
    expect((await ledger().report({ workspace: w })).totals.calls).toBe(5);
    expect((await ledger().report({ workspace: other })).totals.calls).toBe(5);
    expect(await ledger().report({ workspace: ws(), groupBy: ["agent"], period: "month" })).toEqual({
      from: null,
      to: null,
      group_by: ["agent"],
      period: "month",
      items: [],
      totals: { runs: 0, calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 },
    });
  });
}

/** The migration that adds the ledger fills it from the logs already there: `db` is at 008, `migrate` takes it on. */
/** `open` gives an empty database of the driver under test; the contract migrates it to just before the ledger. */
export function backfillContract(open: () => Kysely<any>): void {
  it("a database from before the ledger gets every model call of its logs, the agent followed through handoffs", async () => {
    const db = open();
    const migrator = new Migrator({
      db,
      provider: migrationProvider,
      migrationTableName: "outpost_migrations",
      migrationLockTableName: "outpost_migrations_lock",
    });
    const migrate = async () => {
      const r = await migrator.migrateToLatest();
      if (r.error) throw r.error;
    };
    const close = () => db.destroy();
    try {
      const before = await migrator.migrateTo("008_event_leases");
      if (before.error) throw before.error;
      const now = Date.UTC(2026, 10, 2, 9);
      await db
        .insertInto("sessions")
        .values({ id: "ses_1", workspace: "acme", agent: "triage", created_at: now, updated_at: now, next_seq: 2 })
        .execute();
      const run = (id: string, agent: string) => ({
        id,
        workspace: "acme",
        agent,
        session_id: "ses_1",
        session_seq: id === "run_a" ? 1 : 2,
        status: "completed",
        input: "x",
        created_at: now,
        updated_at: now,
      });
      await db
        .insertInto("runs")
        .values([run("run_a", "triage"), run("run_b", "clerk")])
        .execute();
      const event = (run_id: string, seq: number, type: string, data: unknown) => ({
        run_id,
        seq,
        type,
        data: JSON.stringify(data),
        at: now + seq,
        v: 1,
      });
      const resp = (model: string, i: number, o: number, usd: number) => ({
        step: 1,
        text: "",
        tool_calls: [],
        usage: { input_tokens: i, output_tokens: o },
        cost_usd: usd,
        model,
        finish_reason: "stop",
      });
      await db
        .insertInto("events")
        .values([
          event("run_a", 1, "run.started", { agent: "triage", input: "x", session_id: "ses_1" }),
          event("run_a", 2, "model.responded", resp("small", 100, 10, 0.1)),
          event("run_a", 3, "run.handed_off", { call_id: "c1", from: "triage", to: "refunds", reason: "money" }),
          event("run_a", 4, "model.responded", resp("large", 200, 20, 0.2)),
          event("run_b", 1, "run.started", { agent: "clerk", input: "x", session_id: "ses_1" }),
          event("run_b", 2, "context.compacted", {
            step: 1,
            summary: "s",
            through: { session_seq: null, messages: 2 },
            replaced: { messages: 2, tokens: 50 },
            tokens: 5,
            tokenizer: "o200k",
            usage: { input_tokens: 300, output_tokens: 30 },
            cost_usd: 0.3,
            model: "small",
          }),
          event("run_b", 3, "run.completed", { output: "done" }),
        ])
        .execute();
      await migrate();
      const rows = await (db as Kysely<Database>).selectFrom("model_usage").selectAll().orderBy("run_id").orderBy("seq").execute();
      expect(
        rows.map((r) => [
          r.workspace,
          r.run_id,
          Number(r.seq),
          r.agent,
          r.model,
          r.purpose,
          Number(r.at),
          Number(r.input_tokens),
          Number(r.output_tokens),
          r.cost_usd,
        ]),
      ).toEqual([
        ["acme", "run_a", 2, "triage", "small", "step", now + 2, 100, 10, 0.1],
        ["acme", "run_a", 4, "refunds", "large", "step", now + 4, 200, 20, 0.2],
        ["acme", "run_b", 2, "clerk", "small", "compaction", now + 2, 300, 30, 0.3],
      ]);
    } finally {
      await close();
    }
  });
}

// ——— End to end: agents in teams on priced scripted models ———

const PRICES: Record<string, ModelPrice> = { small: { inputPerMTok: 1, outputPerMTok: 2 }, large: { inputPerMTok: 3, outputPerMTok: 15 } };
const MODEL_OF: Record<string, string> = { triage: "small", refunds: "large", clerk: "small" };

/** A scripted model answering as `id` at its price: each agent's brain, with the usage it reports. */
function priced(id: string): ModelClient {
  const inner = createScriptedClient(
    id,
    (req: ModelRequest): ScriptReply => {
      if (req.agent === "triage") {
        const input = req.messages.find((m) => m.role === "user")?.content ?? "";
        return input.includes("refund")
          ? {
              toolCalls: [{ name: handoffToolName("refunds"), arguments: { reason: "money" } }],
              usage: { inputTokens: 2000, outputTokens: 50 },
            }
          : { text: "triaged", usage: { inputTokens: 1000, outputTokens: 100 } };
      }
      if (req.agent === "refunds") return { text: "refunded", usage: { inputTokens: 3000, outputTokens: 200 } };
      return { text: "filed", usage: { inputTokens: 500, outputTokens: 10 } };
    },
    { price: PRICES[id] },
  );
  return {
    alias: id,
    provider: "scripted",
    modelId: id,
    location: "local",
    price: PRICES[id],
    generate: async (r) => ({ ...(await inner.generate(r)), model: id }),
  };
}

function agent(name: string, handoffs: string[] = []): AgentDefinition {
  return {
    name,
    description: `the ${name} agent`,
    instructions: `You are ${name}.`,
    model: "m",
    tools: handoffs.map((h) => ({ name: handoffToolName(h) })),
    delegates: [],
    handoffs,
    fanOut: "all",
    limits: defaultLimits,
    file: `agents/${name}.yaml`,
  };
}

export function teamProject(workspace: string): Project {
  const root = mkdtempSync(join(tmpdir(), "outpost-costs-"));
  const team = (name: string, lead: string, members: string[]): [string, TeamDefinition] => [
    name,
    { name, description: name, lead, members, exposes: [], file: `teams/${name}.yaml` },
  ];
  return {
    root,
    workspace,
    models: new Map(),
    agents: new Map([agent("triage", ["refunds"]), agent("refunds"), agent("clerk")].map((a) => [a.name, a])),
    tools: new Map(),
    connections: new Map(),
    teams: new Map([team("service", "triage", ["triage", "refunds"]), team("finance", "refunds", ["refunds"])]),
    defaults: { model: "m", limits: defaultLimits },
    scriptsDir: join(root, "scripts"),
  };
}

export const modelFor = (a: AgentDefinition) => priced(MODEL_OF[a.name] ?? "small");

/** The runtime half: `start(project)` starts an Outpost on the driver (with `modelFor`). */
export function runtimeContract(start: (project: Project) => Promise<Outpost>): void {
  describe("runs summed to the call", () => {
    let o: Outpost;
    const runs: string[] = [];
    beforeAll(async () => {
      o = await start(teamProject(ws()));
      for (const [agentName, input] of [
        ["triage", "hello"],
        ["triage", "a refund please"],
        ["clerk", "file it"],
      ]) {
        const run = await o.startRun({ agent: agentName, input });
        for await (const e of o.streamEvents(run.id)) void e;
        runs.push(run.id);
      }
    });
    afterAll(async () => {
      await o?.close();
    });

    it("every model call in the logs has its ledger row (same seq, time, model, tokens, cost), by the agent acting", async () => {
      const handed = await o.getRun(runs[1]);
      expect(handed).toMatchObject({ status: "completed", output: "refunded" });
      for (const id of runs) {
        const calls = (await o.getEvents(id)).filter((e: EventView) => e.type === "model.responded" || e.type === "context.compacted");
        const rows = await ledgerOf(o.store, id);
        expect(rows.map((r) => [r.seq, r.at, r.model, r.input_tokens, r.output_tokens, r.cost_usd])).toEqual(
          calls.map((e) => {
            const d = e.data as { model: string; usage: { input_tokens: number; output_tokens: number }; cost_usd: number };
            return [e.seq, Date.parse(e.at), d.model, d.usage.input_tokens, d.usage.output_tokens, d.cost_usd];
          }),
        );
        const run = await o.getRun(id);
        expect(rows.reduce((n, r) => n + r.cost_usd, 0)).toBeCloseTo(run.usage.cost_usd, 12);
      }
      expect((await ledgerOf(o.store, runs[1])).map((r) => r.agent)).toEqual(["triage", "refunds"]); // the handoff
    });

    it("by agent, team and model: exact sums, distinct runs", async () => {
      const costs = o.costs;
      const workspace = o.project.workspace;
      const byAgent = await costs.report({ workspace, groupBy: ["agent"] });
      expect(byAgent.items).toEqual([
        { agent: "refunds", runs: 1, calls: 1, input_tokens: 3000, output_tokens: 200, cost_usd: 0.012 },
        { agent: "triage", runs: 2, calls: 2, input_tokens: 3000, output_tokens: 150, cost_usd: 0.0033 },
        { agent: "clerk", runs: 1, calls: 1, input_tokens: 500, output_tokens: 10, cost_usd: 0.00052 },
      ]);
      expect(byAgent.totals).toEqual({ runs: 3, calls: 4, input_tokens: 6500, output_tokens: 360, cost_usd: 0.01582 });
      const byTeam = await costs.report({ workspace, groupBy: ["team"] });
      expect(byTeam.items).toEqual([
        { team: "service", runs: 2, calls: 3, input_tokens: 6000, output_tokens: 350, cost_usd: 0.0153 },
        { team: "finance", runs: 1, calls: 1, input_tokens: 3000, output_tokens: 200, cost_usd: 0.012 },
        { team: NO_TEAM, runs: 1, calls: 1, input_tokens: 500, output_tokens: 10, cost_usd: 0.00052 },
      ]);
      const byModel = await costs.report({ workspace, groupBy: ["model"] });
      expect(byModel.items).toEqual([
        { model: "large", runs: 1, calls: 1, input_tokens: 3000, output_tokens: 200, cost_usd: 0.012 },
        { model: "small", runs: 3, calls: 3, input_tokens: 3500, output_tokens: 160, cost_usd: 0.00382 },
      ]);
      // By day: today's (yesterday's too, for runs made around midnight UTC), adding up to the totals.
      const byDay = await costs.report({ workspace, period: "day" });
      const days = [0, 1].map((back) => new Date(Date.now() - back * 86_400_000).toISOString().slice(0, 10));
      for (const item of byDay.items) expect(days).toContain(item.period);
      expect(byDay.items.reduce((n, i) => n + i.calls, 0)).toBe(4);
      expect(byDay.items.reduce((n, i) => n + i.input_tokens, 0)).toBe(6500);
      const finance = await costs.report({ workspace, teams: ["finance"], models: ["large"] });
      expect(finance.totals).toEqual({ runs: 1, calls: 1, input_tokens: 3000, output_tokens: 200, cost_usd: 0.012 });
      expect((await costs.report({ workspace: ws() })).totals.calls).toBe(0);
    });
  });
}
