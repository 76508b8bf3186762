/**
 * decide(): the run loop as a pure function, tested on hand-written logs.
 * No store, no model, no clock — every case is a list of events and a `now`.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { EventDataOf, NewEvent, RunEvent } from "../../src/core/events.js";
import { ev } from "../../src/core/events.js";
import type { AgentDefinition, AgentLimits, ToolDefinition } from "../../src/definitions/types.js";
import { type Action, type DecideContext, decide } from "../../src/runtime/decide.js";
import { EMPTY_ANSWER_NOTE, replay } from "../../src/runtime/state.js";
import { builtinTools } from "../../src/tools/builtin.js";

const RUN = "run_test";
const T0 = Date.parse("2026-03-01T09:00:00.000Z");

const noop = () => "ok";
const registry: ToolDefinition[] = [
  { name: "orders.lookup", description: "Find an order", input: z.object({ id: z.number().int() }), handler: noop },
  {
    name: "payments.refund",
    description: "Refund an order",
    input: z.object({ order: z.number(), amount: z.number().positive() }),
    approval: "required",
    handler: noop,
  },
  { name: "mail.send", description: "Send mail", input: z.object({ to: z.string() }), handler: noop },
  { name: "admin.drop_tables", description: "Registered, but no agent lists it", input: z.object({}), handler: noop },
  ...builtinTools,
];
const tools = new Map(registry.map((t) => [t.name, t]));

const defaultLimits: AgentLimits = {
  maxSteps: 50,
  maxTokens: 200_000,
  maxUsd: 1,
  maxWallTimeMs: 600_000,
  maxModelErrors: 3,
  maxDelegations: 10,
  maxDepth: 3,
  maxHandoffs: 5,
  maxToolOutput: 16_000,
};

function agentWith(limits: Partial<AgentLimits> = {}, toolRefs?: AgentDefinition["tools"]): AgentDefinition {
  return {
    name: "support",
    description: "Answers customers",
    instructions: "Be helpful.",
    model: "fast",
    tools: toolRefs ?? [
      { name: "orders.lookup" },
      { name: "payments.refund" },
      { name: "mail.send", approval: "required" },
      { name: "wait.until" },
      { name: "wait.for_event" },
    ],
    limits: { ...defaultLimits, ...limits },
    delegates: [],
    handoffs: [],
    fanOut: "all",
    file: "agents/support.yaml",
  };
}

const ctx = (now: number, agent = agentWith()): DecideContext => ({ agent, tools, now });

/** A run log under construction: seqs are consecutive, `at` moves only when told. */
class Log {
  readonly events: RunEvent[] = [];
  t = T0;
  add(e: NewEvent, advanceMs = 0): this {
    this.t += advanceMs;
    this.events.push({ ...e, seq: this.events.length + 1, at: this.t } as RunEvent);
    return this;
  }
  addAll(list: NewEvent[], advanceMs = 0): this {
    for (const [i, e] of list.entries()) this.add(e, i === 0 ? advanceMs : 0);
    return this;
  }
  state() {
    return replay(RUN, this.events);
  }
  decide(now = this.t, agent = agentWith()): Action {
    return decide(ctx(now, agent), this.state());
  }
}

const started = (input = "Where is order 42?") => ev("run.started", { agent: "support", input, session_id: "ses_1" });
const called = (step: number) => ev("model.called", { step, model: "fast" });
type Call = { id: string; name: string; arguments: string };
const responded = (step: number, calls: Call[] = [], opts: { text?: string; input?: number; output?: number; cost?: number } = {}) =>
  ev("model.responded", {
    step,
    text: opts.text ?? "",
    tool_calls: calls,
    usage: { input_tokens: opts.input ?? 100, output_tokens: opts.output ?? 20 },
    cost_usd: opts.cost ?? 0.001,
    model: "fast-1",
    finish_reason: calls.length ? "tool-calls" : "stop",
  });
const call = (id: string, name: string, args: unknown): Call => ({
  id,
  name,
  arguments: typeof args === "string" ? args : JSON.stringify(args),
});
const completed = (d: Partial<EventDataOf<"tool.completed">> & { call_id: string; tool: string }) =>
  ev("tool.completed", { output: "ok", is_error: false, ...d });

/** A log that has asked the model once and got `calls` back. */
function afterResponse(calls: Call[], text = ""): Log {
  return new Log()
    .add(started())
    .add(called(1), 10)
    .add(responded(1, calls, { text }), 500);
}

function expectCommit(a: Action): NewEvent[] {
  expect(a.kind).toBe("commit");
  return (a as Extract<Action, { kind: "commit" }>).events;
}

function expectFailure(a: Action, code: string): string {
  const events = expectCommit(a);
  const last = events[events.length - 1];
  expect(last.type).toBe("run.failed");
  const error = (last.data as EventDataOf<"run.failed">).error;
  expect(error.code).toBe(code);
  return error.message;
}

function expectModelError(a: Action, callId: string, tool: string): string {
  const events = expectCommit(a);
  expect(events).toHaveLength(1);
  expect(events[0].type).toBe("tool.completed");
  const d = events[0].data as EventDataOf<"tool.completed">;
  expect(d).toMatchObject({ call_id: callId, tool, is_error: true, model_error: true });
  return d.output;
}

// ─────────────────────────── the model step ───────────────────────────
describe("decide: calling the model", () => {
  it("the first step calls the model with a model.called intent", () => {
    const a = new Log().add(started()).decide();
    expect(a).toEqual({ kind: "call_model", intent: ev("model.called", { step: 1, model: "fast" }) });
  });

  it("a model call whose intent was committed but never answered is made again, same step", () => {
    const log = new Log().add(started()).add(called(1), 5);
    expect(log.decide()).toEqual({ kind: "call_model", intent: ev("model.called", { step: 1, model: "fast" }) });
  });

  it("the next step numbers on from the model calls made", () => {
    const log = afterResponse([call("c1", "orders.lookup", { id: 42 })])
      .add(ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 42 }, idempotency_key: `${RUN}.1.c1` }))
      .add(completed({ call_id: "c1", tool: "orders.lookup", output: '{"status":"shipped"}' }), 50);
    expect(log.decide()).toEqual({ kind: "call_model", intent: ev("model.called", { step: 2, model: "fast" }) });
  });

  it("a final answer completes the run", () => {
    const log = afterResponse([], "Order 42 shipped yesterday.");
    expect(expectCommit(log.decide())).toEqual([ev("run.completed", { output: "Order 42 shipped yesterday." })]);
  });

  it("model.failed fails the run with its error", () => {
    const log = new Log()
      .add(started())
      .add(called(1))
      .add(ev("model.failed", { step: 1, error: { code: "model_timeout", message: 'model "fast" failed: timed out' } }));
    const message = expectFailure(log.decide(), "model_timeout");
    expect(message).toBe('model "fast" failed: timed out');
  });
});

// ─────────────────────────── tool calls ───────────────────────────
describe("decide: tool calls", () => {
  it("a tool call gets a tool.called intent with a stable idempotency key", () => {
    const log = afterResponse([call("c1", "orders.lookup", { id: 42 })]);
    const a = log.decide();
    expect(a.kind).toBe("call_tool");
    const act = a as Extract<Action, { kind: "call_tool" }>;
    expect(act.tool.name).toBe("orders.lookup");
    expect(act.args).toEqual({ id: 42 });
    expect(act.call.key).toBe(`${RUN}.1.c1`);
    expect(act.intent).toEqual(
      ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 42 }, idempotency_key: `${RUN}.1.c1` }),
    );
    // Another replay of the same log, later: the same key.
    const again = log.decide(log.t + 60_000) as Extract<Action, { kind: "call_tool" }>;
    expect(again.call.key).toBe(act.call.key);
  });

  it("keys differ between steps even when the model reuses call ids", () => {
    const log = afterResponse([call("c1", "orders.lookup", { id: 1 })])
      .add(ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 1 }, idempotency_key: `${RUN}.1.c1` }))
      .add(completed({ call_id: "c1", tool: "orders.lookup" }))
      .add(called(2))
      .add(responded(2, [call("c1", "orders.lookup", { id: 2 })]));
    const a = log.decide() as Extract<Action, { kind: "call_tool" }>;
    expect(a.kind).toBe("call_tool");
    expect(a.call.key).toBe(`${RUN}.2.c1`);
  });

  it("after a crash between intent and result, the call is retried with no new intent and the SAME key", () => {
    const log = afterResponse([call("c1", "orders.lookup", { id: 42 })]);
    const first = log.decide() as Extract<Action, { kind: "call_tool" }>;
    log.add(first.intent as NewEvent, 5);
    // The process dies here; another one replays the log.
    const retry = log.decide(log.t + 30_000);
    expect(retry.kind).toBe("call_tool");
    const r = retry as Extract<Action, { kind: "call_tool" }>;
    expect(r.intent).toBeNull();
    expect(r.call.key).toBe(first.call.key);
    expect(r.args).toEqual({ id: 42 });
    expect(r.call.id).toBe("c1");
  });

  it("the retry uses the committed key and arguments, not a recomputed one", () => {
    const log = afterResponse([call("c1", "orders.lookup", { id: 42 })]).add(
      ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 42 }, idempotency_key: "key-as-committed" }),
    );
    const r = log.decide() as Extract<Action, { kind: "call_tool" }>;
    expect(r).toMatchObject({ kind: "call_tool", intent: null, args: { id: 42 } });
    expect(r.call.key).toBe("key-as-committed");
  });

  it("a committed result is never executed again", () => {
    const log = afterResponse([call("c1", "orders.lookup", { id: 42 }), call("c2", "orders.lookup", { id: 43 })])
      .add(ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 42 }, idempotency_key: `${RUN}.1.c1` }))
      .add(completed({ call_id: "c1", tool: "orders.lookup", output: "A" }));
    const next = log.decide() as Extract<Action, { kind: "call_tool" }>;
    expect(next.kind).toBe("call_tool");
    expect(next.call.id).toBe("c2");
    expect(next.intent).toMatchObject({ type: "tool.called", data: { call_id: "c2", idempotency_key: `${RUN}.1.c2` } });
    log.add(next.intent as NewEvent).add(completed({ call_id: "c2", tool: "orders.lookup", output: "B" }));
    const after = log.decide();
    expect(after.kind).toBe("call_model");
    // Even a failed tool's result is final: it goes back to the model, not to the tool.
    const failedTool = afterResponse([call("c1", "orders.lookup", { id: 42 })])
      .add(ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 42 }, idempotency_key: `${RUN}.1.c1` }))
      .add(completed({ call_id: "c1", tool: "orders.lookup", output: "error: orders.lookup failed: boom", is_error: true }));
    expect(failedTool.decide().kind).toBe("call_model");
  });

  it("an unknown tool is fed back to the model as an error naming it and the allowed tools", () => {
    for (const name of ["orders.delete", "admin.drop_tables"]) {
      const output = expectModelError(afterResponse([call("c1", name, {})]).decide(), "c1", name);
      expect(output).toContain(`unknown tool "${name}"`);
      expect(output).toContain("orders.lookup");
      expect(output).toContain("wait.for_event");
    }
    // A tool the agent lists but nobody registered is unknown too.
    const agent = agentWith({}, [{ name: "ghost.tool" }]);
    const output = expectModelError(afterResponse([call("c1", "ghost.tool", {})]).decide(T0, agent), "c1", "ghost.tool");
    expect(output).toContain('unknown tool "ghost.tool"');
  });

  it("malformed JSON arguments are fed back, naming the tool", () => {
    const output = expectModelError(afterResponse([call("c1", "orders.lookup", '{"id": 42')]).decide(), "c1", "orders.lookup");
    expect(output).toMatch(/not valid JSON/);
    expect(output).toContain("orders.lookup");
    const arr = expectModelError(afterResponse([call("c1", "orders.lookup", "[42]")]).decide(), "c1", "orders.lookup");
    expect(arr).toContain("expected a JSON object");
    const nul = expectModelError(afterResponse([call("c1", "orders.lookup", "null")]).decide(), "c1", "orders.lookup");
    expect(nul).toContain("expected a JSON object");
  });

  it("schema-invalid arguments are fed back, naming the field", () => {
    const output = expectModelError(afterResponse([call("c1", "orders.lookup", { id: "forty-two" })]).decide(), "c1", "orders.lookup");
    expect(output).toContain("invalid arguments for orders.lookup");
    expect(output).toMatch(/\bid\b/);
    // Empty argument text is `{}`: the required field is reported missing.
    const empty = expectModelError(afterResponse([call("c1", "orders.lookup", "")]).decide(), "c1", "orders.lookup");
    expect(empty).toContain("invalid arguments for orders.lookup");
    expect(empty).toMatch(/\bid\b/);
  });

  it("a rejected call never executes, and the next call in the same response still does", () => {
    const log = afterResponse([call("c1", "orders.lookup", "{oops"), call("c2", "orders.lookup", { id: 7 })]);
    const rejected = expectCommit(log.decide());
    log.addAll(rejected);
    const next = log.decide() as Extract<Action, { kind: "call_tool" }>;
    expect(next.kind).toBe("call_tool");
    expect(next.call.id).toBe("c2");
  });

  it("after more than max_model_errors malformed outputs in a row, the run fails model_output_invalid", () => {
    const log = new Log().add(started());
    for (let step = 1; step <= 4; step++) {
      const a = log.decide();
      expect(a.kind, `step ${step}`).toBe("call_model");
      log.add(called(step)).add(responded(step, [call(`c${step}`, "orders.lookup", "{bad json")]));
      log.addAll(expectCommit(log.decide()));
    }
    // 4 in a row > max_model_errors (3).
    const message = expectFailure(log.decide(), "model_output_invalid");
    expect(message).toContain("4 times in a row");
    expect(message).toContain("max_model_errors: 3");
    expect(message).toContain("not valid JSON");
  });

  it("exactly max_model_errors malformed outputs are still fed back; a good call resets the streak", () => {
    const log = new Log().add(started());
    for (let step = 1; step <= 3; step++) {
      log.add(called(step)).add(responded(step, [call(`c${step}`, "nope.tool", "{}")]));
      log.addAll(expectCommit(log.decide()));
    }
    expect(log.decide().kind).toBe("call_model");
    // A well-formed call that runs resets the streak...
    log.add(called(4)).add(responded(4, [call("g", "orders.lookup", { id: 1 })]));
    const ok = log.decide() as Extract<Action, { kind: "call_tool" }>;
    log.add(ok.intent as NewEvent).add(completed({ call_id: "g", tool: "orders.lookup" }));
    // ...so three more malformed outputs are tolerated again.
    for (let step = 5; step <= 7; step++) {
      log.add(called(step)).add(responded(step, [call(`c${step}`, "nope.tool", "{}")]));
      log.addAll(expectCommit(log.decide()));
    }
    expect(log.decide().kind).toBe("call_model");
  });

  it("an empty answer is fed back to the model, and counts as a malformed output", () => {
    const log = new Log()
      .add(started())
      .add(called(1))
      .add(responded(1, [], { text: "   " }));
    const a = log.decide();
    expect(a).toEqual({ kind: "call_model", intent: ev("model.called", { step: 2, model: "fast" }) });
    const s = log.state();
    expect(s.messages[s.messages.length - 1]).toEqual({ role: "user", content: EMPTY_ANSWER_NOTE });
    expect(s.finalAnswer).toBeNull();
    for (let step = 2; step <= 4; step++) log.add(called(step)).add(responded(step, [], { text: "" }));
    const message = expectFailure(log.decide(), "model_output_invalid");
    expect(message).toContain("empty answer");
  });
});

// ─────────────────────────── approvals ───────────────────────────
describe("decide: approvals", () => {
  const refund = call("c1", "payments.refund", { order: 42, amount: 12.5 });

  it("a tool that requires approval asks for it, with the checked arguments", () => {
    const a = afterResponse([refund]).decide();
    expect(a.kind).toBe("request_approval");
    const r = a as Extract<Action, { kind: "request_approval" }>;
    expect(r.call.id).toBe("c1");
    expect(r.call.name).toBe("payments.refund");
    expect(r.args).toEqual({ order: 42, amount: 12.5 });
  });

  it("invalid arguments are rejected before any approval is asked", () => {
    const output = expectModelError(
      afterResponse([call("c1", "payments.refund", { order: 42, amount: -5 })]).decide(),
      "c1",
      "payments.refund",
    );
    expect(output).toContain("amount");
  });

  it("while pending, the run waits", () => {
    const log = afterResponse([refund]).add(
      ev("approval.requested", { approval_id: "apr_1", call_id: "c1", tool: "payments.refund", arguments: { order: 42, amount: 12.5 } }),
    );
    // Even before run.waiting is in the log, a pending approval means waiting.
    expect(log.decide()).toEqual({ kind: "wait", for: { kind: "approval", approval_id: "apr_1" } });
    log.add(ev("run.waiting", { for: { kind: "approval", approval_id: "apr_1" } }));
    expect(log.decide(log.t + 86_400_000 * 30)).toEqual({ kind: "wait", for: { kind: "approval", approval_id: "apr_1" } });
  });

  const awaiting = () =>
    afterResponse([refund])
      .add(
        ev("approval.requested", { approval_id: "apr_1", call_id: "c1", tool: "payments.refund", arguments: { order: 42, amount: 12.5 } }),
      )
      .add(ev("run.waiting", { for: { kind: "approval", approval_id: "apr_1" } }));

  it("denied: the call completes as an error and the run fails approval_denied", () => {
    const log = awaiting()
      .add(ev("approval.decided", { approval_id: "apr_1", decision: "deny", reason: "amount too high", by: "ana" }), 60_000)
      .add(ev("run.resumed", { reason: "approval denied" }));
    const events = expectCommit(log.decide());
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ type: "tool.completed", data: { call_id: "c1", tool: "payments.refund", is_error: true } });
    expect((events[0].data as EventDataOf<"tool.completed">).model_error).toBeFalsy();
    const message = expectFailure(log.decide(), "approval_denied");
    expect(message).toContain("payments.refund was denied by ana");
    expect(message).toContain("amount too high");
  });

  it("approved: the tool is called, with an intent and its key", () => {
    const log = awaiting()
      .add(ev("approval.decided", { approval_id: "apr_1", decision: "approve", reason: null, by: "ana" }), 60_000)
      .add(ev("run.resumed", { reason: "approval approved" }));
    const a = log.decide() as Extract<Action, { kind: "call_tool" }>;
    expect(a.kind).toBe("call_tool");
    expect(a.args).toEqual({ order: 42, amount: 12.5 });
    expect(a.intent).toEqual(
      ev("tool.called", { call_id: "c1", tool: "payments.refund", arguments: { order: 42, amount: 12.5 }, idempotency_key: `${RUN}.1.c1` }),
    );
    // Crash after the intent: retried without asking again.
    log.add(a.intent as NewEvent);
    const retry = log.decide() as Extract<Action, { kind: "call_tool" }>;
    expect(retry).toMatchObject({ kind: "call_tool", intent: null });
    expect(retry.call.key).toBe(a.call.key);
  });

  it("an agent can require approval for a tool, or waive it", () => {
    expect(afterResponse([call("c1", "mail.send", { to: "x@y.z" })]).decide().kind).toBe("request_approval");
    const waived = agentWith({}, [{ name: "payments.refund", approval: "none" }]);
    expect(afterResponse([refund]).decide(T0, waived).kind).toBe("call_tool");
  });
});

// ─────────────────────────── limits ───────────────────────────
describe("decide: limits", () => {
  const oneToolStep = (opts: { input?: number; output?: number; cost?: number } = {}) =>
    new Log()
      .add(started())
      .add(called(1))
      .add(responded(1, [call("c1", "orders.lookup", { id: 1 })], opts))
      .add(ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 1 }, idempotency_key: `${RUN}.1.c1` }))
      .add(completed({ call_id: "c1", tool: "orders.lookup" }));

  it("max_steps", () => {
    const log = oneToolStep(); // 2 steps: one model response, one tool result
    expect(log.decide(log.t, agentWith({ maxSteps: 3 })).kind).toBe("call_model");
    const message = expectFailure(log.decide(log.t, agentWith({ maxSteps: 2 })), "max_steps");
    expect(message).toContain("max_steps: 2");
    // A pending tool call is not run past the limit either.
    const pending = afterResponse([call("c1", "orders.lookup", { id: 1 })]);
    expectFailure(pending.decide(pending.t, agentWith({ maxSteps: 1 })), "max_steps");
  });

  it("max_tokens counts input and output", () => {
    const log = oneToolStep({ input: 700, output: 300 });
    expect(log.decide(log.t, agentWith({ maxTokens: 1001 })).kind).toBe("call_model");
    const message = expectFailure(log.decide(log.t, agentWith({ maxTokens: 1000 })), "max_tokens");
    expect(message).toContain("1000 tokens");
  });

  it("max_usd", () => {
    const log = oneToolStep({ cost: 0.25 });
    expect(log.decide(log.t, agentWith({ maxUsd: 0.3 })).kind).toBe("call_model");
    const message = expectFailure(log.decide(log.t, agentWith({ maxUsd: 0.25 })), "max_usd");
    expect(message).toContain("max_usd");
  });

  it("max_wall_time counts active time from the first step, not the time queued before it", () => {
    const log = new Log().add(started()).add(called(1), 5_000); // queued 5 s behind other runs
    const agent = agentWith({ maxWallTimeMs: 60_000 });
    expect(log.decide(T0 + 60_000, agent).kind).toBe("call_model"); // 55 s active
    expect(log.decide(T0 + 5_000 + 59_999, agent).kind).toBe("call_model");
    const message = expectFailure(log.decide(T0 + 5_000 + 60_000, agent), "max_wall_time");
    expect(message).toContain("60 s");
  });

  it("max_wall_time holds between the tool calls of one response", () => {
    const agent = agentWith({ maxWallTimeMs: 60_000 });
    const log = new Log()
      .add(started())
      .add(called(1))
      .add(responded(1, [call("a", "orders.lookup", { id: 1 }), call("b", "orders.lookup", { id: 2 })]), 1_000)
      .add(ev("tool.called", { call_id: "a", tool: "orders.lookup", arguments: { id: 1 }, idempotency_key: `${RUN}.1.a` }))
      .add(ev("tool.completed", { call_id: "a", tool: "orders.lookup", output: "ok", is_error: false }), 59_000);
    expectFailure(log.decide(log.t, agent), "max_wall_time"); // call b never starts
  });

  it("time between a worker's last commit and the takeover after it stopped does not count", () => {
    const agent = agentWith({ maxWallTimeMs: 60_000 });
    const log = new Log()
      .add(started())
      .add(called(1))
      .add(ev("run.resumed", { reason: "recovered" }), 3_600_000); // the worker died; taken over an hour later
    expect(log.decide(log.t + 59_000, agent).kind).toBe("call_model");
    expectFailure(log.decide(log.t + 60_000, agent), "max_wall_time");
  });

  it("max_wall_time excludes time spent waiting", () => {
    const agent = agentWith({ maxWallTimeMs: 60_000 });
    const log = new Log()
      .add(started())
      .add(called(1))
      .add(responded(1, [call("w", "wait.for_event", { name: "parcel.arrived" })]), 10_000)
      .add(
        ev("tool.called", { call_id: "w", tool: "wait.for_event", arguments: { name: "parcel.arrived" }, idempotency_key: `${RUN}.1.w` }),
      )
      .add(ev("run.waiting", { for: { kind: "event", event: "parcel.arrived" } }), 10_000) // 20 s active so far
      .add(ev("event.received", { name: "parcel.arrived", payload: { box: 1 } }), 3 * 86_400_000) // three days later
      .add(ev("run.resumed", { reason: "event parcel.arrived" }));
    const done = expectCommit(log.decide(log.t + 5_000, agent));
    log.addAll(done, 5_000);
    expect(log.decide(log.t + 30_000, agent).kind).toBe("call_model"); // 20 + 5 + 30 = 55 s active
    expectFailure(log.decide(log.t + 35_000, agent), "max_wall_time"); // 60 s active
  });
});

// ─────────────────────────── waiting tools ───────────────────────────
describe("decide: wait.until", () => {
  it("resolves `seconds` into an absolute time, waits, and completes with run.resumed when due", () => {
    const log = afterResponse([call("t", "wait.until", { seconds: 60 })]);
    const now = log.t;
    const intent = expectCommit(log.decide(now));
    const until = new Date(now + 60_000).toISOString();
    expect(intent).toEqual([
      ev("tool.called", { call_id: "t", tool: "wait.until", arguments: { seconds: 60, until }, idempotency_key: `${RUN}.1.t` }),
    ]);
    log.addAll(intent);

    // Decided later (e.g. after a crash), the time stays the one committed.
    const waiting = expectCommit(log.decide(now + 10_000));
    expect(waiting).toEqual([ev("run.waiting", { for: { kind: "timer", until } })]);
    log.addAll(waiting, 10_000);

    expect(log.decide(now + 59_999)).toEqual({ kind: "wait", for: { kind: "timer", until } });
    const done = expectCommit(log.decide(now + 60_000));
    expect(done).toEqual([
      ev("run.resumed", { reason: "timer" }),
      ev("tool.completed", { call_id: "t", tool: "wait.until", output: `waited until ${until}`, is_error: false }),
    ]);
    log.addAll(done, 50_000);
    expect(log.decide(log.t).kind).toBe("call_model");
  });

  it("an `until` already past completes without waiting", () => {
    const log = afterResponse([call("t", "wait.until", { until: "2020-01-01T00:00:00Z" })]);
    log.addAll(expectCommit(log.decide()));
    const done = expectCommit(log.decide());
    expect(done).toEqual([
      ev("tool.completed", { call_id: "t", tool: "wait.until", output: "waited until 2020-01-01T00:00:00Z", is_error: false }),
    ]);
  });

  it("rejects both or neither of seconds and until", () => {
    expectModelError(afterResponse([call("t", "wait.until", {})]).decide(), "t", "wait.until");
    expectModelError(afterResponse([call("t", "wait.until", { seconds: 5, until: "2030-01-01T00:00:00Z" })]).decide(), "t", "wait.until");
  });
});

describe("decide: wait.for_event", () => {
  const waitCall = call("w", "wait.for_event", { name: "parcel.arrived" });
  const intent = ev("tool.called", {
    call_id: "w",
    tool: "wait.for_event",
    arguments: { name: "parcel.arrived" },
    idempotency_key: `${RUN}.1.w`,
  });

  it("commits its intent, then waits when nothing is buffered", () => {
    const log = afterResponse([waitCall]);
    expect(expectCommit(log.decide())).toEqual([intent]);
    log.add(intent);
    expect(expectCommit(log.decide())).toEqual([ev("run.waiting", { for: { kind: "event", event: "parcel.arrived" } })]);
    log.add(ev("run.waiting", { for: { kind: "event", event: "parcel.arrived" } }));
    expect(log.decide(log.t + 1e9)).toEqual({ kind: "wait", for: { kind: "event", event: "parcel.arrived" } });
    // An event of another name does not end the wait.
    log.add(ev("event.received", { name: "invoice.paid", payload: 1 }));
    expect(log.decide()).toEqual({ kind: "wait", for: { kind: "event", event: "parcel.arrived" } });
  });

  it("consumes an event delivered while it waited", () => {
    const log = afterResponse([waitCall])
      .add(intent)
      .add(ev("run.waiting", { for: { kind: "event", event: "parcel.arrived" } }))
      .add(ev("event.received", { name: "parcel.arrived", payload: { box: 7 } }), 1000)
      .add(ev("run.resumed", { reason: "event parcel.arrived" }));
    const done = expectCommit(log.decide());
    expect(done).toEqual([
      ev("tool.completed", {
        call_id: "w",
        tool: "wait.for_event",
        output: JSON.stringify({ event: "parcel.arrived", payload: { box: 7 } }),
        is_error: false,
      }),
    ]);
    log.addAll(done);
    expect(log.state().inbox).toEqual([]);
    expect(log.decide().kind).toBe("call_model");
  });

  it("consumes an event buffered before the wait, oldest first, without waiting", () => {
    const log = new Log()
      .add(started())
      .add(ev("event.received", { name: "parcel.arrived", payload: "first" }))
      .add(ev("event.received", { name: "parcel.arrived", payload: "second" }))
      .add(called(1))
      .add(responded(1, [waitCall]));
    log.addAll(expectCommit(log.decide()));
    const done = expectCommit(log.decide());
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({
      type: "tool.completed",
      data: { output: JSON.stringify({ event: "parcel.arrived", payload: "first" }) },
    });
    log.addAll(done);
    expect(log.state().inbox).toEqual([{ name: "parcel.arrived", payload: "second" }]);
  });

  it("if a buffered event is in the log while marked waiting, resumes itself", () => {
    // e.g. an event arrived between the intent and the run.waiting commit
    const log = afterResponse([waitCall])
      .add(intent)
      .add(ev("event.received", { name: "parcel.arrived", payload: null }))
      .add(ev("run.waiting", { for: { kind: "event", event: "parcel.arrived" } }));
    const done = expectCommit(log.decide());
    expect(done.map((e) => e.type)).toEqual(["run.resumed", "tool.completed"]);
  });
});

// ─────────────────────────── the end ───────────────────────────
describe("decide: terminal runs and determinism", () => {
  it("a terminal run is finished, whatever else is in the log", () => {
    const pending = afterResponse([call("c1", "orders.lookup", { id: 1 })]);
    for (const end of [
      ev("run.completed", { output: "done" }),
      ev("run.failed", { error: { code: "max_steps", message: "x" } }),
      ev("run.cancelled", { reason: "stop" }),
    ]) {
      const log = afterResponse([call("c1", "orders.lookup", { id: 1 })]).add(end);
      expect(log.decide()).toEqual({ kind: "finished" });
    }
    expect(pending.decide().kind).toBe("call_tool");
  });

  it("same inputs give deep-equal actions, and deciding does not change the state", () => {
    const logs = [
      new Log().add(started()),
      afterResponse([call("c1", "orders.lookup", { id: 42 })]),
      afterResponse([call("c1", "payments.refund", { order: 1, amount: 2 })]),
      afterResponse([call("c1", "orders.lookup", "{bad")]),
      afterResponse([call("t", "wait.until", { seconds: 30 })]),
      afterResponse([], "final"),
    ];
    for (const log of logs) {
      const now = log.t + 1234;
      const state = log.state();
      const snapshot = structuredClone(state);
      const a1 = decide(ctx(now), state);
      const a2 = decide(ctx(now), state);
      const a3 = decide(ctx(now), log.state());
      expect(a2).toEqual(a1);
      expect(a3).toEqual(a1);
      expect(state).toEqual(snapshot);
    }
  });
});
