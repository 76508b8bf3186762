/**
 * Workflows in the real runtime (SQLite, scripted model): each construct — tool steps with templated arguments,
 * branch, loop, parallel, an agent step with a typed answer (an invalid one asked again within the bound), an
 * approval, an event, a time — compensation of completed steps when a later one fails, policy on tool steps, and
 * versioning (a run finishes on the definition it started with).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { RunView } from "../../src/core/api.js";
import { createScriptedClient } from "../../src/models/index.js";
import type { Outpost } from "../../src/runtime/index.js";
import { localCaller } from "../../src/security/identity/index.js";
import type { WorkflowInput } from "../../src/workflows/definition.js";
import { finish, outposts, project, sleep, start } from "../runtime/fixtures.js";
import { applied, definition, tool, withWorkflows } from "./fixtures.js";

const failing = { ...tool("ledger_post"), handler: async () => Promise.reject(new Error("the ledger refused the entry: period closed")) };
const TOOLS = [
  tool("sum", (i) => ({ total: (i.values as number[]).reduce((a, b) => a + b, 0) })),
  tool("note"),
  tool("reserve", (i) => ({ reservation: `R-${i.sku}` })),
  tool("release"),
  failing,
];

const caller = localCaller("test");
const startFlow = (o: Outpost, name: string, input: unknown = {}) => o.startWorkflowAs(caller, name, { input });
const stepsOf = async (o: Outpost, id: string) =>
  (await o.getEvents(id)).filter((e) => e.type.startsWith("step.")).map((e) => `${e.type} ${e.data.path}`);

async function until(o: Outpost, id: string, check: (r: RunView) => boolean, ms = 10_000): Promise<RunView> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await o.getRun(id);
    if (check(r)) return r;
    if (Date.now() > deadline) throw new Error(`run ${id} stayed ${r.status} (${JSON.stringify(r.waiting_for)})`);
    await sleep(20);
  }
}

afterEach(async () => {
  applied.length = 0;
  await Promise.all(outposts.splice(0).map((o) => o.close()));
});

describe("workflow steps", () => {
  it("runs tool steps in order, each given what earlier ones returned, and ends with the output it names", async () => {
    const p = withWorkflows(project(TOOLS), {
      name: "totals",
      input: { type: "object", required: ["values"], properties: { values: { type: "array", items: { type: "number" } } } },
      steps: [
        { id: "add", tool: "sum", arguments: { values: "{{ input.values }}" } },
        {
          id: "tell",
          tool: "note",
          arguments: { text: "The total is {{ steps.add.output.total }}.", doubled: "{{ steps.add.output.total * 2 }}" },
        },
      ],
      output: { total: "{{ steps.add.output.total }}", said: "{{ steps.tell.output.text }}" },
    });
    const o = await start(
      p,
      createScriptedClient("m", () => "unused"),
    );
    const run = await startFlow(o, "totals", { values: [1, 2, 3.5] });
    expect(run.agent).toBe("workflow:totals");
    const done = await finish(o, run.id);
    expect(done.status).toBe("completed");
    expect(JSON.parse(done.output as string)).toEqual({ total: 6.5, said: "The total is 6.5." });
    expect(applied.map((a) => [a.tool, a.key])).toEqual([
      ["sum", `${run.id}:add`],
      ["note", `${run.id}:tell`],
    ]);
    expect(applied[1].input).toEqual({ text: "The total is 6.5.", doubled: 13 });
    expect(await stepsOf(o, run.id)).toEqual(["step.started add", "step.completed add", "step.started tell", "step.completed tell"]);
  });

  it("refuses an input that does not match the workflow's input schema, naming the field", async () => {
    const p = withWorkflows(project(TOOLS), {
      name: "totals",
      input: { type: "object", required: ["values"], properties: { values: { type: "array" } } },
      steps: [{ id: "add", tool: "sum", arguments: { values: "{{ input.values }}" } }],
    });
    const o = await start(
      p,
      createScriptedClient("m", () => "unused"),
    );
    await expect(startFlow(o, "totals", { value: 1 })).rejects.toThrow(/values/);
    await expect(startFlow(o, "nope")).rejects.toMatchObject({
      message: 'workflow "nope" does not exist',
      hint: "known workflows: totals",
    });
  });

  it("branches on a condition, loops over a list and runs branches side by side", async () => {
    const p = withWorkflows(project(TOOLS), {
      name: "shapes",
      steps: [
        { id: "count", tool: "sum", arguments: { values: "{{ input.values }}" } },
        {
          id: "big",
          if: "steps.count.output.total > 10",
          // biome-ignore lint/suspicious/noThenProperty: a workflow's if/then/else
          then: [{ id: "say_big", tool: "note", arguments: { size: "big" } }],
          else: [{ id: "say_small", tool: "note", arguments: { size: "small" } }],
        },
        {
          id: "each",
          for_each: "{{ input.skus }}",
          as: "sku",
          do: [{ id: "hold", tool: "reserve", arguments: { sku: "{{ sku }}", n: "{{ index }}" } }],
        },
        {
          id: "both",
          parallel: [
            [{ id: "left", tool: "note", arguments: { side: "left" } }],
            [{ id: "right", tool: "note", arguments: { side: "right" } }],
          ],
        },
      ],
      output: { branch: "{{ steps.big.output }}", held: "{{ steps.each.output.reservation }}", sides: "{{ steps.both.output.side }}" },
    });
    const o = await start(
      p,
      createScriptedClient("m", () => "unused"),
    );
    const done = await finish(o, (await startFlow(o, "shapes", { values: [3, 4], skus: ["A", "B", "C"] })).id);
    expect(done.status).toBe("completed");
    expect(JSON.parse(done.output as string)).toEqual({ branch: { size: "small" }, held: ["R-A", "R-B", "R-C"], sides: ["left", "right"] });
    expect(applied.filter((a) => a.tool === "reserve").map((a) => a.key.split(":")[1])).toEqual([
      "each[0].hold",
      "each[1].hold",
      "each[2].hold",
    ]);
    expect(applied.some((a) => a.tool === "note" && (a.input as { size?: string }).size === "big")).toBe(false);
  });

  it("compensates the completed steps, last first, when a later one fails, and fails naming the step", async () => {
    const p = withWorkflows(project(TOOLS), {
      name: "close",
      steps: [
        {
          id: "hold_a",
          tool: "reserve",
          arguments: { sku: "A" },
          compensate: { tool: "release", arguments: { reservation: "{{ output.reservation }}" } },
        },
        {
          id: "hold_b",
          tool: "reserve",
          arguments: { sku: "B" },
          compensate: { tool: "release", arguments: { reservation: "{{ output.reservation }}" } },
        },
        { id: "post", tool: "ledger_post", arguments: {}, retry: { attempts: 2, backoff: "10ms" } },
      ],
    });
    const o = await start(
      p,
      createScriptedClient("m", () => "unused"),
    );
    const run = await startFlow(o, "close");
    const done = await finish(o, run.id);
    expect(done.status).toBe("failed");
    expect(done.error?.message).toMatch(
      /step post failed: ledger_post failed: the ledger refused the entry: period closed; compensated: hold_b, hold_a/,
    );
    expect(applied.filter((a) => a.tool === "release").map((a) => a.input)).toEqual([{ reservation: "R-B" }, { reservation: "R-A" }]);
    const events = await o.getEvents(run.id);
    expect(events.filter((e) => e.type === "step.failed").map((e) => [e.data.attempt, e.data.retry_at !== undefined])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(events.some((e) => e.type === "workflow.compensating")).toBe(true);
  });
});

describe("workflow waits", () => {
  it("asks an agent for a typed answer, asks again once when it is invalid, and uses the valid one", async () => {
    const p = withWorkflows(project(TOOLS), {
      name: "classify",
      steps: [
        {
          id: "judge",
          agent: "clerk",
          task: "Is {{ input.ticket }} urgent?",
          output_schema: { type: "object", required: ["urgent"], properties: { urgent: { type: "boolean" } } },
          retries: 1,
        },
        {
          id: "flag",
          if: "steps.judge.output.urgent",
          // biome-ignore lint/suspicious/noThenProperty: a workflow's if/then/else
          then: [{ id: "page", tool: "note", arguments: { page: true } }],
        },
      ],
      output: "{{ steps.judge.output }}",
    });
    let asked = 0;
    const o = await start(
      p,
      createScriptedClient("m", (req) => {
        asked++;
        const last = [...req.messages].reverse().find((m) => m.role === "user");
        return String(last?.content).includes("could not be used") ? '```json\n{"urgent": true}\n```' : "I think it is urgent.";
      }),
    );
    const run = await startFlow(o, "classify", { ticket: "T-9" });
    const done = await finish(o, run.id);
    expect(done.status).toBe("completed");
    expect(JSON.parse(done.output as string)).toEqual({ urgent: true });
    expect(asked).toBe(2);
    const tree = await o.getRunTree(run.id);
    expect(tree.children.map((c) => c.run.agent)).toEqual(["clerk", "clerk"]);
    expect(applied.map((a) => a.tool)).toEqual(["note"]);
  });

  it("fails the step clearly when the agent's answers stay invalid past the bound", async () => {
    const p = withWorkflows(project(TOOLS), {
      name: "classify",
      steps: [
        {
          id: "judge",
          agent: "clerk",
          task: "Urgent?",
          output_schema: { type: "object", required: ["urgent"], properties: { urgent: { type: "boolean" } } },
          retries: 1,
        },
      ],
    });
    const o = await start(
      p,
      createScriptedClient("m", () => '{"maybe": 1}'),
    );
    const done = await finish(o, (await startFlow(o, "classify")).id);
    expect(done.status).toBe("failed");
    expect(done.error?.message).toMatch(/step judge failed: clerk gave no valid answer in 2 attempts; the last: urgent: .*/);
  });

  it("waits for an approval holding nothing, goes on when approved, and fails when denied", async () => {
    const flow: WorkflowInput = {
      name: "payout",
      steps: [
        { id: "ok", approval: { approver: "operator:finance", message: "Pay {{ input.amount }}?" } },
        { id: "pay", tool: "note", arguments: { paid: "{{ input.amount }}" } },
      ],
    };
    const o = await start(
      withWorkflows(project(TOOLS), flow),
      createScriptedClient("m", () => "unused"),
    );
    const run = await startFlow(o, "payout", { amount: 120 });
    const waiting = await until(o, run.id, (r) => r.status === "waiting");
    expect(waiting.waiting_for?.kind).toBe("approval");
    const [approval] = await o.listApprovals({ status: "pending" });
    expect(approval).toMatchObject({ run_id: run.id, tool: "workflow.approval", arguments: { message: "Pay 120?" } });
    expect(applied).toEqual([]);
    await o.decideApproval(approval.id, { decision: "approve", by: "fin-lead" });
    expect((await finish(o, run.id)).status).toBe("completed");
    expect(applied.map((a) => a.input)).toEqual([{ paid: 120 }]);

    const second = await startFlow(o, "payout", { amount: 9000 });
    await until(o, second.id, (r) => r.status === "waiting");
    const [pending] = await o.listApprovals({ status: "pending" });
    await o.decideApproval(pending.id, { decision: "deny", reason: "over the limit" });
    const denied = await finish(o, second.id);
    expect(denied.status).toBe("failed");
    expect(denied.error?.message).toMatch(/step ok failed: the approval was denied by .*: over the limit/);
    expect(applied).toHaveLength(1);
  });

  it("an approval nobody decides in time expires: the step fails, the approval is marked expired, nothing ran", async () => {
    const flow: WorkflowInput = {
      name: "payout",
      steps: [
        { id: "ok", approval: { message: "Pay?" } },
        { id: "pay", tool: "note", arguments: { paid: true } },
      ],
    };
    const o = await start(
      withWorkflows(project(TOOLS), flow),
      createScriptedClient("m", () => "unused"),
      { approvalTtlMs: 400, pollMs: 50 },
    );
    const run = await startFlow(o, "payout");
    const waiting = await until(o, run.id, (r) => r.status === "waiting");
    expect(waiting.waiting_for).toMatchObject({ kind: "approval", expires_at: expect.any(String) });
    const [asked] = await o.listApprovals({ status: "pending" });
    expect(Date.parse(asked.expires_at ?? "")).toBeGreaterThan(Date.parse(asked.created_at));
    const failed = await finish(o, run.id);
    expect(failed).toMatchObject({ status: "failed", error: { code: "step_failed" } });
    expect(failed.error?.message).toMatch(/step ok failed: the approval expired before anyone decided/);
    expect((await o.listApprovals({ status: "expired" })).map((a) => a.id)).toEqual([asked.id]);
    expect(applied).toEqual([]);
    // Too late: deciding it now changes nothing.
    await expect(o.decideApproval(asked.id, { decision: "approve" })).rejects.toThrow(/expired|already/);
  });

  it("a run that fails while a branch waits for a person withdraws that approval", async () => {
    const flow: WorkflowInput = {
      name: "split",
      steps: [
        {
          id: "both",
          parallel: [
            [{ id: "ask", approval: { message: "Go?" } }],
            [{ id: "post", tool: "ledger_post", arguments: { x: 1 }, retry: { attempts: 1 } }],
          ],
        },
      ],
    };
    const o = await start(
      withWorkflows(project(TOOLS), flow),
      createScriptedClient("m", () => "unused"),
    );
    const run = await startFlow(o, "split");
    const failed = await finish(o, run.id);
    expect(failed.status).toBe("failed");
    expect(failed.error?.message).toMatch(/step post failed: .*period closed/);
    expect(await o.listApprovals({ status: "pending" })).toEqual([]);
    const [withdrawn] = await o.listApprovals({ status: "denied" });
    expect(withdrawn).toMatchObject({ run_id: run.id, decided_by: "outpost" });
    expect(withdrawn.reason).toMatch(/^the workflow run failed: step post failed/);
  });

  it("waits for a named event and for a time, and in parallel for both at once", async () => {
    const o = await start(
      withWorkflows(project(TOOLS), {
        name: "bank",
        steps: [
          {
            id: "gather",
            parallel: [[{ id: "statement", wait: { event: "bank.statement_ready" } }], [{ id: "pause", wait: { for: "300ms" } }]],
          },
          { id: "use", tool: "note", arguments: { lines: "{{ steps.statement.output.lines }}" } },
        ],
      }),
      createScriptedClient("m", () => "unused"),
    );
    const run = await startFlow(o, "bank");
    const waiting = await until(o, run.id, (r) => r.status === "waiting");
    expect(waiting.waiting_for).toMatchObject({ kind: "any", events: ["bank.statement_ready"], approvals: [], run_ids: [] });
    await o.sendEvent(run.id, { name: "bank.statement_ready", payload: { lines: 42 } });
    const done = await finish(o, run.id);
    expect(done.status).toBe("completed");
    expect(applied.map((a) => a.input)).toEqual([{ lines: 42 }]);
  });

  it("finishes on the definition it started with when the workflow is changed meanwhile", async () => {
    const v1: WorkflowInput = {
      name: "flow",
      steps: [
        { id: "gate", wait: { event: "go" } },
        { id: "say", tool: "note", arguments: { v: 1 } },
      ],
    };
    const p = withWorkflows(project(TOOLS), v1);
    const o = await start(
      p,
      createScriptedClient("m", () => "unused"),
    );
    const old = await startFlow(o, "flow");
    await until(o, old.id, (r) => r.status === "waiting");
    // The file is edited: a new step, another argument. The running one keeps v1; a new one gets v2.
    p.workflows?.set(
      "flow",
      definition({
        name: "flow",
        steps: [
          { id: "gate", wait: { event: "go" } },
          { id: "say", tool: "note", arguments: { v: 2 } },
          { id: "more", tool: "note", arguments: { v: 2 } },
        ],
      }),
    );
    const fresh = await startFlow(o, "flow");
    await until(o, fresh.id, (r) => r.status === "waiting");
    await o.sendEvent(old.id, { name: "go" });
    await o.sendEvent(fresh.id, { name: "go" });
    await finish(o, old.id);
    await finish(o, fresh.id);
    const versionOf = async (id: string) => (await o.getEvents(id)).find((e) => e.type === "workflow.started")?.data.version;
    expect(await versionOf(old.id)).not.toBe(await versionOf(fresh.id));
    expect(applied.filter((a) => a.key.startsWith(old.id)).map((a) => a.input)).toEqual([{ v: 1 }]);
    expect(applied.filter((a) => a.key.startsWith(fresh.id)).map((a) => a.input)).toEqual([{ v: 2 }, { v: 2 }]);
  });

  it("emits an event: the runs waiting for it get it, and each subscribed agent and workflow starts once", async () => {
    const p = withWorkflows(
      project(TOOLS),
      {
        name: "stock",
        steps: [{ id: "low", emit: { event: "inventory.low_stock", payload: { sku: "{{ input.sku }}", left: 2 } } }],
        output: "{{ steps.low.output }}",
      },
      {
        name: "reorder",
        on_events: ["inventory.low_stock"],
        steps: [{ id: "order", tool: "note", arguments: { reorder: "{{ input.sku }}" } }],
      },
      { name: "watcher", steps: [{ id: "hear", wait: { event: "inventory.low_stock" } }], output: "{{ steps.hear.output }}" },
    );
    (p.agents.get("clerk") as { onEvents?: string[] }).onEvents = ["inventory.low_stock"];
    const heard: string[] = [];
    const o = await start(
      p,
      createScriptedClient("m", (req) => {
        heard.push(String(req.messages.find((m) => m.role === "user")?.content));
        return "Noted.";
      }),
    );
    const watcher = await startFlow(o, "watcher");
    await until(o, watcher.id, (r) => r.status === "waiting");
    const emitted = await finish(o, (await startFlow(o, "stock", { sku: "SKU-7" })).id);
    expect(JSON.parse(emitted.output as string)).toEqual({ delivered: 1, started: 2 });
    expect(JSON.parse((await finish(o, watcher.id)).output as string)).toEqual({ sku: "SKU-7", left: 2 });
    const started = (await o.listRuns({ limit: 50 })).items.filter((r) => r.agent === "clerk" || r.agent === "workflow:reorder");
    expect(started.map((r) => r.agent).sort()).toEqual(["clerk", "workflow:reorder"]);
    for (const r of started) expect((await finish(o, r.id)).status).toBe("completed");
    expect(JSON.parse(heard[0])).toEqual({ event: "inventory.low_stock", payload: { sku: "SKU-7", left: 2 } });
    // Each subscription is a trigger, its firing the run it started.
    const subscriptions = (await o.triggers.list()).filter((t) => t.kind === "event");
    expect(subscriptions.map((t) => [t.id, t.agent, t.name])).toEqual([
      ["event:inventory.low_stock:clerk", "clerk", "inventory.low_stock"],
      ["event:inventory.low_stock:workflow:reorder", "workflow:reorder", "inventory.low_stock"],
    ]);
    const clerk = started.find((r) => r.agent === "clerk");
    expect((await o.triggers.firings("event:inventory.low_stock:clerk")).map((f) => [f.status, f.run_id])).toEqual([
      ["started", clerk?.id],
    ]);
    expect(applied.filter((a) => a.tool === "note").map((a) => a.input)).toEqual([{ reorder: "SKU-7" }]);
  });
  it("an agent emits through its emit tool: each subscriber starts once, waiting runs wake, other events stay undelivered", async () => {
    const p = withWorkflows(
      project(TOOLS, {}, ["emit.inventory.low_stock"]),
      {
        name: "reorder",
        on_events: ["inventory.low_stock"],
        steps: [{ id: "order", tool: "note", arguments: { reorder: "{{ input.sku }}" } }],
      },
      { name: "watcher", steps: [{ id: "hear", wait: { event: "inventory.low_stock" } }], output: "{{ steps.hear.output }}" },
      { name: "other", steps: [{ id: "hear", wait: { event: "inventory.restocked" } }] },
    );
    (p.agents.get("clerk") as { emits?: string[] }).emits = ["inventory.low_stock"];
    const o = await start(
      p,
      createScriptedClient("m", (req) =>
        req.messages.some((m) => m.role === "tool")
          ? "Reported."
          : { toolCalls: [{ name: "emit.inventory.low_stock", arguments: { payload: { sku: "SKU-9", available: 1 } } }] },
      ),
    );
    const watcher = await startFlow(o, "watcher");
    const other = await startFlow(o, "other");
    await until(o, watcher.id, (r) => r.status === "waiting");
    await until(o, other.id, (r) => r.status === "waiting");
    const run = await o.as(caller).startRun({ agent: "clerk", input: "SKU-9 is nearly gone" });
    expect((await finish(o, run.id)).status).toBe("completed");
    const result = (await o.getEvents(run.id)).find((e) => e.type === "tool.completed")?.data.output;
    expect(JSON.parse(String(result))).toEqual({ event: "inventory.low_stock", runs_started: 1, runs_woken: 1 });
    expect(JSON.parse((await finish(o, watcher.id)).output as string)).toEqual({ sku: "SKU-9", available: 1 });
    const reorder = (await o.listRuns({ limit: 50 })).items.filter((r) => r.agent === "workflow:reorder");
    expect(reorder).toHaveLength(1);
    await finish(o, reorder[0].id);
    expect(applied.filter((a) => a.tool === "note").map((a) => a.input)).toEqual([{ reorder: "SKU-9" }]);
    expect((await o.getRun(other.id)).status).toBe("waiting");
  });
});
