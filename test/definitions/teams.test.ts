/**
 * teams/*.yaml, delegates/handoffs and connections in project definitions: what loads, and the
 * file:line message for each mistake.
 */
import { describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "./fixtures.js";

const agent = (name: string, extra = "") => `name: ${name}\ndescription: the ${name} agent\ninstructions: work\n${extra}`;

const ORG = {
  "outpost.yaml": MINIMAL_SETTINGS,
  "agents/front.yaml": agent("front", "handoffs: [desk]\ndelegates: [stock]\n"),
  "agents/desk.yaml": agent("desk", "delegates: [stock, books]\nfan_out: fail_fast\n"),
  "agents/stock.yaml": agent("stock", "delegates: [picker]\n"),
  "agents/picker.yaml": agent("picker"),
  "agents/books.yaml": agent("books"),
  "teams/service.yaml": "name: service\ndescription: customers\nlead: front\nmembers: [front, desk]\nexposes: [front]\n",
  "teams/logistics.yaml": "name: logistics\ndescription: stock\nlead: stock\nmembers: [stock, picker]\nexposes: [stock]\n",
};

describe("teams", () => {
  it("loads teams and gives agents their delegate and handoff tools", async () => {
    const project = await loadProject(await writeProject(ORG), { env: {} });
    expect(project.teams.get("logistics")).toEqual({
      name: "logistics",
      description: "stock",
      lead: "stock",
      members: ["stock", "picker"],
      exposes: ["stock"],
      file: "teams/logistics.yaml",
    });
    const desk = project.agents.get("desk");
    expect(desk?.fanOut).toBe("fail_fast");
    expect(desk?.tools.map((t) => t.name)).toEqual(["delegate.stock", "delegate.books"]); // books is in no team: open to all
    expect(project.agents.get("front")?.tools.map((t) => t.name)).toEqual(["delegate.stock", "handoff.desk"]);
  });

  it("refuses work with an agent the other team does not expose, and says which team to change", async () => {
    const issues = await issuesOf({ ...ORG, "agents/desk.yaml": agent("desk", "delegates: [picker]\n") });
    expect(issues.map(formatIssue)).toEqual([
      'agents/desk.yaml:4 delegates[0]: desk may not work with "picker": it is in team logistics and not exposed — add it to that team\'s exposes: (teams/logistics.yaml), or put both agents in one team',
    ]);
  });

  it("names each mistake in a team file", async () => {
    const issues = await issuesOf({
      ...ORG,
      "teams/logistics.yaml": "name: logistics\ndescription: stock\nlead: boss\nmembers: [stock, pickr]\nexposes: [stock, front]\n",
    });
    expect(issues.map(formatIssue)).toEqual([
      'teams/logistics.yaml:3 lead: the lead "boss" is not a member of the team — add it to members:',
      'teams/logistics.yaml:4 members.1: unknown agent "pickr" — did you mean "picker"?',
      'teams/logistics.yaml:5 exposes.1: "front" is not a member of logistics — a team can expose only its own members',
    ]);
  });

  it("refuses delegating to oneself and to unknown agents", async () => {
    const issues = await issuesOf({ ...ORG, "agents/books.yaml": agent("books", "delegates: [books, bookz]\n") });
    expect(issues.map(formatIssue)).toEqual([
      'agents/books.yaml:4 delegates[0]: an agent cannot delegate to itself — remove "books"',
      'agents/books.yaml:4 delegates[1]: unknown agent "bookz" — did you mean "books"?',
    ]);
  });
});

describe("connections", () => {
  const settings = (connections: string) => `${MINIMAL_SETTINGS}connections:\n${connections}`;

  it("loads MCP and OpenAPI connections, keeping ${VAR} for connect time, and accepts <connection>.* in agents", async () => {
    const root = await writeProject({
      "outpost.yaml": settings(
        "  helpdesk:\n    mcp: { command: node, args: [server.js], env: { TOKEN: '${HELPDESK_TOKEN}' } }\n    timeout: 5s\n    tools: { reply: { approval: required } }\n" +
          "  crm:\n    mcp: { url: 'https://crm.example.com/mcp', headers: { Authorization: 'Bearer ${CRM}' } }\n" +
          "  billing:\n    openapi: { spec: specs/billing.yaml }\n    auth: { bearer_env: BILLING_TOKEN }\n    include: [getInvoice]\n",
      ),
      "agents/front.yaml": agent("front", "tools: [helpdesk.*, crm.lookup, billing.get_invoice]\n"),
    });
    const project = await loadProject(root, { env: { HELPDESK_TOKEN: "secret" } });
    const helpdesk = project.connections.get("helpdesk");
    expect(helpdesk).toMatchObject({
      kind: "mcp",
      name: "helpdesk",
      timeoutMs: 5000,
      connectTimeoutMs: 10_000,
      tools: { reply: { approval: "required" } },
      transport: { type: "stdio", command: "node", args: ["server.js"], env: { TOKEN: "${HELPDESK_TOKEN}" }, cwd: root },
    });
    expect(JSON.stringify(project)).not.toContain("secret");
    expect(project.connections.get("crm")).toMatchObject({ transport: { type: "http", url: "https://crm.example.com/mcp" } });
    expect(project.connections.get("billing")).toMatchObject({
      kind: "openapi",
      spec: `${root}/specs/billing.yaml`,
      auth: { type: "bearer", tokenEnv: "BILLING_TOKEN" },
      include: ["getInvoice"],
    });
    expect(project.agents.get("front")?.tools.map((t) => t.name)).toEqual(["helpdesk.*", "crm.lookup", "billing.get_invoice"]);
  });

  it("says what is wrong with a connection and with a wildcard that names none", async () => {
    const issues = await issuesOf({
      "outpost.yaml": settings("  helpdesk:\n    mcp: { args: [x] }\n"),
      "agents/front.yaml": agent("front", "tools: [ledger.*]\n"),
    });
    const text = issues.map(formatIssue).join("\n");
    expect(text).toContain("outpost.yaml:");
    expect(text).toContain('outpost.yaml:10 connections.helpdesk.mcp.command: missing required field "command"');
    expect(text).toContain('agents/front.yaml:4 tools[0]: "ledger.*" names no connection');
  });
});
