/**
 * Agents working together: delegation (child runs the parent waits for), fan-out, handoff, the bounds on
 * them, cancellation down the tree, a restart in the middle, and large outputs kept as artifacts.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { EventView, RunView } from "../../src/core/api.js";
import { delegateToolName, handoffToolName } from "../../src/definitions/index.js";
import type { AgentDefinition, Project, ToolDefinition } from "../../src/definitions/types.js";
import { type ChatMessage, createScriptedClient, type ModelRequest } from "../../src/models/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { until } from "../helpers/until.js";
import { defaultLimits, finish, outposts } from "./fixtures.js";

type Reply = string | { toolCalls: { name: string; arguments: string }[] };
type Brain = (req: ModelRequest, turn: number) => Reply;

function agent(name: string, over: Partial<AgentDefinition> = {}): AgentDefinition {
  const delegates = over.delegates ?? [];
  const handoffs = over.handoffs ?? [];
  return {
    name,
    description: `the ${name} agent`,
    instructions: `You are ${name}.`,
    model: "m",
    tools: [
      ...(over.tools ?? []),
      ...delegates.map((d) => ({ name: delegateToolName(d) })),
      ...handoffs.map((h) => ({ name: handoffToolName(h) })),
      { name: "wait.for_event" },
    ],
    delegates,
    handoffs,
    fanOut: over.fanOut ?? "all",
    limits: { ...defaultLimits, ...(over.limits ?? {}) },
    file: `agents/${name}.yaml`,
  };
}

function teamProject(agents: AgentDefinition[], tools: ToolDefinition[] = []): Project {
  const root = mkdtempSync(join(tmpdir(), "outpost-teams-"));
  return {
    root,
    workspace: "test",
    models: new Map(),
    agents: new Map(agents.map((a) => [a.name, a])),
    tools: new Map(tools.map((t) => [t.name, t])),
    connections: new Map(),
    teams: new Map(),
    defaults: { model: "m", limits: defaultLimits },
    scriptsDir: join(root, "scripts"),
  };
}

/** One scripted model for every agent: each agent's brain answers by its own turn count within a run. */
function brains(by: Record<string, Brain>) {
  const turns = new Map<string, number>();
  return createScriptedClient("m", (req: ModelRequest) => {
    const key = `${req.agent}:${firstUser(req.messages)}`;
    const turn = turns.get(key) ?? 0;
    turns.set(key, turn + 1);
    const brain = by[req.agent];
    if (!brain) throw new Error(`no brain for ${req.agent}`);
    return brain(req, turn);
  });
}

const firstUser = (messages: ChatMessage[]) => messages.find((m) => m.role === "user")?.content ?? "";
const lastTool = (messages: ChatMessage[]) => readsData([...messages].reverse().find((m) => m.role === "tool")?.content ?? "");
const call = (name: string, args: unknown) => ({ toolCalls: [{ name, arguments: JSON.stringify(args) }] });
const calls = (...list: [string, unknown][]) => ({ toolCalls: list.map(([name, args]) => ({ name, arguments: JSON.stringify(args) })) });

async function open(p: Project, model: ReturnType<typeof brains>, dataDir = mkdtempSync(join(tmpdir(), "outpost-teams-data-"))) {
  const o = await startOutpost({ project: p, dataDir, modelFor: () => model, pollMs: 50 });
  outposts.push(o);
  return o;
}

const types = (events: EventView[]) => events.map((e) => e.type);

async function childrenOf(o: Outpost, id: string): Promise<RunView[]> {
  return (await o.getRunTree(id)).children.map((c) => c.run);
}

afterEach(async () => {
  await Promise.all(outposts.splice(0).map((o) => o.close()));
});

describe("delegation", () => {
  it("runs the delegate as a child run the parent waits for, and answers with its result", async () => {
    const p = teamProject([agent("desk", { delegates: ["worker"] }), agent("worker")]);
    const model = brains({
      desk: (req, turn) =>
        turn === 0 ? call("delegate.worker", { task: "count the boxes in bay 4" }) : `desk says: ${lastTool(req.messages)}`,
      worker: (req) => `worker did "${firstUser(req.messages)}"`,
    });
    const o = await open(p, model);
    const started = await o.startRun({ agent: "desk", input: "how many boxes?" });
    const run = await finish(o, started.id);

    expect(run.status).toBe("completed");
    expect(run.output).toBe('desk says: worker did "count the boxes in bay 4"');
    const [child] = await childrenOf(o, run.id);
    expect(child).toMatchObject({ agent: "worker", status: "completed", parent_run_id: run.id, root_run_id: run.id, depth: 1 });
    expect(child.input).toBe("count the boxes in bay 4");
    expect(child.session_id).not.toBe(run.session_id); // its own conversation

    const events = await o.getEvents(run.id);
    expect(types(events)).toEqual(
      expect.arrayContaining(["tool.called", "delegation.started", "run.waiting", "child.finished", "run.resumed", "tool.completed"]),
    );
    const waiting = events.find((e) => e.type === "run.waiting");
    expect(waiting?.data).toEqual({ for: { kind: "children", run_ids: [child.id], mode: "all" } });
    const childStarted = (await o.getEvents(child.id))[0];
    expect(childStarted.data.parent).toMatchObject({ run_id: run.id, root_run_id: run.id, depth: 1, chain: ["desk"] });
  });

  it("fans out: every delegation of one step starts before the parent waits, and it resumes once all have answered", async () => {
    const p = teamProject([agent("lead", { delegates: ["a", "b", "c"] }), agent("a"), agent("b"), agent("c")]);
    const model = brains({
      lead: (req, turn) =>
        turn === 0
          ? calls(["delegate.a", { task: "part a" }], ["delegate.b", { task: "part b" }], ["delegate.c", { task: "part c" }])
          : `all: ${req.messages
              .filter((m) => m.role === "tool")
              .map((m) => readsData(m.content))
              .join(" | ")}`,
      a: () => "A done",
      b: () => "B done",
      c: () => "C done",
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "lead", input: "split it" })).id);
    expect(run.status).toBe("completed");
    expect(run.output).toBe("all: A done | B done | C done");
    const kids = await childrenOf(o, run.id);
    expect(kids.map((k) => [k.agent, k.status])).toEqual([
      ["a", "completed"],
      ["b", "completed"],
      ["c", "completed"],
    ]);
    const events = types(await o.getEvents(run.id));
    expect(events.filter((t) => t === "delegation.started")).toHaveLength(3);
    expect(events.filter((t) => t === "child.finished")).toHaveLength(3);
    // Started all three before waiting: the delegation.started events precede the (single) wait.
    expect(events.lastIndexOf("delegation.started")).toBeLessThan(
      events.indexOf("child.finished") === -1 ? Infinity : events.indexOf("tool.completed"),
    );
    expect(events.filter((t) => t === "model.called")).toHaveLength(2);
  });

  it("under fan_out: fail_fast, a failed child cancels its siblings and the parent continues with the failure", async () => {
    const p = teamProject([agent("lead", { delegates: ["flaky", "slow"], fanOut: "fail_fast" }), agent("flaky"), agent("slow")]);
    const model = brains({
      lead: (_req, turn) =>
        turn === 0 ? calls(["delegate.slow", { task: "wait" }], ["delegate.flaky", { task: "break" }]) : "lead gives up",
      flaky: () => {
        throw new Error("the flaky model broke");
      },
      slow: () => call("wait.for_event", { name: "never" }),
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "lead", input: "try" })).id);
    expect(run.status).toBe("completed");
    const kids = await childrenOf(o, run.id);
    const slow = kids.find((k) => k.agent === "slow") as RunView;
    const flaky = kids.find((k) => k.agent === "flaky") as RunView;
    expect(flaky.status).toBe("failed");
    expect(
      (
        await until(
          "the slow sibling to be cancelled",
          async () => ((await o.getRun(slow.id)).status === "cancelled" ? o.getRun(slow.id) : null),
          10_000,
        )
      ).error?.message,
    ).toMatch(/fail_fast/);
    const results = (await o.getEvents(run.id)).filter((e) => e.type === "tool.completed").map((e) => e.data);
    expect(results).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ tool: "delegate.flaky", is_error: true, output: expect.stringMatching(/flaky did not finish .*failed/) }),
        expect.objectContaining({ tool: "delegate.slow", is_error: true, output: expect.stringMatching(/cancelled because flaky/) }),
      ]),
    );
  });

  it("waits for every child by default, reporting a failed one to the model as an error", async () => {
    const p = teamProject([agent("lead", { delegates: ["ok", "bad"] }), agent("ok"), agent("bad")]);
    const model = brains({
      lead: (_req, turn) => (turn === 0 ? calls(["delegate.bad", { task: "x" }], ["delegate.ok", { task: "y" }]) : "finished anyway"),
      ok: () => "fine",
      bad: () => {
        throw new Error("no");
      },
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "lead", input: "go" })).id);
    expect(run.status).toBe("completed");
    const results = (await o.getEvents(run.id)).filter((e) => e.type === "tool.completed").map((e) => [e.data.tool, e.data.is_error]);
    expect(results).toEqual([
      ["delegate.bad", true],
      ["delegate.ok", false],
    ]);
  });

  it("refuses cycles and delegation beyond max_depth, with the reason, and the run goes on", async () => {
    const p = teamProject([
      agent("a", { delegates: ["b"] }),
      agent("b", { delegates: ["a", "c"] }),
      agent("c", { delegates: ["d"], limits: { ...defaultLimits, maxDepth: 2 } }),
      agent("d"),
    ]);
    const model = brains({
      a: (req, turn) => (turn === 0 ? call("delegate.b", { task: "go on" }) : `a got: ${lastTool(req.messages)}`),
      b: (req, turn) =>
        turn === 0
          ? call("delegate.a", { task: "back to a" })
          : turn === 1
            ? call("delegate.c", { task: "deeper" })
            : `b saw: ${req.messages
                .filter((m) => m.role === "tool")
                .map((m) => readsData(m.content))
                .join(" / ")}`,
      c: (req, turn) => (turn === 0 ? call("delegate.d", { task: "deepest" }) : `c: ${lastTool(req.messages)}`),
      d: () => "d answered",
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "a", input: "start" })).id);
    expect(run.status).toBe("completed");
    expect(run.output).toContain("refused: it would form a cycle (a → b → a)");
    expect(run.output).toContain("refused: it would be 3 levels below the original request (limit max_depth: 2)");
    const tree = await o.getRunTree(run.id);
    expect(tree.children.map((c) => c.run.agent)).toEqual(["b"]);
    expect(tree.children[0].children.map((c) => c.run.agent)).toEqual(["c"]);
    expect(tree.children[0].children[0].children).toEqual([]);
  });

  it("caps delegations per run at max_delegations", async () => {
    const p = teamProject([agent("boss", { delegates: ["w"], limits: { ...defaultLimits, maxDelegations: 2 } }), agent("w")]);
    const model = brains({
      boss: (_req, turn) =>
        turn === 0 ? calls(["delegate.w", { task: "1" }], ["delegate.w", { task: "2" }], ["delegate.w", { task: "3" }]) : "ok",
      w: (req) => `w${firstUser(req.messages)}`,
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "boss", input: "go" })).id);
    const results = (await o.getEvents(run.id)).filter((e) => e.type === "tool.completed").map((e) => e.data.output);
    // The refusal is immediate; the two allowed delegations answer when their runs end.
    expect(results).toHaveLength(3);
    expect(results).toEqual(
      expect.arrayContaining(["w1", "w2", expect.stringMatching(/already started 2 delegations \(limit max_delegations: 2\)/)]),
    );
    expect(await childrenOf(o, run.id)).toHaveLength(2);
  });

  it("cancelling a parent cancels the children it waits for, and theirs", async () => {
    const p = teamProject([agent("top", { delegates: ["mid"] }), agent("mid", { delegates: ["low"] }), agent("low")]);
    const model = brains({
      top: () => call("delegate.mid", { task: "m" }),
      mid: () => call("delegate.low", { task: "l" }),
      low: () => call("wait.for_event", { name: "go" }),
    });
    const o = await open(p, model);
    const top = await o.startRun({ agent: "top", input: "x" });
    const low = await until(
      "the grandchild to wait",
      async () => {
        const tree = await o.getRunTree(top.id);
        const l = tree.children[0]?.children[0]?.run;
        return l && l.status === "waiting" ? l : null;
      },
      10_000,
    );
    await o.cancelRun(top.id, "customer withdrew");
    const tree = await until(
      "the whole tree to be cancelled",
      async () => {
        const t = await o.getRunTree(top.id);
        const all = [t.run, t.children[0].run, t.children[0].children[0].run];
        return all.every((r) => r.status === "cancelled") ? t : null;
      },
      10_000,
    );
    expect(tree.children[0].children[0].run.id).toBe(low.id);
    expect(tree.children[0].children[0].run.error?.message).toMatch(/cancelled/);
  });

  it("a parent and its waiting child survive a restart: the child is woken later and the parent completes", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "outpost-teams-restart-"));
    const p = teamProject([agent("parent", { delegates: ["child"] }), agent("child")]);
    const model = () =>
      brains({
        // By what the conversation holds, not by turn: the restarted process has a fresh model.
        parent: (req) =>
          lastTool(req.messages) ? `parent: ${lastTool(req.messages)}` : call("delegate.child", { task: "wait for the truck" }),
        child: (req) => (lastTool(req.messages) ? `child: ${lastTool(req.messages)}` : call("wait.for_event", { name: "truck" })),
      });
    const first = await open(p, model(), dataDir);
    const parent = await first.startRun({ agent: "parent", input: "ship it" });
    const child = await until(
      "the child to wait",
      async () => {
        const [c] = await childrenOf(first, parent.id);
        return c?.status === "waiting" ? c : null;
      },
      10_000,
    );
    expect((await first.getRun(parent.id)).status).toBe("waiting");
    await first.close();
    outposts.splice(outposts.indexOf(first), 1);

    const second = await open(p, model(), dataDir);
    await second.sendEvent(child.id, { name: "truck", payload: { eta: "14:00" } });
    const done = await finish(second, parent.id);
    expect(done.status).toBe("completed");
    expect(done.output).toBe('parent: child: {"event":"truck","payload":{"eta":"14:00"}}');
  });
});

describe("handoff", () => {
  it("passes the run to another agent that continues it, and the session follows", async () => {
    const p = teamProject([agent("triage", { handoffs: ["billing"] }), agent("billing")]);
    const seen: string[] = [];
    const model = brains({
      triage: () => call("handoff.billing", { reason: "invoice question" }),
      billing: (req) => {
        seen.push(req.messages[0].content);
        return `billing here; you said "${firstUser(req.messages)}"`;
      },
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "triage", input: "my invoice is wrong" })).id);
    expect(run.status).toBe("completed");
    expect(run.output).toBe('billing here; you said "my invoice is wrong"');
    expect(seen[0].startsWith("You are billing.")).toBe(true); // the next agent's own instructions
    const handed = (await o.getEvents(run.id)).find((e) => e.type === "run.handed_off");
    expect(handed?.data).toMatchObject({ from: "triage", to: "billing", reason: "invoice question" });

    // The next turn of the conversation goes to whoever holds it now.
    const next = await o.startRun({ session_id: run.session_id, input: "and the due date?" });
    expect(next.agent).toBe("billing");
    await finish(o, next.id);
  });

  it("bounds handoffs back and forth with max_handoffs", async () => {
    const limits = { ...defaultLimits, maxHandoffs: 2 };
    const p = teamProject([agent("ping", { handoffs: ["pong"], limits }), agent("pong", { handoffs: ["ping"], limits })]);
    const model = brains({
      ping: (req) => (lastTool(req.messages).includes("refused") ? "ping stops" : call("handoff.pong", { reason: "yours" })),
      pong: (req) => (lastTool(req.messages).includes("refused") ? "pong stops" : call("handoff.ping", { reason: "yours" })),
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "ping", input: "serve" })).id);
    expect(run.status).toBe("completed");
    expect(run.output).toBe("ping stops");
    const events = await o.getEvents(run.id);
    expect(events.filter((e) => e.type === "run.handed_off")).toHaveLength(2);
    expect(events.some((e) => e.type === "tool.completed" && String(e.data.output).includes("limit max_handoffs: 2"))).toBe(true);
  });
});

describe("review findings", () => {
  it("calls after a handoff in the same response are refused: the next agent's tools never run on the first agent's say", async () => {
    const paid: unknown[] = [];
    const refund: ToolDefinition = {
      name: "ledger.refund",
      description: "refund",
      input: z.object({ amount: z.number() }),
      handler: ({ input }) => {
        paid.push(input);
        return "paid";
      },
    };
    const p = teamProject([agent("front", { handoffs: ["billing"] }), agent("billing", { tools: [{ name: "ledger.refund" }] })], [refund]);
    const model = brains({
      front: () => calls(["handoff.billing", { reason: "money" }], ["ledger.refund", { amount: 5000 }]),
      billing: () => "billing: how can I help?",
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "front", input: "refund me 5000" })).id);
    expect(run.status).toBe("completed");
    expect(run.output).toBe("billing: how can I help?");
    expect(paid).toEqual([]);
    const refused = (await o.getEvents(run.id)).find((e) => e.type === "tool.completed" && e.data.tool === "ledger.refund");
    expect(refused?.data).toMatchObject({
      is_error: true,
      output: "error: not run: front handed the conversation to billing before this call",
    });
  });

  it("a child's long answer reaches its parent as a preview and an artifact, like any tool output", async () => {
    const long = "x".repeat(30_000);
    const p = teamProject([agent("lead", { delegates: ["writer"], limits: { ...defaultLimits, maxToolOutput: 5_000 } }), agent("writer")]);
    let seen = "";
    const model = brains({
      lead: (req, turn) => {
        if (turn === 0) return call("delegate.writer", { task: "write a lot" });
        seen = lastTool(req.messages);
        return "done";
      },
      writer: () => long,
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "lead", input: "go" })).id);
    expect(run.status).toBe("completed");
    expect(seen.length).toBeLessThan(5_000);
    const id = /artifact (art_[0-9a-f]+)/.exec(seen)?.[1] as string;
    expect(seen).toContain("writer's answer is 30000 characters");
    expect((await o.getArtifact(id)).content).toBe(long);
  });

  it("the session follows a handoff as soon as it is committed, even while the run still waits", async () => {
    const p = teamProject([agent("desk", { handoffs: ["clerk"] }), agent("clerk")]);
    const model = brains({
      desk: () => call("handoff.clerk", { reason: "paperwork" }),
      clerk: (req) => (lastTool(req.messages).startsWith("{") ? "filed" : call("wait.for_event", { name: "stamp" })),
    });
    const o = await open(p, model);
    const first = await o.startRun({ agent: "desk", input: "file this" });
    await until("the handed-off run to wait", async () => (await o.getRun(first.id)).status === "waiting", 10_000);
    const next = await o.startRun({ session_id: first.session_id, input: "and this?" });
    expect(next.agent).toBe("clerk");
  });

  it("cancels, at start, runs left going under a parent that has ended (a cascade a crash cut short)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "outpost-teams-orphan-"));
    const p = teamProject([agent("top", { delegates: ["low"] }), agent("low")]);
    const model = brains({ top: () => "top", low: () => call("wait.for_event", { name: "never" }) });
    const first = await startOutpost({ project: p, dataDir, modelFor: () => model, concurrency: 0 });
    const parent = await first.store.createRun({ workspace: "test", agent: "top", input: "x" });
    const child = await first.store.createRun({
      workspace: "test",
      agent: "low",
      input: "y",
      idempotencyKey: "delegate:orphan",
      parent: { runId: parent.run.id, callId: "c1", rootRunId: parent.run.id, depth: 1, chain: ["top"] },
    });
    await first.store.applyExternal("test", { kind: "cancel", runId: parent.run.id, reason: "gone" }); // no cascade: the store alone
    await first.close();
    const second = await open(p, model, dataDir);
    const orphan = await until(
      "the orphan to be cancelled",
      async () => {
        const r = await second.getRun(child.run.id);
        return r.status === "cancelled" ? r : null;
      },
      10_000,
    );
    expect(orphan.error?.message).toContain(`parent run ${parent.run.id} has ended`);
  });
});

describe("large tool outputs", () => {
  it("are kept as artifacts: the model sees a preview and a handle, and pages through the rest", async () => {
    const big = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join("\n"); // ~26 000 characters
    const dump: ToolDefinition = { name: "logs.dump", description: "all logs", input: z.object({}), handler: () => big };
    const p = teamProject(
      [agent("reader", { tools: [{ name: "logs.dump" }], limits: { ...defaultLimits, maxToolOutput: 10_000 } })],
      [dump],
    );
    let handle = "";
    const model = brains({
      reader: (req, turn) => {
        if (turn === 0) return call("logs.dump", {});
        if (turn === 1) {
          handle = /artifact (art_[0-9a-f]+)/.exec(lastTool(req.messages))?.[1] ?? "";
          return call("artifacts.read", { id: handle, offset: 4000, limit: 100 });
        }
        return `read: ${lastTool(req.messages)}`;
      },
    });
    const o = await open(p, model);
    const run = await finish(o, (await o.startRun({ agent: "reader", input: "show logs" })).id);
    expect(run.status).toBe("completed");
    const results = (await o.getEvents(run.id)).filter((e) => e.type === "tool.completed");
    const preview = String(results[0].data.output);
    expect(preview.length).toBeLessThan(4_400);
    expect(preview.startsWith(big.slice(0, 4000))).toBe(true);
    expect(preview).toContain(`is ${big.length} characters`);
    const page = JSON.parse(String(results[1].data.output));
    expect(page).toMatchObject({ id: handle, size: big.length, offset: 4000, next_offset: 4100, content: big.slice(4000, 4100) });

    const whole = await o.getArtifact(handle);
    expect(whole.content).toBe(big);
    expect(whole.next_offset).toBeNull();
    await expect(o.getArtifact("art_nope")).rejects.toMatchObject({ code: "not_found" });
  });
});
