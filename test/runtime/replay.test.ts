/**
 * `outpost replay`'s core (runtime/replay.ts): a run recorded on a real SQLite store, re-driven against the same
 * project and against changed ones. No tool may run during a replay; where the new version parts from the recorded
 * run, the report says at which step and how.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { RunEvent } from "../../src/core/events.js";
import { loadProject } from "../../src/definitions/index.js";
import type { McpConnection, Project, ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient, type ModelRequest, type ScriptReply } from "../../src/models/index.js";
import { replayRun } from "../../src/runtime/replay.js";
import { until } from "../helpers/until.js";
import { finish, newDataDir, outposts, project, start } from "./fixtures.js";

afterAll(async () => {
  for (const o of outposts.splice(0)) await o.close();
});

/** Tools that count their calls: a replay must leave every count where the recording left it. */
const calls = { lookup: 0, refund: 0, credit: 0 };
const tools: ToolDefinition[] = [
  {
    name: "orders.lookup",
    description: "look up an order",
    input: z.object({ order_id: z.string() }),
    sideEffects: false,
    handler: ({ input }) => {
      calls.lookup++;
      return { id: input.order_id, status: "delivered", total: 120 };
    },
  },
  {
    name: "ledger.refund",
    description: "refund an order",
    input: z.object({ order_id: z.string(), amount: z.number() }),
    handler: ({ input }) => {
      calls.refund++;
      return { refund_id: "R-77", amount: input.amount };
    },
  },
  {
    name: "ledger.credit",
    description: "give a goodwill credit",
    input: z.object({ order_id: z.string(), amount: z.number() }),
    handler: () => {
      calls.credit++;
      return { credit_id: "C-1" };
    },
  },
];

/** The model: looks the order up, then refunds it — or, when its instructions say so, gives a credit instead. */
function brain(request: ModelRequest): ScriptReply {
  const system = request.messages[0]?.content ?? "";
  const turns = request.messages.filter((m) => m.role === "assistant").length;
  if (turns === 0) return { toolCalls: [{ name: "orders.lookup", arguments: { order_id: "1042" } }] };
  if (turns === 1) {
    return /goodwill credit instead/i.test(system)
      ? { toolCalls: [{ name: "ledger.credit", arguments: { order_id: "1042", amount: 20 } }] }
      : { toolCalls: [{ name: "ledger.refund", arguments: { order_id: "1042", amount: 120 } }] };
  }
  const last = [...request.messages].reverse().find((m) => m.role === "tool");
  return /refused|not recorded/.test(last?.content ?? "") ? "I could not do that." : "Refunded order 1042.";
}
const model = createScriptedClient("m", brain);

/** The shop: the refund waits for a person (the agent's own `approval: required`). */
function shop(): Project {
  const p = project(tools);
  const clerk = p.agents.get("clerk");
  if (!clerk) throw new Error("no clerk");
  clerk.instructions = "Look the order up, then refund it.";
  clerk.tools = clerk.tools.map((t) => (t.name === "ledger.refund" ? { ...t, approval: "required" as const } : t));
  return p;
}

function changed(p: Project, change: (p: Project) => void): Project {
  const copy: Project = { ...p, agents: new Map([...p.agents].map(([k, a]) => [k, { ...a }])) };
  change(copy);
  return copy;
}

/** One recorded run on a real store: looked up, refund approved by fiona, refunded. */
const recording = (async () => {
  const p = shop();
  const o = await start(p, model);
  const run = await o.startRun({ agent: "clerk", input: "refund order 1042" });
  const waiting = await until("the refund to wait for its approval", async () => {
    const r = await o.getRun(run.id);
    return r.status === "waiting" ? r : null;
  });
  expect(waiting.waiting_for?.kind).toBe("approval");
  const [approval] = await o.listApprovals({ status: "pending" });
  await o.decideApproval(approval.id, { decision: "approve", by: "fiona" });
  const done = await finish(o, run.id);
  expect(done.status).toBe("completed");
  const events: RunEvent[] = await o.store.getEvents(run.id);
  return { project: p, runId: run.id, events, counts: { ...calls } };
})();

describe("replayRun", () => {
  it("replays a run against the same project: identical, the approval's decision fed from the recording, no tool called", async () => {
    const r = await recording;
    expect(r.counts).toEqual({ lookup: 1, refund: 1, credit: 0 });
    const report = await replayRun({ recorded: r.events, runId: r.runId, project: r.project, modelFor: () => model });
    expect(report.summary).toMatch(/^identical \(\d+ steps\)$/);
    expect(report.identical).toBe(true);
    expect(report.divergedAt).toBeNull();
    expect(report.replay).toMatchObject({ status: "completed", output: "Refunded order 1042." });
    expect(report.rows.every((row) => row.status === "same")).toBe(true);
    // Every step a run takes is there: the model turns, the policy decisions, the approval, the tool results, the end.
    expect(report.rows.map((row) => row.recorded?.kind)).toEqual([
      "policy", // model.use
      "model",
      "policy",
      "tool",
      "policy", // model.use again: the run now holds internal data
      "model",
      "policy",
      "approval",
      "tool",
      "model",
      "end",
    ]);
    expect(report.rows.find((row) => row.recorded?.kind === "approval")?.replay).toMatchObject({ decision: "approve", by: "fiona" });
    expect(report.matches.map((m) => [m.kind, m.tool, m.match])).toEqual([
      ["tool", "orders.lookup", "exact"],
      ["approval", "ledger.refund", "exact"],
      ["tool", "ledger.refund", "exact"],
    ]);
    expect(calls).toEqual(r.counts); // nothing ran
  });

  it("replay divergence on a changed instruction: the first differing model turn, recorded vs new calls, and the new call not run", async () => {
    const r = await recording;
    const next = changed(r.project, (p) => {
      const clerk = p.agents.get("clerk");
      if (clerk) clerk.instructions = "Look the order up, then offer a goodwill credit instead of a refund.";
    });
    const report = await replayRun({ recorded: r.events, runId: r.runId, project: next, modelFor: () => model });
    expect(report.identical).toBe(false);
    const first = report.rows[(report.divergedAt as number) - 1];
    // Everything up to the second model turn is as recorded; there the new version calls another tool.
    expect(report.rows.slice(0, (report.divergedAt as number) - 1).every((row) => row.status === "same")).toBe(true);
    expect(report.divergedAt).toBe(6);
    expect(first.status).toBe("changed");
    expect(first.recorded).toMatchObject({ kind: "model", calls: [{ name: "ledger.refund", args: { order_id: "1042", amount: 120 } }] });
    expect(first.replay).toMatchObject({ kind: "model", calls: [{ name: "ledger.credit", args: { order_id: "1042", amount: 20 } }] });
    expect(report.summary).toBe(
      'diverged at step 6: recorded called ledger.refund {"order_id":"1042","amount":120}, replay called ledger.credit {"order_id":"1042","amount":20} (5 later differences)',
    );
    // The credit was never recorded: not executed, answered with an error saying so, and the model reacted to it.
    expect(report.matches).toContainEqual({
      kind: "tool",
      tool: "ledger.credit",
      args: { order_id: "1042", amount: 20 },
      match: "not_recorded",
    });
    const credit = report.rows.find((row) => row.replay?.kind === "tool" && row.replay.tool === "ledger.credit")?.replay;
    expect(credit).toMatchObject({ isError: true, output: expect.stringMatching(/not recorded/) });
    expect(report.replay).toMatchObject({ status: "completed", output: "I could not do that." });
    // The recorded refund and its approval are in the recorded run only.
    expect(report.rows.some((row) => row.status === "recorded_only" && row.recorded?.kind === "approval")).toBe(true);
    expect(calls).toEqual(r.counts);
  });

  it("a changed policy that now denies a recorded call shows as a policy difference", async () => {
    const r = await recording;
    const next = changed(r.project, (p) => {
      p.policies = [
        {
          file: "policies/refunds.cedar",
          text: '@id("shop.no_refunds")\nforbid (principal, action == Action::"tool.call", resource == Tool::"ledger.refund");\n',
        },
      ];
    });
    const report = await replayRun({ recorded: r.events, runId: r.runId, project: next, modelFor: () => model });
    expect(report.identical).toBe(false);
    const first = report.rows[(report.divergedAt as number) - 1];
    expect(first.status).toBe("changed");
    expect(first.recorded).toMatchObject({ kind: "policy", action: "tool.call", resource: 'Tool::"ledger.refund"', decision: "allow" });
    expect(first.replay).toMatchObject({ kind: "policy", action: "tool.call", decision: "deny", policies: ["shop.no_refunds"] });
    expect(report.summary).toMatch(
      /^diverged at step 7: recorded policy allow on tool\.call Tool::"ledger\.refund" \(baseline\.tool_call\), replay policy deny on tool\.call Tool::"ledger\.refund" \(shop\.no_refunds\)/,
    );
    // Refused, so never even asked of the recording; the model is told and answers otherwise.
    expect(report.matches.map((m) => m.tool)).toEqual(["orders.lookup"]);
    expect(report.rows.find((row) => row.replay?.kind === "tool" && row.replay.tool === "ledger.refund")?.replay).toMatchObject({
      isError: true,
      output: expect.stringMatching(/^refused: .*shop\.no_refunds/),
    });
    expect(report.replay.output).toBe("I could not do that.");
    expect(calls).toEqual(r.counts);
  });
  it("an action the new version gates behind an approval is shown, assumed approved, and the rest compared", async () => {
    const r = await recording;
    const next = changed(r.project, (p) => {
      const clerk = p.agents.get("clerk");
      if (clerk) clerk.tools = clerk.tools.map((t) => (t.name === "orders.lookup" ? { ...t, approval: "required" as const } : t));
    });
    const report = await replayRun({ recorded: r.events, runId: r.runId, project: next, modelFor: () => model });
    // The lookup's policy request now says an approval is required, and the replay asks for one (none recorded).
    const differing = report.rows.filter((row) => row.status !== "same");
    expect(differing.map((row) => [row.status, (row.recorded ?? row.replay)?.kind])).toEqual([
      ["changed", "policy"],
      ["replay_only", "approval"],
    ]);
    expect(differing[1].replay).toMatchObject({ kind: "approval", tool: "orders.lookup", decision: "assumed", by: "replay" });
    expect(report.summary).toBe(
      'diverged at step 3: recorded policy allow on tool.call Tool::"orders.lookup" (baseline.tool_call), replay policy allow on tool.call Tool::"orders.lookup" (baseline.tool_call) — its request differs: approval_required false → true (1 later difference)',
    );
    expect(report.matches.map((m) => [m.kind, m.tool, m.match])).toContainEqual(["approval", "orders.lookup", "not_recorded"]);
    expect(report.replay.status).toBe("completed");
    expect(calls).toEqual(r.counts);
  });
});

describe("replayRun with a connection (MCP)", () => {
  it("answers the connection's tools from the recording without starting its system", async () => {
    const REPO = path.resolve(import.meta.dirname, "../..");
    const root = mkdtempSync(path.join(tmpdir(), "outpost-replay-mcp-"));
    const fixture = path.join(REPO, "test/fixtures/mcp/fixture-server.ts");
    const files: Record<string, string> = {
      "outpost.yaml": [
        "version: 1",
        "workspace: replay-mcp",
        "models:",
        "  offline: { provider: scripted }",
        "defaults: { model: offline }",
        "connections:",
        "  helpdesk:",
        `    mcp: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(["--import", "tsx", fixture])}, cwd: ${JSON.stringify(REPO)} }`,
        "    connect_timeout: 90s",
        "",
      ].join("\n"),
      "agents/desk.yaml": "name: desk\ninstructions: Use the helpdesk.\ntools: [helpdesk.*]\n",
    };
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    }
    const p = await loadProject(root);
    const echo = createScriptedClient("offline", (request) => {
      const tool = request.messages.find((m) => m.role === "tool");
      return tool
        ? `echoed: ${!tool.isError && /text\W{0,6}hi/.test(tool.content)}`
        : { toolCalls: [{ name: "helpdesk.echo_meta", arguments: { text: "hi" } }] };
    });
    const o = await start(p, echo, { dataDir: newDataDir() });
    await until("the helpdesk to connect", () => o.connections().find((c) => c.name === "helpdesk" && c.state === "ready"));
    const run = await o.startRun({ agent: "desk", input: "echo hi" });
    expect((await finish(o, run.id, 60_000)).output).toBe("echoed: true");
    const events = await o.store.getEvents(run.id);
    await o.close();
    outposts.splice(outposts.indexOf(o), 1);

    // The same project, but its system would leave a mark if it were ever started.
    const marker = path.join(root, "spawned");
    const helpdesk = p.connections.get("helpdesk") as McpConnection;
    const guarded: Project = {
      ...p,
      connections: new Map([
        [
          "helpdesk",
          {
            ...helpdesk,
            transport: {
              ...helpdesk.transport,
              command: process.execPath,
              args: ["-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`],
            },
          } as McpConnection,
        ],
      ]),
    };
    const report = await replayRun({ recorded: events, runId: run.id, project: guarded, modelFor: () => echo });
    expect(report.summary).toMatch(/^identical/);
    expect(report.matches).toEqual([
      { kind: "tool", tool: "helpdesk.echo_meta", args: { text: "hi" }, match: "exact", recordedCallId: expect.any(String) },
    ]);
    // connector.use and tool.call were decided as recorded: the tool's side_effects came through from the recording.
    expect(report.rows.filter((r) => r.recorded?.kind === "policy").map((r) => (r.recorded as { action: string }).action)).toEqual([
      "model.use",
      "connector.use",
      "tool.call",
      "model.use",
    ]);
    expect(existsSync(marker)).toBe(false);
  }, 120_000);
});
