/**
 * The MCP endpoint, driven by the MCP SDK's own Client over Streamable HTTP against a running
 * Outpost on 127.0.0.1: exposed agents of a scripted-model project appear as `ask_<agent>` tools.
 */
import { rm } from "node:fs/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../../src/core/api.js";
import { http, protocolProject, type Stack, startStack, terminal, waitForRun } from "./helpers.js";

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

async function connect(): Promise<Client> {
  const client = new Client({ name: "outpost-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`)));
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
