/**
 * The MCP endpoint, driven by the MCP SDK's own Client over Streamable HTTP against a running
 * Outpost on 127.0.0.1: exposed agents of a scripted-model project appear as `ask_<agent>` tools.
 */
import { rm } from "node:fs/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../../src/core/api.js";
import { delegationProject, http, protocolProject, type Stack, startStack, terminal, waitForRun } from "./helpers.js";

let stack: Stack;
let root: string;
const clients: Client[] = [];

beforeAll(async () => {
  const p = await protocolProject();
  root = p.root;
  stack = await startStack({ project: p.project });
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
afterAll(async () => {
  // Failed runs are answers, not server faults: nothing is logged as an error.
  expect(stack?.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
  await stack?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function connect(url = stack.url): Promise<Client> {
  const client = new Client({ name: "outpost-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  clients.push(client);
  return client;
}

const getRun = async (id: string) => (await http<RunView>(stack.url, "GET", `/v1/runs/${id}`)).body;
type Structured = { run_id: string; session_id: string; status: string; output: string | null; waiting_for?: Record<string, string> };
const textOf = (result: unknown) =>
  ((result as { content?: { type: string; text?: string }[] }).content ?? [])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("");

describe("MCP endpoint", () => {
  it("identifies itself and lists one tool per exposed agent", async () => {
    const client = await connect();
    expect(client.getServerVersion()).toMatchObject({ name: "outpost", version: "test" });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["ask_broken", "ask_echo_bot", "ask_gatekeeper", "ask_sleeper"]);
    const echo = tools.find((t) => t.name === "ask_echo_bot");
    expect(echo?.description).toBe("Repeats what you say.");
    expect(echo?.inputSchema).toMatchObject({ type: "object", required: ["message"] });
    expect(Object.keys(echo?.inputSchema.properties ?? {}).sort()).toEqual(["message", "session_id"]);
  });

  it("a tool call runs the agent and answers its output, with the run in structuredContent", async () => {
    const client = await connect();
    const result = await client.callTool({ name: "ask_echo_bot", arguments: { message: "hello from MCP" } });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe("You said: hello from MCP");
    const s = result.structuredContent as Structured;
    expect(s).toMatchObject({ status: "completed", output: "You said: hello from MCP" });
    const run = await getRun(s.run_id);
    expect(run).toMatchObject({ agent: "echo-bot", status: "completed", input: "hello from MCP", session_id: s.session_id });

    // The session id continues the conversation.
    const again = await client.callTool({ name: "ask_echo_bot", arguments: { message: "and again", session_id: s.session_id } });
    expect((again.structuredContent as Structured).session_id).toBe(s.session_id);
    const session = (await http(stack.url, "GET", `/v1/sessions/${s.session_id}`)).body;
    expect(session.messages).toHaveLength(4);
  });

  it("reports progress to a client that asks for it", async () => {
    const client = await connect();
    const notes: { progress: number; message?: string }[] = [];
    const result = await client.callTool({ name: "ask_echo_bot", arguments: { message: "with progress" } }, undefined, {
      onprogress: (p) => notes.push(p),
    });
    expect(textOf(result)).toBe("You said: with progress");
    expect(notes.length).toBeGreaterThan(0);
    expect(notes.map((n) => n.progress)).toEqual(notes.map((_, i) => i + 1));
  });

  it("a failing agent answers isError with the reason", async () => {
    const client = await connect();
    const result = await client.callTool({ name: "ask_broken", arguments: { message: "anything" } });
    expect(result.isError).toBe(true);
    const s = result.structuredContent as Structured;
    expect(s.status).toBe("failed");
    expect(textOf(result)).toContain(`Agent "broken" failed (run ${s.run_id})`);
    expect((await getRun(s.run_id)).status).toBe("failed");
  });

  it("a run waiting for an approval answers what it waits for, with the ids to act on", async () => {
    const client = await connect();
    const result = await client.callTool({ name: "ask_gatekeeper", arguments: { message: "go" } });
    expect(result.isError).toBeFalsy();
    const s = result.structuredContent as Structured;
    expect(s).toMatchObject({ status: "waiting", output: null, waiting_for: { kind: "approval", tool: "wait.until" } });
    const approvalId = s.waiting_for?.approval_id as string;
    expect(textOf(result)).toContain(approvalId);
    expect(textOf(result)).toContain(s.run_id);
    await http(stack.url, "POST", `/v1/approvals/${approvalId}`, { body: { decision: "approve" } });
    expect((await waitForRun(getRun, s.run_id, terminal)).output).toBe("Waited.");
  });

  it("an agent that is not exposed cannot be called", async () => {
    const client = await connect();
    const result = await client.callTool({ name: "ask_back_office", arguments: { message: "hi" } }).then(
      (r) => r,
      (e: Error) => ({ isError: true, content: [{ type: "text", text: e.message }] }),
    );
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/ask_back_office not found/);
    const runs = (await http<{ items: RunView[] }>(stack.url, "GET", "/v1/runs?agent=back-office")).body.items;
    expect(runs).toEqual([]);
  });

  it("invalid arguments are refused without starting a run", async () => {
    const client = await connect();
    const result = await client.callTool({ name: "ask_echo_bot", arguments: { text: "wrong field" } }).then(
      (r) => r,
      (e: Error) => ({ isError: true, content: [{ type: "text", text: e.message }] }),
    );
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/message/);
  });

  it("an unknown session answers isError naming it", async () => {
    const client = await connect();
    const result = await client.callTool({ name: "ask_echo_bot", arguments: { message: "hi", session_id: "ses_nope" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('session "ses_nope" does not exist');
  });

  it("GET and DELETE /mcp answer 405 with a JSON-RPC error", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await http(stack.url, method, "/mcp");
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect(res.body).toMatchObject({ jsonrpc: "2.0", error: { code: -32000 }, id: null });
    }
  });

  it("a body that is not JSON answers a JSON-RPC parse error", async () => {
    const res = await http(stack.url, "POST", "/mcp", {
      body: "{oops",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ jsonrpc: "2.0", error: { code: -32700 }, id: null });
  });
});

describe("MCP endpoint: runs held up by other runs (delegation, a session's earlier run)", () => {
  let held: Stack;
  let heldRoot: string;

  beforeAll(async () => {
    const p = await delegationProject();
    heldRoot = p.root;
    held = await startStack({ project: p.project });
  });
  afterAll(async () => {
    expect(held?.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
    await held?.close();
    if (heldRoot) await rm(heldRoot, { recursive: true, force: true });
  });

  const run = async (id: string) => (await http<RunView>(held.url, "GET", `/v1/runs/${id}`)).body;
  const runsOf = async (agent: string) =>
    (await http<{ items: RunView[] }>(held.url, "GET", `/v1/runs?agent=${agent}&limit=200`)).body.items;
  const approve = (id: string) => http(held.url, "POST", `/v1/approvals/${id}`, { body: { decision: "approve" } });

  it("a delegated run waiting for an approval answers the waiting text with the ids; approved, asking again answers", async () => {
    const client = await connect(held.url);
    const result = await client.callTool({ name: "ask_desk", arguments: { message: "refund order 1042" } });
    expect(result.isError).toBeFalsy();
    const s = result.structuredContent as Structured;
    expect(s).toMatchObject({ status: "waiting", output: null, waiting_for: { kind: "approval", tool: "wait.until", agent: "clerk" } });
    const clerks = await runsOf("clerk");
    expect(clerks).toHaveLength(1);
    expect(clerks[0]).toMatchObject({ id: s.waiting_for?.run_id, parent_run_id: s.run_id, status: "waiting" });
    const approvalId = s.waiting_for?.approval_id as string;
    for (const id of [approvalId, clerks[0].id, s.run_id]) expect(textOf(result)).toContain(id);
    expect(await runsOf("desk")).toHaveLength(1);

    await approve(approvalId);
    expect(await waitForRun(run, s.run_id, terminal)).toMatchObject({ status: "completed", output: "Desk: Refund issued." });
    // Asked again in the session, with a delegated run that simply works: the final answer.
    const again = await client.callTool({ name: "ask_desk", arguments: { message: "check the stock", session_id: s.session_id } });
    expect(textOf(again)).toBe("Desk: Checked.");
    expect(again.structuredContent).toMatchObject({ status: "completed", session_id: s.session_id });
    expect(await runsOf("desk")).toHaveLength(2);
  });

  it("a grandchild waiting for an approval is named too", async () => {
    const client = await connect(held.url);
    const result = await client.callTool({ name: "ask_front", arguments: { message: "refund order 7" } });
    const s = result.structuredContent as Structured;
    expect(s).toMatchObject({ status: "waiting", waiting_for: { kind: "approval", agent: "clerk" } });
    expect(await run(s.waiting_for?.run_id as string)).toMatchObject({ agent: "clerk", root_run_id: s.run_id, depth: 2 });
    expect(textOf(result)).toContain(s.waiting_for?.approval_id as string);
    await approve(s.waiting_for?.approval_id as string);
    expect(await waitForRun(run, s.run_id, terminal)).toMatchObject({ output: "Front: Desk: Refund issued." });
  });

  it("a follow-up behind a waiting run answers waiting, naming the run it is queued behind (or that run's delegated run)", async () => {
    const client = await connect(held.url);
    const first = (await client.callTool({ name: "ask_gatekeeper", arguments: { message: "go" } })).structuredContent as Structured;
    expect(first).toMatchObject({ status: "waiting", waiting_for: { kind: "approval" } });
    const before = (await runsOf("gatekeeper")).length;
    const result = await client.callTool({ name: "ask_gatekeeper", arguments: { message: "and then?", session_id: first.session_id } });
    const s = result.structuredContent as Structured;
    expect(s.run_id).not.toBe(first.run_id);
    expect(s).toMatchObject({
      session_id: first.session_id,
      status: "queued",
      waiting_for: { kind: "approval", approval_id: first.waiting_for?.approval_id, run_id: first.run_id, queued_behind: first.run_id },
    });
    expect(textOf(result)).toContain(first.run_id);
    expect(textOf(result)).toContain(first.waiting_for?.approval_id as string);
    expect((await runsOf("gatekeeper")).length).toBe(before + 1);
    await approve(first.waiting_for?.approval_id as string);
    expect(await waitForRun(run, s.run_id, terminal)).toMatchObject({ status: "completed", output: "Noted: and then?" });

    // Behind a run whose delegated run waits.
    const refund = (await client.callTool({ name: "ask_desk", arguments: { message: "refund order 9" } })).structuredContent as Structured;
    const next = await client.callTool({ name: "ask_desk", arguments: { message: "check it", session_id: refund.session_id } });
    const n = next.structuredContent as Structured;
    expect(n).toMatchObject({
      status: "queued",
      waiting_for: {
        kind: "approval",
        approval_id: refund.waiting_for?.approval_id,
        agent: "clerk",
        run_id: refund.waiting_for?.run_id,
        queued_behind: refund.run_id,
      },
    });
    expect(textOf(next)).toContain(refund.run_id);
    await approve(refund.waiting_for?.approval_id as string);
    expect(await waitForRun(run, n.run_id, terminal)).toMatchObject({ output: "Desk: Checked." });
  });
});
