/**
 * Runs whose tools come from MCP connections: a project in a temp folder declares the misbehaving
 * fixture server (test/fixtures/mcp/fixture-server.ts) under `connections:`, is loaded with
 * `loadProject` and started with `startOutpost` and a scripted model. Real child processes, real
 * HTTP on 127.0.0.1; waiting is done by polling for a state, never by timing.
 *
 *   helpdesk  the fixture; agent `desk` has `helpdesk.*` (every tool of the connection)
 *   inbox     a second fixture process; agent `mail` has `inbox.whoami`
 *   crm       a server that exits at start, every time; agent `sales` has `crm.lookup_customer`
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventView, RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { type ChatMessage, createScriptedClient, type ModelRequest, type ToolSpec } from "../../src/models/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { processAlive } from "../../src/runtime/data-dir-lock.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { createServer, listen } from "../../src/server/index.js";
import { authorizeFetchTo, TEST_ADMIN_KEY } from "../helpers/auth.js";
import { until } from "../helpers/until.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const FIXTURE = path.join(REPO, "test/fixtures/mcp/fixture-server.ts");
const MARKER = randomUUID().slice(0, 8);
const KEY = "outpost/idempotency_key";
const CRM_FAILURE = "crm: cannot open its database (/var/lib/crm/crm.db is locked)";

function writeProject(): string {
  const root = mkdtempSync(path.join(tmpdir(), "outpost-mcp-runs-"));
  const fixture = (name: string) =>
    `    mcp: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(["--import", "tsx", FIXTURE, `--marker=${MARKER}-${name}`])}, cwd: ${JSON.stringify(REPO)} }`;
  const files: Record<string, string> = {
    "outpost.yaml": [
      "version: 1",
      "workspace: mcp-runs",
      "models:",
      "  offline:",
      "    - provider: scripted",
      "defaults:",
      "  model: offline",
      "  limits: { max_steps: 10, max_tokens: 100000, max_usd: 1, max_wall_time: 2m, max_model_errors: 1 }",
      "connections:",
      "  helpdesk:",
      fixture("helpdesk"),
      "    timeout: 30s",
      // Generous: on a busy 2-core CI machine, starting node with tsx can take a while.
      "    connect_timeout: 90s",
      "  inbox:",
      fixture("inbox"),
      "    connect_timeout: 90s",
      "  crm:",
      `    mcp: { command: ${JSON.stringify(process.execPath)}, args: ["-e", ${JSON.stringify(`console.error(${JSON.stringify(CRM_FAILURE)}); process.exit(3)`)}] }`,
      "    connect_timeout: 10s",
      "",
    ].join("\n"),
    "agents/desk.yaml": "name: desk\ndescription: Works on tickets.\ninstructions: Use the helpdesk.\ntools: [helpdesk.*]\n",
    "agents/mail.yaml": "name: mail\ndescription: Reads the inbox.\ninstructions: Use the inbox.\ntools: [inbox.whoami]\n",
    "agents/sales.yaml": "name: sales\ndescription: Looks customers up.\ninstructions: Use the CRM.\ntools: [crm.lookup_customer]\n",
  };
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

const toolMessages = (messages: ChatMessage[]) => messages.filter((m) => m.role === "tool");

/** What every agent's model was offered, per request. */
const offered: { agent: string; tools: ToolSpec[] }[] = [];

/**
 * One scripted model for all agents. A run's input says what to do: "call <tool> <json arguments>".
 * The model calls it once, then answers "result: <what the tool returned>" (errors included).
 */
const model = createScriptedClient("offline", (req: ModelRequest) => {
  offered.push({ agent: req.agent, tools: req.tools });
  const input = req.messages.find((m) => m.role === "user")?.content ?? "";
  const results = toolMessages(req.messages);
  if (results.length > 0) return `result: ${readsData(results.at(-1)?.content ?? "")}`;
  const m = /^call (\S+)(?: (.*))?$/.exec(input);
  if (!m) return `I was asked: ${input}`;
  return { toolCalls: [{ name: m[1], arguments: m[2] ?? "{}" }] };
});

let root: string;
let dataDir: string;
let outpost: Outpost;
let server: FastifyInstance;
let url: string;

beforeAll(async () => {
  root = writeProject();
  dataDir = mkdtempSync(path.join(tmpdir(), "outpost-mcp-runs-data-"));
  const project = await loadProject(root);
  outpost = await startOutpost({
    project,
    dataDir,
    modelFor: () => model,
    pollMs: 50,
    env: { ...process.env, OUTPOST_ADMIN_KEY: TEST_ADMIN_KEY },
  });
  server = await createServer(outpost, { version: "test" });
  url = await listen(server, { host: "127.0.0.1", port: 0 });
  authorizeFetchTo(url);
  await until(
    "helpdesk and inbox to be connected",
    () => connection("helpdesk")?.state === "ready" && connection("inbox")?.state === "ready",
  );
}, 240_000);

afterAll(async () => {
  await server?.close(); // closes the Outpost, and with it the MCP servers
  for (const dir of [root, dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

async function finished(id: string): Promise<RunView> {
  return until(`run ${id} to end`, async () => {
    const run = await outpost.getRun(id);
    return isTerminal(run.status) ? run : null;
  });
}

async function play(agent: string, input: string): Promise<{ run: RunView; events: EventView[] }> {
  const started = await outpost.startRun({ agent, input });
  const run = await finished(started.id);
  return { run, events: await outpost.getEvents(run.id) };
}

const eventOf = (events: EventView[], type: string) => {
  const e = events.find((x) => x.type === type);
  if (!e) throw new Error(`no ${type} event in ${events.map((x) => x.type).join(", ")}`);
  return e;
};

const connection = (name: string) => outpost.connections().find((c) => c.name === name);

async function whoami(agent: "desk" | "mail", tool: string): Promise<number> {
  const { run } = await play(agent, `call ${tool}`);
  expect(run.status).toBe("completed");
  return (JSON.parse(String(run.output).replace(/^result: /, "")) as { pid: number }).pid;
}

describe("an agent whose tools come from an MCP connection", { timeout: 180_000 }, () => {
  it("is offered every tool of the connection for `helpdesk.*`, with the server's descriptions and schemas", async () => {
    expect(connection("helpdesk")).toMatchObject({ kind: "mcp", state: "ready", tools: 11 });
    await play("desk", "hello");
    const desk = offered.find((o) => o.agent === "desk");
    expect(desk).toBeDefined();
    const names = desk?.tools.map((t) => t.name) ?? [];
    // Normalized names; "get-ticket" (collides with get_ticket) and "42" (no letters) are left out.
    expect([...names].sort()).toEqual(
      [
        "artifacts.read",
        "helpdesk.add_tool",
        "helpdesk.apply_once",
        "helpdesk.echo_meta",
        "helpdesk.exit_mid_call",
        "helpdesk.fail",
        "helpdesk.get_ticket",
        "helpdesk.hang",
        "helpdesk.http_status",
        "helpdesk.media",
        "helpdesk.structured",
        "helpdesk.whoami",
      ].sort(),
    );
    const spec = (name: string) => desk?.tools.find((t) => t.name === name);
    expect(spec("helpdesk.echo_meta")?.description).toBe("Echoes its arguments and the request's _meta.");
    expect(spec("helpdesk.get_ticket")?.inputSchema).toMatchObject({
      type: "object",
      properties: { id: { type: "integer" } },
      required: ["id"],
    });
    expect(spec("helpdesk.http_status")?.description).toBe("HTTP status"); // its title, for want of a description

    // `inbox.whoami` names one tool: only that one (and artifacts.read) is offered.
    await play("mail", "hello");
    expect(offered.find((o) => o.agent === "mail")?.tools.map((t) => t.name)).toEqual(["inbox.whoami", "artifacts.read"]);
  });

  it("calls a tool; the server receives the idempotency key the run committed in tool.called, in _meta", async () => {
    const { run, events } = await play("desk", 'call helpdesk.echo_meta {"text":"printer on fire"}');
    expect(run.status).toBe("completed");
    const called = eventOf(events, "tool.called");
    expect(called.data).toMatchObject({ tool: "helpdesk.echo_meta", arguments: { text: "printer on fire" } });
    const key = called.data.idempotency_key;
    expect(typeof key).toBe("string");
    expect(String(key).length).toBeGreaterThan(8);

    const completed = eventOf(events, "tool.completed");
    expect(completed.data).toMatchObject({ tool: "helpdesk.echo_meta", is_error: false, call_id: called.data.call_id });
    const received = JSON.parse(String(completed.data.output)) as { args: unknown; meta: Record<string, unknown> };
    expect(received.args).toEqual({ text: "printer on fire" });
    expect(received.meta[KEY]).toBe(key);
    expect(run.output).toBe(`result: ${completed.data.output}`);

    // Another call has another key.
    const again = await play("desk", 'call helpdesk.echo_meta {"text":"again"}');
    expect(eventOf(again.events, "tool.called").data.idempotency_key).not.toBe(key);
  });

  it("a tool error from the server reaches the model as an error result, and the run completes", async () => {
    const { run, events } = await play("desk", "call helpdesk.fail");
    expect(run.status).toBe("completed");
    expect(eventOf(events, "tool.completed").data).toMatchObject({
      is_error: true,
      output: "error: helpdesk.fail failed: ticket 42 is locked by another agent",
    });
    expect(run.output).toBe("result: error: helpdesk.fail failed: ticket 42 is locked by another agent");
  });

  it("the server killed (-9) mid-call: the model sees a clear error, the run completes, other runs go on, and a later run's call works after the reconnect", async () => {
    const inboxPid = await whoami("mail", "inbox.whoami");
    const firstPid = await whoami("desk", "helpdesk.whoami");
    expect(processAlive(firstPid)).toBe(true);

    const hanging = await outpost.startRun({ agent: "desk", input: "call helpdesk.hang" });
    await until("the hang call to be in flight", async () =>
      (await outpost.getEvents(hanging.id)).some((e) => e.type === "tool.called" && e.data.tool === "helpdesk.hang"),
    );
    // Another run on another connection, started while the call hangs.
    const beside = await outpost.startRun({ agent: "mail", input: "call inbox.whoami" });

    process.kill(firstPid, "SIGKILL");

    const run = await finished(hanging.id);
    expect(run.status).toBe("completed");
    const events = await outpost.getEvents(run.id);
    const completed = eventOf(events, "tool.completed");
    expect(completed.data.is_error).toBe(true);
    expect(completed.data.tool).toBe("helpdesk.hang");
    expect(String(completed.data.output)).toMatch(
      /^error: helpdesk\.hang failed: helpdesk(: the MCP server was killed by SIGKILL during the call; Outpost is reconnecting| is unavailable: the MCP server was killed by SIGKILL; reconnecting.*)$/,
    );
    expect(run.output).toBe(`result: ${completed.data.output}`); // the model saw it, and answered
    expect(events.at(-1)?.type).toBe("run.completed");

    // The other connection never noticed.
    const other = await finished(beside.id);
    expect(other.status).toBe("completed");
    expect(JSON.parse(String(other.output).replace(/^result: /, ""))).toMatchObject({ pid: inboxPid });
    expect(await whoami("mail", "inbox.whoami")).toBe(inboxPid);
    expect(connection("inbox")?.state).toBe("ready");

    // helpdesk comes back by itself (a new process); a later run's call succeeds.
    await until("helpdesk to reconnect", () => connection("helpdesk")?.state === "ready");
    const secondPid = await whoami("desk", "helpdesk.whoami");
    expect(secondPid).not.toBe(firstPid);
    expect(processAlive(firstPid)).toBe(false);
    expect(connection("helpdesk")).toMatchObject({ state: "ready", tools: 11 });
  });

  it("the server exiting mid-call (exit_mid_call): the run completes with the exit code in the error, and the next call works", async () => {
    await until("helpdesk to be ready", () => connection("helpdesk")?.state === "ready");
    const before = await whoami("desk", "helpdesk.whoami");
    const { run, events } = await play("desk", 'call helpdesk.exit_mid_call {"code":7}');
    expect(run.status).toBe("completed");
    const completed = eventOf(events, "tool.completed");
    expect(completed.data).toMatchObject({
      tool: "helpdesk.exit_mid_call",
      is_error: true,
      output: "error: helpdesk.exit_mid_call failed: helpdesk: the MCP server exited (code 7) during the call; Outpost is reconnecting",
    });
    expect(run.output).toBe(`result: ${completed.data.output}`);

    await until("helpdesk to reconnect", () => connection("helpdesk")?.state === "ready");
    const after = await whoami("desk", "helpdesk.whoami");
    expect(after).not.toBe(before);
  });
});

describe("a write whose answer is lost", { timeout: 180_000 }, () => {
  it("is retried with the same key once its server is back, applied once, and the model sees the result — not a failure", async () => {
    await until("helpdesk to be ready", () => connection("helpdesk")?.state === "ready");
    const { run, events } = await play("desk", 'call helpdesk.apply_once {"note":"refund 42"}');
    expect(run.status).toBe("completed");
    const called = events.filter((e) => e.type === "tool.called");
    expect(called).toHaveLength(1);
    const completed = eventOf(events, "tool.completed");
    expect(completed.data).toMatchObject({ tool: "helpdesk.apply_once", is_error: false, output: "already applied: refund 42" });
    const applied = readFileSync(path.join(dataDir, "applied.jsonl"), "utf8").trim().split("\n");
    expect(applied.map((l) => JSON.parse(l))).toEqual([{ key: called[0].data.idempotency_key, note: "refund 42" }]);
  });
});

describe("a connection whose server never starts", { timeout: 180_000 }, () => {
  const crmDown = {
    name: "crm",
    kind: "mcp",
    state: "down",
    tools: 0,
    error: `the MCP server exited (code 3) while starting: ${CRM_FAILURE}`,
  };

  it("shows as down, with the server's own words, in outpost.connections() and GET /v1/connections", async () => {
    // Between retries it is briefly "connecting" again: wait for a "down" reading.
    const down = await until("crm to read down", () => {
      const c = connection("crm");
      return c?.state === "down" ? c : null;
    });
    expect(down).toEqual(crmDown);
    expect(connection("helpdesk")?.state).not.toBe("down");

    const listed = await until("GET /v1/connections to show crm down", async () => {
      const res = await fetch(`${url}/v1/connections`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { name: string; state: string }[];
      return body.find((c) => c.name === "crm")?.state === "down" ? body : null;
    });
    expect(listed.find((c) => c.name === "crm")).toEqual(crmDown);
    expect(listed.map((c) => c.name).sort()).toEqual(["crm", "helpdesk", "inbox"]);
    expect(listed.find((c) => c.name === "inbox")).toMatchObject({ kind: "mcp", state: "ready", tools: 11 });
  });

  it("an agent calling its tool gets an error result at once (no hang), and the run completes", async () => {
    const { run, events } = await play("sales", 'call crm.lookup_customer {"email":"ada@example.com"}');
    expect(run.status).toBe("completed");
    // The server never listed its tools: the model was offered none.
    expect(offered.filter((o) => o.agent === "sales").every((o) => o.tools.length === 0)).toBe(true);
    const completed = eventOf(events, "tool.completed");
    expect(completed.data.is_error).toBe(true);
    expect(completed.data.tool).toBe("crm.lookup_customer");
    // The server never listed the tool, yet the answer says why it cannot be called — not "unknown tool".
    expect(String(completed.data.output)).toMatch(
      /^error: crm\.lookup_customer failed: crm is unavailable: .*; Outpost keeps reconnecting/,
    );
    expect(run.output).toBe(`result: ${completed.data.output}`);
  });
});
