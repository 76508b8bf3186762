/**
 * Budgets on the embedded SQLite store (the contract in ./budgets-contract.ts), the cost estimate, UTC
 * periods, and the `budgets:` section of outpost.yaml with its file:line messages.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import type { BudgetCap } from "../../src/definitions/types.js";
import { Budgets, estimate, nextPeriodStart, periodKey, teamsOf } from "../../src/security/budgets/index.js";
import { makeErrorHandler } from "../../src/server/errors.js";
import { registerBudgetRoutes } from "../../src/server/routes/budgets.js";
import { sharedSchemas } from "../../src/server/schemas.js";
import { openStore, type Store } from "../../src/store/index.js";
import { runCli } from "../cli/harness.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "../definitions/fixtures.js";
import { budgetsContract, request } from "./budgets-contract.js";

describe("budgets on SQLite", () => {
  let store: Store;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "outpost-budgets-"));
    store = await openStore({ dataDir: dir });
  });
  afterAll(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });
  budgetsContract(() => store);
});

describe("estimate", () => {
  it("prices the prompt generously from its characters and the output at its maximum", () => {
    const price = { inputPerMTok: 3, outputPerMTok: 15 };
    // 3001 characters → 1501 tokens at 2 characters a token; 1000 output tokens.
    expect(estimate(price, 3001, 1000)).toEqual({ usd: (1501 * 3 + 1000 * 15) / 1e6, tokens: 2501 });
    expect(estimate(price, 0, 0)).toEqual({ usd: 0, tokens: 0 });
    expect(estimate({ inputPerMTok: 0, outputPerMTok: 0 }, 10, 10)).toEqual({ usd: 0, tokens: 15 });
  });
});

describe("periods (UTC)", () => {
  it("name the day and month of a moment and when the next one starts", () => {
    const newYearsEve = Date.UTC(2026, 11, 31, 23, 59, 59, 999);
    expect(periodKey("day", newYearsEve)).toBe("day:2026-12-31");
    expect(periodKey("month", newYearsEve)).toBe("month:2026-12");
    expect(periodKey("total", newYearsEve)).toBe("total");
    expect(nextPeriodStart("day", newYearsEve)).toBe(Date.UTC(2027, 0, 1));
    expect(nextPeriodStart("month", newYearsEve)).toBe(Date.UTC(2027, 0, 1));
    expect(nextPeriodStart("total", newYearsEve)).toBeNull();
    expect(periodKey("day", Date.UTC(2027, 0, 1))).toBe("day:2027-01-01");
    expect(nextPeriodStart("month", Date.UTC(2028, 1, 29, 12))).toBe(Date.UTC(2028, 2, 1));
  });

  it("teamsOf lists the teams an agent leads or belongs to", () => {
    const teams = [
      { name: "finance", lead: "refunds", members: ["refunds", "ledger"] },
      { name: "service", lead: "front", members: ["front"] },
      { name: "ops", lead: "boss", members: ["boss", "ledger"] },
    ];
    expect(teamsOf(teams, "ledger")).toEqual(["finance", "ops"]);
    expect(teamsOf(teams, "nobody")).toEqual([]);
  });
});

const agent = (name: string) => `name: ${name}\ndescription: the ${name} agent\ninstructions: work\n`;
const ORG = {
  "agents/refunds.yaml": agent("refunds"),
  "agents/support.yaml": agent("support"),
  "teams/finance.yaml": "name: finance\ndescription: money\nlead: refunds\nmembers: [refunds]\n",
};

describe("budgets in outpost.yaml", () => {
  it("loads caps per workspace, team and agent", async () => {
    const root = await writeProject({
      ...ORG,
      "outpost.yaml": `${MINIMAL_SETTINGS}budgets:
  - { scope: workspace, period: month, usd: 200 }
  - { scope: "team:finance", period: day, usd: 20, tokens: 2000000, on_exceed: wait }
  - { scope: "agent:support", period: total, tokens: 50000 }
`,
    });
    const project = await loadProject(root, { env: {} });
    expect(project.budgets).toEqual([
      { scope: "workspace", period: "month", usd: 200, onExceed: "fail" },
      { scope: "team:finance", period: "day", usd: 20, tokens: 2_000_000, onExceed: "wait" },
      { scope: "agent:support", period: "total", tokens: 50_000, onExceed: "fail" },
    ]);
    expect((await loadProject(await writeProject(ORG), { env: {} })).budgets).toEqual([]);
  });

  it("names each mistake with its line and how to fix it", async () => {
    const issues = await issuesOf({
      ...ORG,
      "outpost.yaml": `${MINIMAL_SETTINGS}budgets:
  - { scope: "team:finanse", period: day, usd: 1 }
  - { scope: "agent:nobody", period: day, usd: 1 }
  - { scope: workspace, period: total, usd: 1, on_exceed: wait }
  - { scope: "agent:refunds", period: day, usd: 1 }
  - { scope: "agent:refunds", period: day, tokens: 5 }
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'outpost.yaml:9 budgets[0].scope: unknown team "finanse" — did you mean "finance"?',
      'outpost.yaml:10 budgets[1].scope: unknown agent "nobody" — define it in agents/nobody.yaml (known: refunds, support)',
      "outpost.yaml:11 budgets[2].on_exceed: a total budget never renews, so there is nothing to wait for — use on_exceed: fail, or period: day or month",
      "outpost.yaml:13 budgets[4]: agent:refunds already has a day budget (budgets[3]) — put usd and tokens in one entry",
    ]);
  });

  it("refuses a budget without a limit, a malformed scope and an unknown period", async () => {
    const issues = await issuesOf({
      ...ORG,
      "outpost.yaml": `${MINIMAL_SETTINGS}budgets:
  - scope: workspace
    period: day
  - { scope: "agents:refunds", period: day, usd: 1 }
  - { scope: workspace, period: weekly, usd: -2 }
`,
    });
    // (An invalid outpost.yaml also leaves the agents without their default model: those issues are not ours.)
    expect(issues.filter((i) => i.file === "outpost.yaml").map(formatIssue)).toEqual([
      "outpost.yaml:9 budgets[0]: a budget needs a limit — add usd: <dollars> or tokens: <count> (or both)",
      'outpost.yaml:11 budgets[1].scope: a budget scope is "workspace", "team:<name>" or "agent:<name>" (e.g. "agent:refunds")',
      'outpost.yaml:12 budgets[2].period: must be one of day, month, total (got "weekly")',
      "outpost.yaml:12 budgets[2].usd: must be at least 0 (got -2)",
    ]);
  });
});

const CAPS_YAML = `budgets:
  - { scope: workspace, period: month, usd: 10 }
  - { scope: "agent:refunds", period: day, usd: 1, tokens: 1000, on_exceed: wait }
`;
const CAPS: BudgetCap[] = [
  { scope: "workspace", period: "month", usd: 10, onExceed: "fail" },
  { scope: "agent:refunds", period: "day", usd: 1, tokens: 1000, onExceed: "wait" },
];

/** Spends $0.95 and 900 tokens of refunds' day in workspace `test` (MINIMAL_SETTINGS), with $0.02 still reserved. */
async function spend(budgets: Budgets, workspace = "test"): Promise<void> {
  const now = Date.now();
  const a = await budgets.reserve({ ...request(workspace, "refunds", [], 0.95, 900), now });
  if (!a.ok) throw new Error(a.message);
  await budgets.settle(a.reservation.id, { usd: 0.95, tokens: 900 }, now);
  expect((await budgets.reserve({ ...request(workspace, "refunds", [], 0.02, 50), now })).ok).toBe(true);
}

describe("GET /v1/budgets", () => {
  let store: Store;
  let dir: string;
  let server: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "outpost-budgets-http-"));
    store = await openStore({ dataDir: dir });
    const budgets = new Budgets(store.domain, CAPS);
    await spend(budgets, "acme");
    server = Fastify();
    for (const schema of sharedSchemas) server.addSchema(schema);
    server.setErrorHandler(makeErrorHandler(1 << 20));
    // Stands in for the auth hook (server/auth.ts): the caller's workspace from a header, or no caller.
    server.addHook("onRequest", async (req) => {
      const w = req.headers["x-test-workspace"];
      if (typeof w === "string")
        req.caller = { workspace: w, id: "key:viewer", name: "viewer", roles: ["viewer"], groups: [], via: "api_key" };
    });
    await registerBudgetRoutes(server, budgets);
    base = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers the caller's workspace's usage against each cap, to any role", async () => {
    const res = await fetch(`${base}/v1/budgets`, { headers: { "x-test-workspace": "acme" } });
    expect(res.status).toBe(200);
    const { budgets } = (await res.json()) as { budgets: Record<string, unknown>[] };
    expect(budgets).toHaveLength(2);
    expect(budgets[1]).toMatchObject({
      scope: "agent:refunds",
      period: "day",
      usd_limit: 1,
      tokens_limit: 1000,
      usd_spent: 0.95,
      usd_reserved: 0.02,
      tokens_spent: 900,
      tokens_reserved: 50,
      on_exceed: "wait",
    });
    expect(budgets[0]).toMatchObject({ scope: "workspace", usd_limit: 10, tokens_limit: null, on_exceed: "fail" });
  });

  it("shows another workspace none of it, and refuses a request without credentials", async () => {
    const other = (await (await fetch(`${base}/v1/budgets`, { headers: { "x-test-workspace": "globex" } })).json()) as {
      budgets: { usd_spent: number; usd_reserved: number; tokens_spent: number }[];
    };
    expect(other.budgets.map((b) => [b.usd_spent, b.usd_reserved, b.tokens_spent])).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    const anonymous = await fetch(`${base}/v1/budgets`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  });
});

describe("outpost budgets", () => {
  it("prints each cap of the local project with what is spent and reserved", async () => {
    const root = await writeProject({ ...ORG, "outpost.yaml": MINIMAL_SETTINGS + CAPS_YAML });
    const data = path.join(root, ".outpost");
    const store = await openStore({ dataDir: data });
    try {
      await spend(new Budgets(store.domain, CAPS));
    } finally {
      await store.close();
    }
    const r = await runCli(["budgets", "--project", root, "--data", data]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^SCOPE\s+PERIOD\s+USD SPENT\s+RESERVED\s+LIMIT\s+TOKENS SPENT/);
    expect(lines[1]).toMatch(/^workspace\s+month:\d{4}-\d\d\s+\$0\.95\s+\$0\.02\s+\$10\.00\s+900\s+50\s+—\s+fail/);
    expect(lines[2]).toMatch(
      /^agent:refunds\s+day:\d{4}-\d\d-\d\d\s+\$0\.95\s+\$0\.02\s+\$1\.00\s+900\s+50\s+1,000\s+wait\s+\d{4}-\d\d-\d\d 00:00 UTC/,
    );

    const json = await runCli(["budgets", "--json", "--project", root, "--data", data]);
    expect(JSON.parse(json.stdout)).toMatchObject([
      { scope: "workspace", usd_spent: 0.95 },
      { scope: "agent:refunds", tokens_reserved: 50 },
    ]);
  });

  it("says how to add caps when there are none, and names a budget mistake by line", async () => {
    const none = await runCli(["budgets", "--project", await writeProject(ORG)]);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain("no budgets — add caps under budgets: in outpost.yaml");

    const wrong = await runCli([
      "budgets",
      "--project",
      await writeProject({ ...ORG, "outpost.yaml": `${MINIMAL_SETTINGS}budgets:\n  - { scope: "team:finanse", period: day, usd: 1 }\n` }),
    ]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('outpost.yaml:9 budgets[0].scope: unknown team "finanse" — did you mean "finance"?');
    expect(wrong.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
