/**
 * Telemetry of a running Outpost: a delegation tree's spans reach a real OTLP/HTTP receiver from the executor (the
 * child run nested under the parent's delegating call), the run's log lines carry its ids, and GET /metrics serves
 * the caller's workspace's metrics as Prometheus text to any role — never another workspace's.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { delegateToolName } from "../../src/definitions/index.js";
import type { AgentDefinition, Project, ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { startOutpost } from "../../src/runtime/index.js";
import { runSpanIdOf, traceIdOf } from "../../src/telemetry/spans.js";
import { ADMIN_HEADERS } from "../helpers/auth.js";
import { defaultLimits, finish, newDataDir } from "../runtime/fixtures.js";
import { http, type Stack, startStack, waitForRun } from "../server/helpers.js";
import { collectLogs } from "../server/logs.js";
import { parsePrometheus } from "./prometheus.js";
import { attr, type Receiver, startReceiver } from "./receiver.js";

const lookup: ToolDefinition = {
  name: "lookup",
  description: "Look an order up.",
  input: z.object({ order: z.string() }),
  handler: async ({ input }) => ({ order: input.order, status: "shipped" }),
};
const charge: ToolDefinition = {
  name: "charge",
  description: "Charge a card.",
  input: z.object({ amount: z.number() }),
  handler: async () => {
    throw new Error("the card processor is down");
  },
};

function agent(name: string, tools: string[], delegates: string[] = []): AgentDefinition {
  return {
    name,
    description: `the ${name} agent`,
    instructions: `You are ${name}.`,
    model: "m",
    tools: [...tools.map((t) => ({ name: t })), ...delegates.map((d) => ({ name: delegateToolName(d) }))],
    delegates,
    handoffs: [],
    fanOut: "all",
    limits: defaultLimits,
    file: `agents/${name}.yaml`,
  };
}

function deskProject(): Project {
  const root = mkdtempSync(join(tmpdir(), "outpost-telemetry-"));
  const desk = agent("desk", ["lookup"], ["billing"]);
  const billing = agent("billing", ["charge"]);
  return {
    root,
    workspace: "test",
    models: new Map(),
    agents: new Map([
      ["desk", desk],
      ["billing", billing],
    ]),
    tools: new Map([
      ["lookup", lookup],
      ["charge", charge],
    ]),
    connections: new Map(),
    teams: new Map(),
    defaults: { model: "m", limits: desk.limits },
    scriptsDir: join(root, "scripts"),
  };
}

/** desk: looks the order up and delegates the charge to billing; billing's charge fails, and it says so. */
const model = createScriptedClient("m", (req) => {
  const toolTurns = req.messages.filter((m) => m.role === "tool").length;
  if (req.agent === "billing")
    return toolTurns === 0 ? { toolCalls: [{ name: "charge", arguments: { amount: 12 } }] } : "Could not charge.";
  if (toolTurns === 0) return { toolCalls: [{ name: "lookup", arguments: { order: "42" } }] };
  if (toolTurns === 1) return { toolCalls: [{ name: delegateToolName("billing"), arguments: { task: "charge 12 for order 42" } }] };
  return "Order 42 shipped; the charge failed.";
});

describe("telemetry of a running Outpost", () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());

  it("exports the tree's spans over OTLP from the executor, and its log lines name the run and the trace", async () => {
    const logs = collectLogs();
    const o = await startOutpost({
      project: deskProject(),
      dataDir: newDataDir(),
      modelFor: () => model,
      logger: logs.logger,
      telemetry: { endpoint: receiver.url },
      env: {},
    });
    const started = await o.startRun({ agent: "desk", input: "Where is order 42? Charge 12." });
    expect((await finish(o, started.id)).status).toBe("completed");
    const [child] = (await o.getRunTree(started.id)).children.map((c) => c.run);
    await o.close(); // sends what is buffered

    const spans = receiver.spans().filter((s) => s.traceId === traceIdOf(started.id));
    const byName = (name: string) => spans.filter((s) => s.name === name);
    const [root] = byName("invoke_agent desk");
    expect(root.spanId).toBe(runSpanIdOf(started.id));
    expect(root.parentSpanId ?? "").toBe("");
    expect(attr(root, "gen_ai.operation.name")).toBe("invoke_agent");
    expect(attr(root, "outpost.run.status")).toBe("completed");
    expect(byName("chat m").length).toBe(5); // desk's three turns and billing's two
    const [delegation] = byName(`execute_tool ${delegateToolName("billing")}`);
    expect(delegation.parentSpanId).toBe(root.spanId);
    expect(attr(delegation, "outpost.child_run.id")).toBe(child.id);
    const [childRun] = byName("invoke_agent billing");
    expect(childRun.parentSpanId).toBe(delegation.spanId); // the child nests under the call that delegated it
    const [failed] = byName("execute_tool charge");
    expect(failed.parentSpanId).toBe(childRun.spanId);
    expect(failed.status?.code).toBe(2); // ERROR
    expect(attr(byName("execute_tool lookup")[0], "gen_ai.tool.call.id")).toBeTruthy();

    const failure = logs.lines.find((l) => l.msg === "tool call failed");
    expect(failure).toMatchObject({ run_id: child.id, trace_id: traceIdOf(started.id), span_id: runSpanIdOf(child.id), tool: "charge" });
  });

  it("exports nothing, and opens no connection, when no endpoint is configured", async () => {
    const before = receiver.bodies.length;
    const o = await startOutpost({ project: deskProject(), dataDir: newDataDir(), modelFor: () => model, env: {} });
    expect(o.telemetry.endpoint).toBeNull();
    const started = await o.startRun({ agent: "desk", input: "Where is order 42?" });
    expect((await finish(o, started.id)).status).toBe("completed");
    await o.close();
    expect(receiver.bodies.length).toBe(before);
  });
});

describe("GET /metrics", () => {
  let stack: Stack;
  let runId: string;
  beforeAll(async () => {
    stack = await startStack();
    const run = await http(stack.url, "POST", "/v1/runs", { body: { agent: "support", input: "Where is order 1042?" } });
    runId = run.body.id;
    const getRun = async (id: string) => (await http(stack.url, "GET", `/v1/runs/${id}`)).body;
    await waitForRun(getRun, runId, (r) => r.status === "completed");
    // A refund waits for a person: the active-runs gauge counts it.
    const waiting = await http(stack.url, "POST", "/v1/runs", { body: { agent: "support", input: "Please refund order 1043" } });
    await waitForRun(getRun, waiting.body.id, (r) => r.status === "waiting");
  });
  afterAll(() => stack?.close());

  it("serves the workspace's metrics as Prometheus text: runs, steps, tokens, cost, latency histograms, active runs", async () => {
    const res = await fetch(`${stack.url}/metrics`, { headers: ADMIN_HEADERS });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = parsePrometheus(await res.text());
    const sample = (family: string, labels: Record<string, string>) =>
      families.get(family)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));

    expect(families.get("outpost_runs_finished_total")?.type).toBe("counter");
    expect(sample("outpost_runs_finished_total", { outpost_workspace: "acme", outpost_run_status: "completed" })?.value).toBe(1);
    expect(sample("outpost_steps_total", { gen_ai_agent_name: "support" })?.value).toBeGreaterThanOrEqual(1);
    expect(sample("outpost_tokens_total", { gen_ai_token_type: "input" })?.value).toBeGreaterThan(0);
    expect(families.get("gen_ai_client_operation_duration")?.type).toBe("histogram");
    const count = sample("gen_ai_client_operation_duration_count", { gen_ai_agent_name: "support" });
    expect(count?.value).toBe(sample("outpost_steps_total", { gen_ai_agent_name: "support" })?.value);
    const inf = sample("gen_ai_client_operation_duration_bucket", { gen_ai_agent_name: "support", le: "+Inf" });
    expect(inf?.value).toBe(count?.value);
    expect(families.get("outpost_runs_active")?.type).toBe("gauge");
    expect(sample("outpost_runs_active", { outpost_workspace: "acme", outpost_run_status: "waiting" })?.value).toBe(1);
    expect(families.get("outpost_tool_calls_total")?.samples.length).toBeGreaterThan(0);
  });

  it("needs a key; a viewer may read it", async () => {
    expect((await fetch(`${stack.url}/metrics`, { headers: { authorization: "Bearer opk_not_a_key" } })).status).toBe(401);
    const key = await http(stack.url, "POST", "/v1/keys", { body: { name: "scraper", roles: ["viewer"] } });
    expect(key.status, key.text).toBe(201);
    const res = await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${key.body.key}` } });
    expect(res.status).toBe(200);
    expect(parsePrometheus(await res.text()).has("outpost_runs_finished_total")).toBe(true);
  });
});
