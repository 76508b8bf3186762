/**
 * The HTTP API against the real runtime on the Acme example (scripted model,
 * SQLite in a temp folder), over real HTTP on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSse } from "../../src/client/sse.js";
import type { ApprovalView, EventView, RunView } from "../../src/core/api.js";
import { http, type Stack, startStack, terminal, waitForRun, waiting } from "./helpers.js";

let stack: Stack;
let url: string;
const getRun = async (id: string) => (await http<RunView>(url, "GET", `/v1/runs/${id}`)).body;
const start = async (input: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
  const res = await http<RunView>(url, "POST", "/v1/runs", { body: { agent: "support", input, ...extra }, headers });
  expect(res.status).toBe(201);
  return res.body;
};

beforeAll(async () => {
  stack = await startStack();
  url = stack.url;
});
afterAll(async () => {
  await stack?.close();
});

/** Reads an SSE response to its end (or until `stop` says so), calling `onEvent` per message. */
async function readStream(
  pathname: string,
  options: {
    headers?: Record<string, string>;
    onEvent?: (m: { event: string; data: any; id?: string }) => Promise<void> | void;
    stop?: (m: { event: string }) => boolean;
  } = {},
) {
  const controller = new AbortController();
  const res = await fetch(`${url}${pathname}`, { headers: options.headers, signal: controller.signal });
  const messages: { event: string; data: any; id?: string }[] = [];
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  for await (const m of parseSse(res.body!)) {
    const msg = { event: m.event, data: JSON.parse(m.data), ...(m.id !== undefined ? { id: m.id } : {}) };
    messages.push(msg);
    await options.onEvent?.(msg);
    if (options.stop?.(msg)) break;
  }
  controller.abort();
  return messages;
}

describe("system and agents", () => {
  it("GET /v1/health answers ok with version and store, and a request id header", async () => {
    const res = await http(url, "GET", "/v1/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", version: expect.any(String), store: "sqlite" });
    expect(res.headers.get("request-id")).toBeTruthy();
  });

  it("GET /v1/agents lists support with its tools and the refund's approval", async () => {
    const res = await http(url, "GET", "/v1/agents");
    expect(res.status).toBe(200);
    const support = res.body.find((a: { name: string }) => a.name === "support");
    expect(support).toBeDefined();
    const tools = Object.fromEntries(support.tools.map((t: { name: string; approval: string }) => [t.name, t.approval]));
    expect(tools).toMatchObject({ "orders.lookup": "none", "tickets.add_note": "none", "orders.refund": "required" });
    expect(support.limits.max_steps).toBe(12);
  });

  it("GET /v1/agents/{name} returns one agent; an unknown one is a 404 naming the known agents", async () => {
    const ok = await http(url, "GET", "/v1/agents/support");
    expect(ok.status).toBe(200);
    expect(ok.body.name).toBe("support");
    expect(ok.body.instructions).toContain("customer-service");
    const missing = await http(url, "GET", "/v1/agents/nobody");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    expect(missing.body.error.message).toContain("nobody");
    expect(missing.body.error.hint).toContain("support");
  });
});

describe("runs", () => {
  it("POST /v1/runs starts a run that completes with the scripted answer", async () => {
    const run = await start("Where is order 1042?");
    expect(run).toMatchObject({ agent: "support", workspace: "acme", input: "Where is order 1042?", output: null });
    expect(run.id).toMatch(/\S/);
    expect(["queued", "running"]).toContain(run.status);
    const done = await waitForRun(getRun, run.id, terminal);
    expect(done.status).toBe("completed");
    expect(done.output).toBe("Order 1042 is shipped.");
    expect(done.completed_at).not.toBeNull();
    expect(done.usage.input_tokens).toBeGreaterThan(0);
  });

  it("an Idempotency-Key returns the same run (201 both times); another key starts another run", async () => {
    const key = `key-${Date.now()}-${Math.random()}`;
    const a = await start("Where is order 1043?", {}, { "idempotency-key": key });
    const b = await start("Where is order 1043?", {}, { "idempotency-key": key });
    expect(b.id).toBe(a.id);
    expect(b.session_id).toBe(a.session_id);
    const c = await start("Where is order 1043?", {}, { "idempotency-key": `${key}-other` });
    expect(c.id).not.toBe(a.id);
    const mine = (await http(url, "GET", `/v1/runs?session_id=${a.session_id}`)).body;
    expect(mine.items.map((r: RunView) => r.id)).toEqual([a.id]);
  });

  it("session_id continues a session; GET /v1/sessions/{id} has both turns", async () => {
    const first = await start("Where is order 1041?");
    await waitForRun(getRun, first.id, terminal);
    const second = await start("Where is order 1044?", { session_id: first.session_id });
    expect(second.session_id).toBe(first.session_id);
    await waitForRun(getRun, second.id, terminal);
    const res = await http(url, "GET", `/v1/sessions/${first.session_id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: first.session_id, agent: "support", workspace: "acme" });
    expect(res.body.messages.map((m: { role: string; content: string }) => [m.role, m.content])).toEqual([
      ["user", "Where is order 1041?"],
      ["assistant", "Order 1041 is processing."],
      ["user", "Where is order 1044?"],
      ["assistant", "Order 1044 is lost."],
    ]);
  });

  it("GET /v1/runs filters by agent, status and session, and pages with limit + cursor", async () => {
    const runs = [await start("Where is order 1042?"), await start("Where is order 1043?"), await start("Where is order 1044?")];
    for (const r of runs) await waitForRun(getRun, r.id, terminal);

    const all = await http(url, "GET", "/v1/runs?agent=support&status=completed&limit=200");
    expect(all.status).toBe(200);
    for (const r of runs) expect(all.body.items.map((x: RunView) => x.id)).toContain(r.id);
    expect(all.body.items.every((x: RunView) => x.status === "completed" && x.agent === "support")).toBe(true);

    const none = await http(url, "GET", "/v1/runs?status=waiting&agent=nobody");
    expect(none.body).toEqual({ items: [], next_cursor: null });

    // Walk the whole list one by one: every run exactly once, in the same order as one big page.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: RunView[]; next_cursor: string | null } } = await http(
        url,
        "GET",
        `/v1/runs?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      );
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.items.map((r) => r.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    const big = await http(url, "GET", "/v1/runs?limit=200");
    expect(seen).toEqual(big.body.items.map((r: RunView) => r.id));
  });

  it("GET /v1/runs/{id}/events returns the log in full, and ?after= only what follows", async () => {
    const run = await start("Please add a note to ticket 77: customer called back");
    await waitForRun(getRun, run.id, terminal);
    const res = await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`);
    expect(res.status).toBe(200);
    const events = res.body;
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events[0]).toMatchObject({ run_id: run.id, type: "run.started", data: { agent: "support" } });
    expect(events.at(-1)?.type).toBe("run.completed");
    // Free-form data survives serialization: nested objects and arrays.
    const called = events.find((e) => e.type === "tool.called");
    expect(called?.data).toMatchObject({ tool: "tickets.add_note", arguments: { ticket_id: "77", note: "customer called back" } });
    const responded = events.find((e) => e.type === "model.responded");
    expect(responded?.data.tool_calls).toEqual([expect.objectContaining({ name: "tickets.add_note" })]);
    expect(responded?.data.usage).toEqual({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });

    const after = await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events?after=2`);
    expect(after.body).toEqual(events.slice(2));
    const none = await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events?after=${events.length}`);
    expect(none.body).toEqual([]);
  });
});

describe("event stream (SSE)", () => {
  it("streams a finished run's log with id/event/data lines and ends with `end`", async () => {
    const run = await start("Where is order 1045?");
    await waitForRun(getRun, run.id, terminal);
    const log = (await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`)).body;
    const res = await fetch(`${url}/v1/runs/${run.id}/stream`);
    const text = await res.text();
    expect(text).toContain(`id: 1\nevent: run.started\ndata: ${JSON.stringify(log[0])}\n\n`);
    expect(text.trimEnd().endsWith(`event: end\ndata: {"run_id":"${run.id}","status":"completed"}`)).toBe(true);
  });

  it("follows a run live: waits at the approval, continues after it, ends when terminal", async () => {
    const run = await start("Please refund order 1043");
    let approved: ApprovalView | undefined;
    const messages = await readStream(`/v1/runs/${run.id}/stream`, {
      onEvent: async (m) => {
        if (m.event === "run.waiting") {
          const res = await http<ApprovalView>(url, "POST", `/v1/approvals/${m.data.data.for.approval_id}`, {
            body: { decision: "approve", reason: "ok", by: "ops@acme" },
          });
          expect(res.status).toBe(200);
          approved = res.body;
        }
      },
    });
    expect(approved?.status).toBe("approved");
    const events = messages.filter((m) => m.event !== "end");
    const end = messages.at(-1);
    expect(end).toEqual({ event: "end", data: { run_id: run.id, status: "completed" } });
    // Exactly the committed log, in order, each with its seq as id.
    const log = (await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`)).body;
    const committed = events.filter((m) => m.data.seq > 0);
    expect(committed.map((m) => m.data)).toEqual(log);
    expect(committed.map((m) => m.id)).toEqual(log.map((e) => String(e.seq)));
    expect(committed.map((m) => m.event)).toEqual(log.map((e) => e.type));
    expect(log.map((e) => e.type)).toEqual(
      expect.arrayContaining(["approval.requested", "run.waiting", "approval.decided", "run.completed"]),
    );
    const final = await getRun(run.id);
    expect(final.output).toContain("for order 1043 has been issued");
  });

  it("resumes after Last-Event-ID, or after ?after=", async () => {
    const run = await start("Where is order 1042?");
    await waitForRun(getRun, run.id, terminal);
    const log = (await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`)).body;
    const viaHeader = await readStream(`/v1/runs/${run.id}/stream`, { headers: { "last-event-id": "3" } });
    expect(viaHeader.filter((m) => m.event !== "end").map((m) => m.data)).toEqual(log.slice(3));
    const viaQuery = await readStream(`/v1/runs/${run.id}/stream?after=${log.length - 1}`);
    expect(viaQuery.map((m) => m.event)).toEqual([log.at(-1)?.type, "end"]);
  });

  it("a client that disconnects from a waiting run's stream is let go (no listener left behind)", async () => {
    const run = await start("Please refund order 1044");
    await waitForRun(getRun, run.id, waiting);
    const received = await readStream(`/v1/runs/${run.id}/stream`, { stop: (m) => m.event === "run.waiting" });
    expect(received.at(-1)?.event).toBe("run.waiting");
    // The runtime keeps one listener set per streamed run; the server must release it.
    const listeners = (stack.outpost as unknown as { listeners: Map<string, unknown> }).listeners;
    expect(listeners).toBeInstanceOf(Map);
    const deadline = Date.now() + 5000;
    while (listeners.has(run.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(listeners.has(run.id)).toBe(false);
    const health = await http(url, "GET", "/v1/health");
    expect(health.status).toBe(200);
  });
});

describe("approvals", () => {
  it("approve: the pending approval carries the tool call; approving completes the refund exactly once", async () => {
    const run = await start("Please refund order 1042");
    const waitingRun = await waitForRun(getRun, run.id, waiting);
    expect(waitingRun.waiting_for).toEqual({ kind: "approval", approval_id: expect.any(String), expires_at: expect.any(String) });
    const approvalId = (waitingRun.waiting_for as { approval_id: string }).approval_id;

    const pending = await http<ApprovalView[]>(url, "GET", "/v1/approvals?status=pending");
    expect(pending.status).toBe(200);
    const mine = pending.body.find((a) => a.id === approvalId);
    expect(mine).toMatchObject({
      run_id: run.id,
      agent: "support",
      tool: "orders.refund",
      status: "pending",
      arguments: { order_id: "1042", reason: "customer request" },
      decided_at: null,
    });

    const decided = await http<ApprovalView>(url, "POST", `/v1/approvals/${approvalId}`, {
      body: { decision: "approve", by: "maria@acme" },
    });
    expect(decided.status).toBe(200);
    // The decider is whoever the key says, never what the body claims.
    expect(decided.body).toMatchObject({ id: approvalId, status: "approved", decided_by: expect.stringMatching(/^key:key_/) });
    expect(decided.body.decided_at).not.toBeNull();

    const done = await waitForRun(getRun, run.id, terminal);
    expect(done.status).toBe("completed");
    expect(done.output).toMatch(/^Refund \S+ of 168 USD for order 1042 has been issued\.$/);

    const again = await http(url, "POST", `/v1/approvals/${approvalId}`, { body: { decision: "deny" } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("conflict");
    expect(again.body.error.hint).toBeTruthy();

    const stillPending = (await http<ApprovalView[]>(url, "GET", "/v1/approvals?status=pending")).body;
    expect(stillPending.some((a) => a.id === approvalId)).toBe(false);
    const approved = (await http<ApprovalView[]>(url, "GET", "/v1/approvals?status=approved")).body;
    expect(approved.some((a) => a.id === approvalId)).toBe(true);
    const all = (await http<ApprovalView[]>(url, "GET", "/v1/approvals")).body;
    expect(all.some((a) => a.id === approvalId)).toBe(true);
  });

  it("deny: the run fails with approval_denied and the refund tool never ran", async () => {
    const run = await start("Please refund order 1044");
    const w = await waitForRun(getRun, run.id, waiting);
    const approvalId = (w.waiting_for as { approval_id: string }).approval_id;
    const res = await http<ApprovalView>(url, "POST", `/v1/approvals/${approvalId}`, {
      body: { decision: "deny", reason: "lost orders are reshipped, not refunded" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "denied", reason: "lost orders are reshipped, not refunded" });
    const done = await waitForRun(getRun, run.id, terminal);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("approval_denied");
    const events = (await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`)).body;
    expect(events.some((e) => e.type === "tool.called" && e.data.tool === "orders.refund")).toBe(false);
  });

  it("unknown approval id → 404 with a hint", async () => {
    const res = await http(url, "POST", "/v1/approvals/apr_nope", { body: { decision: "approve" } });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: "not_found", hint: expect.stringContaining("/v1/approvals") });
  });
});

describe("cancel and external events", () => {
  it("POST /v1/runs/{id}/cancel cancels a waiting run with the reason; the approval cannot be used after", async () => {
    const run = await start("Please refund order 1043");
    const w = await waitForRun(getRun, run.id, waiting);
    const res = await http<RunView>(url, "POST", `/v1/runs/${run.id}/cancel`, { body: { reason: "customer changed their mind" } });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("cancelled");
    expect(res.body.error).toEqual({ code: "cancelled", message: "customer changed their mind" });
    const approve = await http(url, "POST", `/v1/approvals/${(w.waiting_for as { approval_id: string }).approval_id}`, {
      body: { decision: "approve" },
    });
    expect(approve.status).toBe(409);
    const events = (await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`)).body;
    expect(events.at(-1)).toMatchObject({ type: "run.cancelled", data: { reason: "customer changed their mind" } });
  });

  it("cancel without a body works; cancelling an unknown run is a 404 with a hint", async () => {
    const run = await start("Please refund order 1042");
    await waitForRun(getRun, run.id, waiting);
    const res = await fetch(`${url}/v1/runs/${run.id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RunView).status).toBe("cancelled");
    const missing = await http(url, "POST", "/v1/runs/run_nope/cancel", { body: {} });
    expect(missing.status).toBe(404);
    expect(missing.body.error.hint).toBeTruthy();
  });

  it("POST /v1/runs/{id}/events records the event with its payload on an active run", async () => {
    const run = await start("Please refund order 1044");
    await waitForRun(getRun, run.id, waiting);
    const payload = { ticket: 77, tags: ["vip", { nested: true }] };
    const res = await http<RunView>(url, "POST", `/v1/runs/${run.id}/events`, { body: { name: "customer.replied", payload } });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(run.id);
    const events = (await http<EventView[]>(url, "GET", `/v1/runs/${run.id}/events`)).body;
    expect(events).toContainEqual(expect.objectContaining({ type: "event.received", data: { name: "customer.replied", payload } }));
    await http(url, "POST", `/v1/runs/${run.id}/cancel`, { body: {} });
  });

  it("an event to a finished run is a 409; to an unknown run a 404", async () => {
    const run = await start("Where is order 1042?");
    await waitForRun(getRun, run.id, terminal);
    const done = await http(url, "POST", `/v1/runs/${run.id}/events`, { body: { name: "x" } });
    expect(done.status).toBe(409);
    expect(done.body.error.code).toBe("conflict");
    const missing = await http(url, "POST", "/v1/runs/run_nope/events", { body: { name: "x" } });
    expect(missing.status).toBe(404);
    expect(missing.body.error.hint).toBeTruthy();
  });
});

describe("OpenAPI and docs", () => {
  it("GET /openapi.json is OpenAPI 3.1 with every route and its schemas", async () => {
    const res = await http(url, "GET", "/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/v1/health",
        "/v1/agents",
        "/v1/agents/{name}",
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/runs/{id}/events",
        "/v1/runs/{id}/stream",
        "/v1/runs/{id}/cancel",
        "/v1/approvals",
        "/v1/approvals/{id}",
        "/v1/sessions/{id}",
        "/v1/runs/{id}/tree",
        "/v1/artifacts/{id}",
        "/v1/connections",
        "/v1/models",
        "/v1/models/{id}",
        "/v1/chat/completions",
        "/mcp",
        "/v1/workspaces",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/memory",
        "/v1/knowledge",
        "/v1/memory/erase",
        "/v1/memory/search",
        "/v1/memory/{id}",
        "/v1/secrets",
        "/v1/secrets/{name}",
        "/v1/audit",
        "/v1/audit/verify",
        "/v1/reports",
        "/v1/context",
        "/v1/context/{type}/{id}",
        "/v1/triggers",
        "/v1/triggers/{id}/firings",
        "/v1/workflows",
        "/v1/workflows/{name}/runs",
        "/v1/hooks/{name}",
        "/v1/costs",
        "/metrics",
      ].sort(),
    );
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(["Run", "Event", "Approval", "Session", "Agent", "Error", "Health"]),
    );
    const post = doc.paths["/v1/runs"].post;
    expect(post.requestBody.content["application/json"].schema.required).toEqual(["input"]);
    expect(post.responses["201"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Run" });
    expect(post.parameters.some((p: { in: string; name: string }) => p.in === "header" && p.name === "idempotency-key")).toBe(true);
    const list = doc.paths["/v1/runs"].get;
    expect(list.parameters.map((p: { name: string }) => p.name).sort()).toEqual(["agent", "cursor", "limit", "session_id", "status"]);
    expect(doc.paths["/v1/runs/{id}/events"].post.requestBody.content["application/json"].schema.required).toEqual(["name"]);
    expect(doc.paths["/v1/runs/{id}"].get.responses["404"]).toBeDefined();
  });

  it("serves the interactive docs at /docs", async () => {
    const res = await fetch(`${url}/docs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Swagger UI");
  });
});
