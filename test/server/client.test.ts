/**
 * createClient against the real server + runtime: the same flows as the HTTP
 * tests, through the OutpostApi interface.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import type { EventView, OutpostApi } from "../../src/core/api.js";
import { OutpostError } from "../../src/core/errors.js";
import { type Stack, startStack, terminal, waitForRun, waiting } from "./helpers.js";

let stack: Stack;
let client: OutpostApi;

beforeAll(async () => {
  stack = await startStack();
  client = createClient(`${stack.url}/`); // a trailing slash is fine
});
afterAll(async () => {
  await stack?.close();
});

const collect = async (iterable: AsyncIterable<EventView>) => {
  const out: EventView[] = [];
  for await (const e of iterable) out.push(e);
  return out;
};

async function rejection(p: Promise<unknown>): Promise<OutpostError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    return e as OutpostError;
  }
  throw new Error("expected a rejection");
}

describe("createClient", () => {
  it("health, agents, and a 404 for an unknown agent as OutpostError with the hint", async () => {
    expect(await client.health()).toEqual({ status: "ok", version: expect.any(String), store: "sqlite" });
    const agents = await client.listAgents();
    expect(agents.map((a) => a.name)).toContain("support");
    expect((await client.getAgent("support")).tools.find((t) => t.name === "orders.refund")?.approval).toBe("required");
    const e = await rejection(client.getAgent("sales"));
    expect(e.code).toBe("not_found");
    expect(e.status).toBe(404);
    expect(e.hint).toContain("support");
  });

  it("startRun + streamEvents follows the run to the end; the stream equals the log", async () => {
    const run = await client.startRun({ agent: "support", input: "Where is order 1042?" });
    const streamed = await collect(client.streamEvents(run.id));
    expect(streamed.at(-1)?.type).toBe("run.completed");
    const log = await client.getEvents(run.id);
    expect(streamed.filter((e) => e.seq > 0)).toEqual(log);
    expect(await client.getEvents(run.id, 2)).toEqual(log.slice(2));
    const done = await client.getRun(run.id);
    expect(done.output).toBe("Order 1042 is shipped.");
    // Resuming after a seq yields only what follows.
    expect((await collect(client.streamEvents(run.id, { after: log.length - 2 }))).map((e) => e.seq)).toEqual([log.length - 1, log.length]);
  });

  it("idempotency_key returns the same run", async () => {
    const key = `client-${Math.random()}`;
    const a = await client.startRun({ agent: "support", input: "Where is order 1041?", idempotency_key: key });
    const b = await client.startRun({ agent: "support", input: "Where is order 1041?", idempotency_key: key });
    expect(b.id).toBe(a.id);
  });

  it("approve while streaming: the stream continues past the wait to completion", async () => {
    const run = await client.startRun({ agent: "support", input: "Please refund order 1043" });
    const types: string[] = [];
    for await (const e of client.streamEvents(run.id)) {
      types.push(e.type);
      if (e.type === "run.waiting") {
        const pending = await client.listApprovals({ status: "pending" });
        const approval = pending.find((a) => a.run_id === run.id);
        expect(approval).toMatchObject({ tool: "orders.refund", arguments: { order_id: "1043", reason: "customer request" } });
        const decided = await client.decideApproval(approval!.id, { decision: "approve", reason: "fine", by: "lee@acme" });
        expect(decided).toMatchObject({ status: "approved", reason: "fine", decided_by: expect.stringMatching(/^key:/) });
      }
    }
    expect(types).toEqual(expect.arrayContaining(["run.waiting", "approval.decided", "run.completed"]));
    expect(types.at(-1)).toBe("run.completed");
    expect((await client.getRun(run.id)).output).toContain("for order 1043 has been issued");
  });

  it("deny fails the run; deciding twice is a conflict", async () => {
    const run = await client.startRun({ agent: "support", input: "Please refund order 1044" });
    const w = await waitForRun(client.getRun, run.id, waiting);
    const id = (w.waiting_for as { approval_id: string }).approval_id;
    expect((await client.decideApproval(id, { decision: "deny" })).status).toBe("denied");
    const done = await waitForRun(client.getRun, run.id, terminal);
    expect(done.status).toBe("failed");
    const e = await rejection(client.decideApproval(id, { decision: "approve" }));
    expect(e.code).toBe("conflict");
  });

  it("sendEvent and cancelRun", async () => {
    const run = await client.startRun({ agent: "support", input: "Please refund order 1042" });
    await waitForRun(client.getRun, run.id, waiting);
    const after = await client.sendEvent(run.id, { name: "customer.replied", payload: { text: "any news?" } });
    expect(after.id).toBe(run.id);
    const events = await client.getEvents(run.id);
    expect(events.at(-1)).toMatchObject({ type: "event.received", data: { name: "customer.replied", payload: { text: "any news?" } } });
    const cancelled = await client.cancelRun(run.id, "duplicate request");
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.error?.message).toBe("duplicate request");
    // A stream of a cancelled run ends by itself.
    expect((await collect(client.streamEvents(run.id))).at(-1)?.type).toBe("run.cancelled");
    expect((await rejection(client.sendEvent(run.id, { name: "late" }))).code).toBe("conflict");
  });

  it("listRuns with filters and cursor paging; getSession", async () => {
    const first = await client.startRun({ agent: "support", input: "Where is order 1045?" });
    await waitForRun(client.getRun, first.id, terminal);
    const second = await client.startRun({ agent: "support", input: "Where is order 1043?", session_id: first.session_id });
    await waitForRun(client.getRun, second.id, terminal);
    const page1 = await client.listRuns({ session_id: first.session_id, limit: 1 });
    expect(page1.items.map((r) => r.id)).toEqual([second.id]);
    expect(page1.next_cursor).not.toBeNull();
    const page2 = await client.listRuns({ session_id: first.session_id, limit: 1, cursor: page1.next_cursor! });
    expect(page2).toEqual({ items: [expect.objectContaining({ id: first.id })], next_cursor: null });
    expect((await client.listRuns({ status: "completed", agent: "support" })).items.length).toBeGreaterThanOrEqual(2);
    const session = await client.getSession(first.session_id);
    expect(session.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  it("server-side validation errors arrive as OutpostError(invalid_request) with the field", async () => {
    const e = await rejection(client.startRun({ agent: "", input: "x" }));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toBe("body.agent: must not be empty");
    const limit = await rejection(client.listRuns({ limit: 1000 }));
    expect(limit.message).toBe("query.limit: must be <= 200");
    expect((await rejection(client.getRun("run_nope"))).code).toBe("not_found");
    // Ids with URL-special characters are encoded, never re-routed.
    const odd = await rejection(client.getRun("../agents/support"));
    expect(odd.code).toBe("not_found");
    expect(odd.message).toContain("../agents/support");
  });

  it("an unreachable server is OutpostError(unavailable) naming the URL", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const dead = createClient(`http://127.0.0.1:${port}`);
    const e = await rejection(dead.health());
    expect(e.code).toBe("unavailable");
    expect(e.message).toBe(`cannot reach Outpost at http://127.0.0.1:${port}`);
    expect(e.hint).toContain("outpost up");
    const s = await rejection(collect(dead.streamEvents("run_x")));
    expect(s.code).toBe("unavailable");
  });

  it("sends the API key as a bearer token", async () => {
    const seen: (string | null)[] = [];
    const spy: typeof fetch = (input, init) => {
      seen.push(new Headers(init?.headers).get("authorization"));
      return fetch(input, init);
    };
    await createClient(stack.url, { apiKey: "k-123", fetch: spy }).health();
    expect(seen).toEqual(["Bearer k-123"]);
  });

  it("reconnects with Last-Event-ID when the stream drops before the run is terminal", async () => {
    const run = await client.startRun({ agent: "support", input: "Please refund order 1042" });
    await waitForRun(client.getRun, run.id, waiting);
    const requests: { lastEventId: string | null; url: string }[] = [];
    // The first connection is cut right after its second event; later ones pass through.
    const flaky: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).includes("/stream")) return res;
      requests.push({ lastEventId: new Headers(init?.headers).get("last-event-id"), url: String(input) });
      if (requests.length > 1) return res;
      const reader = res.body!.getReader();
      let text = "";
      const cut = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) return controller.close();
          text += new TextDecoder().decode(value);
          const complete = text.match(/\nid: 2\n[\s\S]*?\n\n/);
          if (complete) {
            controller.enqueue(new TextEncoder().encode(text.slice(0, (complete.index ?? 0) + complete[0].length)));
            await reader.cancel();
            controller.error(new TypeError("terminated")); // what undici raises on a dropped socket
            return;
          }
        },
      });
      return new Response(cut, { status: res.status, headers: res.headers });
    };
    const flakyClient = createClient(stack.url, { fetch: flaky });
    const seqs: number[] = [];
    let approved = false;
    for await (const e of flakyClient.streamEvents(run.id)) {
      if (e.seq > 0) seqs.push(e.seq); // (model.delta events are transient, seq -1)
      if (e.type === "run.waiting" && !approved) {
        approved = true;
        const id = (e.data.for as { approval_id: string }).approval_id;
        await client.decideApproval(id, { decision: "approve" });
      }
    }
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests[0].lastEventId).toBeNull();
    expect(requests[1].lastEventId).toBe("2");
    const log = await client.getEvents(run.id);
    expect(seqs).toEqual(log.map((e) => e.seq)); // every event once, in order, across the reconnect
    expect(log.at(-1)?.type).toBe("run.completed");
  });

  it("aborting the signal ends the iteration quietly and frees the server-side stream", async () => {
    const run = await client.startRun({ agent: "support", input: "Please refund order 1043" });
    await waitForRun(client.getRun, run.id, waiting);
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const e of client.streamEvents(run.id, { signal: controller.signal })) {
      seen.push(e.type);
      if (e.type === "run.waiting") controller.abort();
    }
    expect(seen.at(-1)).toBe("run.waiting");
    const listeners = (stack.outpost as unknown as { listeners: Map<string, unknown> }).listeners;
    const deadline = Date.now() + 5000;
    while (listeners.has(run.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(listeners.has(run.id)).toBe(false);
    await client.cancelRun(run.id);
  });
});

describe("createClient: workflows", () => {
  it("lists workflows and starts one, a retried start with the same key answering the same run", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "outpost-client-wf-"));
    const root = path.join(dir, "shop");
    cpSync(path.resolve(import.meta.dirname, "../fixtures/shop"), root, { recursive: true });
    mkdirSync(path.join(root, "workflows"));
    writeFileSync(
      path.join(root, "workflows", "look.yaml"),
      "name: look\nclearance: confidential\nsteps:\n  - { id: order, tool: orders.lookup, arguments: { order_id: '{{ input.id }}' } }\n",
    );
    const own = await startStack({ project: root });
    try {
      const api = createClient(own.url);
      expect((await api.listWorkflows()).workflows.map((w) => w.name)).toEqual(["look"]);
      const run = await api.startWorkflow("look", { input: { id: "1041" }, idempotency_key: "close-1" });
      expect(run.agent).toBe("workflow:look");
      expect((await api.startWorkflow("look", { input: { id: "1041" }, idempotency_key: "close-1" })).id).toBe(run.id);
      expect((await waitForRun((id) => api.getRun(id), run.id, terminal)).status).toBe("completed");
      const unknown = await rejection(api.startWorkflow("nope"));
      expect(unknown).toMatchObject({ code: "not_found", hint: "known workflows: look" });
    } finally {
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
