/**
 * Budgets on the embedded SQLite store (the contract in ./budgets-contract.ts), the cost estimate, UTC
 * periods, and the `budgets:` section of outpost.yaml with its file:line messages.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { estimate, nextPeriodStart, periodKey, teamsOf } from "../../src/security/budgets/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "../definitions/fixtures.js";
import { budgetsContract } from "./budgets-contract.js";

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
