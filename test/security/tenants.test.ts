/**
 * Tenant isolation over every endpoint. Two workspaces (acme, the project's; globex, created through the API),
 * each with an admin key. Every route the server has must have a case here (the list comes from the server
 * itself, so a new route without a case fails); each case has globex's admin reach for acme's run, session,
 * approval, artifact, tree, stream, events, key… and expects 404 or nothing of acme's in the answer.
 */

import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { ADMIN_HEADERS } from "../helpers/auth.js";
import { http, SHOP, type Stack, startStack, waitForRun } from "../server/helpers.js";

let stack: Stack;
let globex: { authorization: string };
const acme = { runId: "", sessionId: "", approvalId: "", artifactId: "art_acme_secret", keyId: "", waitingRunId: "", memoryId: "" };
/** Acme's remembered fact: globex may write one with the same scope, subject and key, and never touch acme's. */
const acmeMemory = { scope: "team/finance", subject: "customer:1042", key: "credit_limit" };
const acmeDocument = { name: "limits.md", scope: "team/finance", text: "# Limits\n\nacme's confidential output: the credit limits." };

/** Every `METHOD /path` the server routes, from Fastify's own route tree. */
function serverRoutes(server: FastifyInstance): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of server.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^(.*?)(?:├── |└── )(.+?) \(([^)]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 4;
    stack.length = depth;
    const full = (stack[depth - 1] ?? "") + m[2];
    stack[depth] = full;
    for (const method of m[3].split(", ")) if (method !== "HEAD") routes.push(`${method} ${full}`);
  }
  return routes;
}

beforeAll(async () => {
  // The shop, with a schedule and a webhook of acme's: triggers another workspace must not see.
  const project = await loadProject(SHOP);
  const support = project.agents.get("support");
  if (!support) throw new Error("no support agent");
  support.schedules = [{ name: "digest", cron: "0 7 * * *", timezone: "UTC", input: "Digest.", missed: "skip" }];
  support.webhooks = [{ name: "acme-orders", deliveryHeader: "x-outpost-delivery" }];
  stack = await startStack({ project });
  const created = await http(stack.url, "POST", "/v1/workspaces", { body: { id: "globex" } });
  expect(created.status).toBe(201);
  const key = await http(stack.url, "POST", "/v1/keys", { body: { name: "globex-admin", roles: ["admin"], workspace: "globex" } });
  expect(key.status).toBe(201);
  expect(key.body.workspace).toBe("globex");
  globex = { authorization: `Bearer ${key.body.key}` };

  const getRun = async (id: string) => (await http(stack.url, "GET", `/v1/runs/${id}`)).body;
  const run = await http(stack.url, "POST", "/v1/runs", { body: { agent: "support", input: "Where is order 1042?" } });
  acme.runId = run.body.id;
  acme.sessionId = run.body.session_id;
  await waitForRun(getRun, acme.runId, (r) => ["completed", "failed"].includes(r.status));
  const waiting = await http(stack.url, "POST", "/v1/runs", { body: { agent: "support", input: "Please refund order 1043" } });
  acme.waitingRunId = waiting.body.id;
  await waitForRun(getRun, acme.waitingRunId, (r) => r.status !== "queued" && r.status !== "running");
  // A pending approval of acme's: the one the refund asks for, or (where policy stops the refund first) one written
  // as the store writes them, so the approval routes are always tried on a real one.
  let approvals = (await http(stack.url, "GET", "/v1/approvals?status=pending")).body;
  if (approvals.length === 0) {
    await stack.outpost.store.domain.write((trx) =>
      trx
        .insertInto("approvals")
        .values({
          id: "apr_acme_pending",
          workspace: "acme",
          run_id: acme.waitingRunId,
          call_id: "call_refund",
          agent: "support",
          tool: "orders.refund",
          arguments: JSON.stringify({ order_id: "1043" }),
          status: "pending",
          reason: null,
          decided_by: null,
          created_at: Date.now(),
          decided_at: null,
          call_key: null,
          action_hash: null,
          expires_at: null,
          requested_by: null,
          approver_role: null,
          approver_group: null,
          policies: null,
          used_at: null,
        })
        .execute(),
    );
    approvals = (await http(stack.url, "GET", "/v1/approvals?status=pending")).body;
  }
  acme.approvalId = approvals[0]?.id ?? "apr_none";
  await stack.outpost.store.putArtifact({
    id: acme.artifactId,
    workspace: "acme",
    runId: acme.runId,
    rootRunId: acme.runId,
    callId: "call_1",
    tool: "orders.lookup",
    content: "acme's confidential output",
    size: 26,
    createdAt: Date.now(),
  });
  acme.keyId = (await http(stack.url, "GET", "/v1/keys")).body[0].id;
  const remembered = await http(stack.url, "POST", "/v1/memory", {
    body: { ...acmeMemory, text: "acme's confidential output: credit limit 5000" },
  });
  expect(remembered.status, remembered.text).toBe(201);
  acme.memoryId = remembered.body.id;
  const ingested = await http(stack.url, "POST", "/v1/knowledge", { body: acmeDocument });
  expect(ingested.status, ingested.text).toBe(201);
  // A customer an acme agent looked up (context.lookup), as the cache keeps it.
  await stack.outpost.context.cache.put("acme", {
    type: "customer",
    id: "C-ACME",
    subject: "customer:C-ACME",
    data: { note: "acme's confidential output" },
    classification: "restricted",
    source: { tool: "helpdesk.get_customer", run_id: acme.runId, agent: "support" },
    fetchedAt: Date.now(),
  });
  expect((await http(stack.url, "GET", "/v1/context/customer/C-ACME")).status).toBe(200);
});
afterAll(async () => {
  await stack?.close();
});

type Expect = "404" | "empty" | "own" | "forbidden";
interface Case {
  path: () => string;
  body?: () => unknown;
  /** 404: acme's thing does not exist for globex; empty: a listing without acme's things; own: globex's own view
   * (must not mention acme's ids); forbidden: only the default workspace's admins may (403). */
  expect: Expect;
}

const cases: Record<string, Case> = {
  "GET /v1/health": { path: () => "/v1/health", expect: "own" },
  "GET /openapi.json": { path: () => "/openapi.json", expect: "own" },
  "GET /docs": { path: () => "/docs", expect: "own" },
  "GET /docs/static/index.html": { path: () => "/docs/static/index.html", expect: "own" },
  "GET /docs/static/swagger-initializer.js": { path: () => "/docs/static/swagger-initializer.js", expect: "own" },
  "GET /docs*": { path: () => "/docs/static/index.css", expect: "own" },
  "GET /docs/json": { path: () => "/docs/json", expect: "own" },
  "GET /docs/yaml": { path: () => "/docs/yaml", expect: "own" },
  "GET /v1/agents": { path: () => "/v1/agents", expect: "own" },
  "GET /v1/agents/:name": { path: () => "/v1/agents/support", expect: "own" },
  "GET /v1/connections": { path: () => "/v1/connections", expect: "own" },
  "GET /v1/approvals": { path: () => "/v1/approvals", expect: "empty" },
  "POST /v1/approvals/:id": { path: () => `/v1/approvals/${acme.approvalId}`, body: () => ({ decision: "approve" }), expect: "404" },
  "GET /v1/artifacts/:id": { path: () => `/v1/artifacts/${acme.artifactId}`, expect: "404" },
  "POST /v1/runs": {
    path: () => "/v1/runs",
    body: () => ({ input: "continue that", session_id: acme.sessionId }),
    expect: "404",
  },
  "GET /v1/runs": { path: () => "/v1/runs", expect: "empty" },
  // Before globex has runs of its own (the cases run in this order): none of acme's spend, by any grouping or filter.
  // Metrics are labelled by workspace; globex's scrape holds none of acme's series (checked below).
  "GET /metrics": { path: () => "/metrics", expect: "own" },
  "GET /v1/costs": { path: () => "/v1/costs?group_by=agent,team,model,purpose&period=day&agent=support", expect: "empty" },
  "GET /v1/runs/:id": { path: () => `/v1/runs/${acme.runId}`, expect: "404" },
  "GET /v1/runs/:id/events": { path: () => `/v1/runs/${acme.runId}/events`, expect: "404" },
  "POST /v1/runs/:id/events": { path: () => `/v1/runs/${acme.waitingRunId}/events`, body: () => ({ name: "x" }), expect: "404" },
  "GET /v1/runs/:id/stream": { path: () => `/v1/runs/${acme.runId}/stream`, expect: "404" },
  "POST /v1/runs/:id/cancel": { path: () => `/v1/runs/${acme.waitingRunId}/cancel`, body: () => ({}), expect: "404" },
  "GET /v1/runs/:id/tree": { path: () => `/v1/runs/${acme.runId}/tree`, expect: "404" },
  "GET /v1/sessions/:id": { path: () => `/v1/sessions/${acme.sessionId}`, expect: "404" },
  "POST /v1/chat/completions": {
    path: () => "/v1/chat/completions",
    body: () => ({ model: "support", messages: [{ role: "user", content: "hi" }] }),
    expect: "own", // a run of globex's own
  },
  "POST /v1/workspaces": { path: () => "/v1/workspaces", body: () => ({ id: "initech" }), expect: "forbidden" },
  "POST /v1/keys": { path: () => "/v1/keys?", body: () => ({ name: "x", roles: ["admin"], workspace: "acme" }), expect: "404" },
  "GET /v1/keys": { path: () => "/v1/keys?workspace=acme", expect: "404" },
  "DELETE /v1/keys/:id": { path: () => `/v1/keys/${acme.keyId}`, expect: "404" },
  // Parts present when the runtime wires them (audit, budgets, vault): each answers for the caller's workspace only.
  "GET /v1/audit": { path: () => "/v1/audit", expect: "own" },
  "GET /v1/audit/verify": { path: () => "/v1/audit/verify", expect: "own" },
  "GET /v1/reports": { path: () => "/v1/reports", expect: "own" },
  "GET /v1/budgets": { path: () => "/v1/budgets", expect: "own" },
  "GET /v1/memory": { path: () => "/v1/memory", expect: "empty" },
  "GET /v1/memory/search": { path: () => "/v1/memory/search?q=confidential&scope=team/finance&mode=fts", expect: "empty" },
  "GET /v1/memory/:id": { path: () => `/v1/memory/${acme.memoryId}`, expect: "404" },
  "POST /v1/memory": { path: () => "/v1/memory", body: () => ({ ...acmeMemory, text: "globex's own limit" }), expect: "own" },
  "PATCH /v1/memory/:id": { path: () => `/v1/memory/${acme.memoryId}`, body: () => ({ text: "globex was here" }), expect: "404" },
  "DELETE /v1/memory/:id": { path: () => `/v1/memory/${acme.memoryId}`, expect: "404" },
  "POST /v1/memory/erase": { path: () => "/v1/memory/erase", body: () => ({ subject: acmeMemory.subject }), expect: "own" },
  // Removing first: globex's own limits.md (written next) would otherwise be what it removes.
  "DELETE /v1/knowledge": { path: () => "/v1/knowledge?scope=team/finance&name=limits.md", expect: "404" },
  "GET /v1/knowledge": { path: () => "/v1/knowledge?scope=team/finance", expect: "empty" },
  "POST /v1/knowledge": {
    path: () => "/v1/knowledge",
    body: () => ({ ...acmeDocument, text: "# Limits\n\nglobex's own." }),
    expect: "own",
  },
  "GET /v1/context": { path: () => "/v1/context", expect: "empty" },
  "GET /v1/context/:type/:id": { path: () => "/v1/context/customer/C-ACME", expect: "404" },
  "GET /v1/triggers": { path: () => "/v1/triggers", expect: "empty" },
  "GET /v1/triggers/:id/firings": { path: () => "/v1/triggers/webhook:acme-orders/firings", expect: "404" },
  "POST /v1/hooks/:name": { path: () => "/v1/hooks/acme-orders", body: () => ({ order: 1 }), expect: "404" },
  // Definitions are the project's; a run a workflow starts is the caller's workspace's.
  "GET /v1/workflows": { path: () => "/v1/workflows", expect: "own" },
  "POST /v1/workflows/:name/runs": { path: () => "/v1/workflows/no-such-flow/runs", body: () => ({ input: {} }), expect: "404" },
  "GET /v1/secrets": { path: () => "/v1/secrets", expect: "own" },
  "PUT /v1/secrets/:name": { path: () => "/v1/secrets/acme_token", body: () => ({ value: "globex-value" }), expect: "own" },
  "DELETE /v1/secrets/:name": { path: () => "/v1/secrets/acme_token", expect: "own" },
  "GET /v1/models": { path: () => "/v1/models", expect: "own" },
  "GET /v1/models/:id": { path: () => "/v1/models/support", expect: "own" },
  "POST /mcp": {
    path: () => "/mcp",
    body: () => ({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "ask_support", arguments: { message: "hi", session_id: acme.sessionId } },
    }),
    expect: "own",
  },
  "GET /mcp": { path: () => "/mcp", expect: "own" },
  "DELETE /mcp": { path: () => "/mcp", expect: "own" },
  "POST /a2a/:agent": {
    path: () => "/a2a/support",
    body: () => JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tasks/get", params: { id: acme.runId } }),
    expect: "own",
  },
  "GET /a2a/:agent/.well-known/agent-card.json": { path: () => "/a2a/support/.well-known/agent-card.json", expect: "own" },
  "GET /a2a/:agent/.well-known/agent.json": { path: () => "/a2a/support/.well-known/agent.json", expect: "own" },
};

describe("tenant isolation", () => {
  it("every route of the server has an isolation case", () => {
    const missing = serverRoutes(stack.server).filter((r) => !(r in cases));
    expect(missing).toEqual([]);
  });

  it("acme's things exist for acme's admin", async () => {
    expect((await http(stack.url, "GET", `/v1/runs/${acme.runId}`)).status).toBe(200);
    expect((await http(stack.url, "GET", `/v1/sessions/${acme.sessionId}`)).status).toBe(200);
    expect((await http(stack.url, "GET", `/v1/artifacts/${acme.artifactId}`)).status).toBe(200);
    expect((await http(stack.url, "GET", `/v1/runs/${acme.runId}/tree`)).status).toBe(200);
    expect(acme.approvalId).not.toBe("apr_none"); // the refund waits for a person's approval
    const costs = (await http(stack.url, "GET", "/v1/costs?group_by=agent")).body;
    expect(costs.items.map((i: { agent: string }) => i.agent)).toEqual(["support"]);
    expect(costs.totals.runs).toBeGreaterThanOrEqual(2);
    expect((await http(stack.url, "GET", "/metrics")).text).toContain('outpost_workspace="acme"');
  });

  for (const [route, c] of Object.entries(cases)) {
    it(`${route}: globex's admin sees nothing of acme's (${c.expect})`, async () => {
      const [method] = route.split(" ") as [string];
      const body = c.body?.();
      const isA2A = route.startsWith("POST /a2a");
      const res = await http(stack.url, method, c.path(), {
        headers: {
          ...globex,
          ...(route === "POST /mcp" ? { accept: "application/json, text/event-stream" } : {}),
          ...(isA2A ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body } : {}),
      });
      expect(res.status, res.text).not.toBe(401);
      if (c.expect !== "forbidden") expect(res.status, res.text).not.toBe(403);
      for (const id of [acme.runId, acme.sessionId, acme.approvalId, acme.artifactId, acme.keyId, acme.waitingRunId, acme.memoryId]) {
        if (c.path().includes(id) || JSON.stringify(body ?? "").includes(id)) continue;
        expect(res.text, `${route} shows ${id}`).not.toContain(id);
      }
      expect(res.text).not.toContain("acme's confidential output");
      if (c.expect === "404") expect(res.status, res.text).toBe(404);
      if (c.expect === "empty") {
        expect(res.status).toBe(200);
        expect(res.body.items ?? res.body.documents ?? res.body.entities ?? res.body.triggers ?? res.body).toEqual([]);
      }
      if (c.expect === "forbidden") expect(res.status).toBe(403);
      if (route === "GET /metrics") expect(res.text).not.toContain('outpost_workspace="acme"');
      if (route === "POST /mcp" || isA2A) expect(res.text).not.toMatch(/"status":\s*"completed"|Order 104/);
    });
  }

  it("after all that, acme's runs, approval and keys are untouched", async () => {
    const waiting = (await http(stack.url, "GET", `/v1/runs/${acme.waitingRunId}`)).body;
    expect(waiting.status).not.toBe("cancelled");
    const events = (await http(stack.url, "GET", `/v1/runs/${acme.waitingRunId}/events`)).body as { type: string }[];
    expect(events.map((e) => e.type)).not.toContain("event.received");
    const pending = (await http(stack.url, "GET", "/v1/approvals?status=pending")).body as { id: string }[];
    expect(pending.map((a) => a.id)).toContain(acme.approvalId);
    const keys = (await http(stack.url, "GET", "/v1/keys")).body as { id: string; revoked_at: string | null; workspace: string }[];
    expect(keys.every((k) => k.workspace === "acme" && k.revoked_at === null)).toBe(true);
    const memory = (await http(stack.url, "GET", `/v1/memory/${acme.memoryId}`)).body;
    expect(memory).toMatchObject({ text: "acme's confidential output: credit limit 5000", version: 1, history: [] });
    const [doc] = (await http(stack.url, "GET", "/v1/knowledge?scope=team/finance")).body.documents;
    expect(doc).toMatchObject({ name: "limits.md", chunks: 1 });
    const chunk = (await http(stack.url, "GET", "/v1/memory?kind=knowledge")).body.items[0];
    expect(chunk).toMatchObject({ text: "Limits\nacme's confidential output: the credit limits.", version: 1 });
    expect((await http(stack.url, "GET", "/v1/runs", { headers: ADMIN_HEADERS })).body.items.length).toBeGreaterThanOrEqual(2);
    const globexRuns = (await http(stack.url, "GET", "/v1/runs", { headers: globex })).body.items as { workspace: string }[];
    expect(globexRuns.every((r) => r.workspace === "globex")).toBe(true);
  });
});
